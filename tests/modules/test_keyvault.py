"""The Key Vault reader against the real azure-keyvault-secrets client and the official GetSecret example."""

from __future__ import annotations

import base64
import copy

import pulumi
import pytest

from modules.keyvault import KeyVaultReader, OfflineKeyVault
from modules.spec import KeyVaultRef
from tests.azure_transport import FakeCredential, ScriptedTransport, example
from tests.conftest import fixture_file
from tests.modules.spec.ssh import private_key

FLUX = "kubernetesconfiguration:FluxConfiguration"

GET_SECRET = (
    "arm-examples",
    "specification",
    "keyvault",
    "data-plane",
    "Microsoft.KeyVault",
    "stable",
    "7.6",
    "examples",
    "GetSecret-example.json",
)
CHALLENGE = {
    "WWW-Authenticate": 'Bearer authorization="https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47", '
    'resource="https://vault.azure.net"'
}


def vault(respond):
    """Key Vault answers the first, unauthenticated request with its challenge, as the service does."""

    def serve(request):
        if "Authorization" not in request.headers:
            return (
                401,
                {"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer token."}},
                CHALLENGE,
            )
        return respond(request)

    return ScriptedTransport(serve)


def test_reads_the_secret_version_it_is_asked_for():
    body = example(fixture_file(*GET_SECRET))
    transport = vault(lambda request: (200, body, {}))
    reader = KeyVaultReader(FakeCredential(), transport=transport)
    ref = KeyVaultRef("myvault", "mysecretname", "4387e9f3d6e14c459867679a90fd0f79")
    read = reader.get_secret(ref)
    assert read.value == body["value"] and read.version == "4387e9f3d6e14c459867679a90fd0f79"
    assert body["value"] not in repr(read) and body["value"] not in str(read)
    last = transport.requests[-1]
    assert last.url.startswith("https://myvault.vault.azure.net/secrets/mysecretname/4387e9f3d6e14c459867679a90fd0f79?")
    assert "api-version=" in last.url


def test_one_client_per_vault():
    body = copy.deepcopy(example(fixture_file(*GET_SECRET)))
    reader = KeyVaultReader(FakeCredential(), transport=vault(lambda request: (200, body, {})))
    reader.get_secret(KeyVaultRef("myvault", "a"))
    reader.get_secret(KeyVaultRef("https://myvault.vault.azure.net/", "b"))
    assert len(reader._clients) == 1


@pytest.mark.parametrize(
    ("status", "error", "expect"),
    [
        (
            404,
            {
                "code": "SecretNotFound",
                "message": "A secret with (name/id) github-pat was not found in this key vault.",
            },
            "keyvault:kv-test/github-pat: no such secret in Key Vault https://kv-test.vault.azure.net/",
        ),
        (
            403,
            {
                "code": "Forbidden",
                "message": "The user, group or application 'appid=x' does not have secrets get permission",
            },
            "keyvault:kv-test/github-pat: cannot read the secret: ",
        ),
    ],
)
def test_failures_are_one_line_run_errors(status, error, expect):
    reader = KeyVaultReader(
        FakeCredential(), transport=vault(lambda request: (status, {"error": error}, {})), retry_total=0
    )
    with pytest.raises(pulumi.RunError) as caught:
        reader.get_secret(KeyVaultRef("kv-test", "github-pat"))
    assert str(caught.value).startswith(expect) and "\n" not in str(caught.value)


def test_offline_reader_names_the_reference_and_opens_nothing():
    read = OfflineKeyVault().get_secret(KeyVaultRef("kv-test", "github-pat"))
    assert read.value == "offline-placeholder:keyvault:kv-test/github-pat" and read.version is None


def test_the_stack_exports_the_secret_versions_it_deployed_and_never_a_value(raw):
    from fluxfleet.mock_engine import ArmMocks, run_program
    from modules.keyvault import Secrets
    from modules.spec import parse_spec
    from modules.stack import build_stack
    from tests.conftest import CANARY, CANARY_VERSION, CanaryKeyVault

    raw["flux"]["extension"] = {"protectedSettings": {"token": {"keyVault": "kv-test", "secret": "github-pat"}}}
    exported = {}

    def program():
        exported.update(build_stack(parse_spec(raw, file="stacks/Pulumi.test.yaml"), Secrets(CanaryKeyVault())))

    run_program("test", program, ArmMocks())
    # The same secret used twice is one reference, read once, at one version.
    assert exported["secretVersions"] == {"keyvault:kv-test/github-pat": CANARY_VERSION}
    assert CANARY not in repr(exported["secretVersions"])


# ------------------------------------------------------------------------------------------ values checked as read

SSH_KEY_LOC = ("flux", "configurations", "demo", "git", "sshPrivateKey")
DEPLOY_KEY = KeyVaultRef("kv-test", "deploy-key")


class OneValueKeyVault:
    """Every secret reads as `value`."""

    def __init__(self, value: str):
        self.value = value

    def get_secret(self, ref):
        from modules.keyvault import SecretValue

        return SecretValue(self.value, "0f1e2d3c4b5a69788796a5b4c3d2e1f0")


def ssh_stack(raw):
    git = raw["flux"]["configurations"]["demo"]["git"]
    del git["httpsUser"], git["httpsKey"]
    git.update(url="ssh://git@github.com/org/repo", sshPrivateKey={"keyVault": "kv-test", "secret": "deploy-key"})
    return raw


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (
            "ghp_notAKeyButAToken0123456789",
            "is not a private key in PEM or OpenSSH format (-----BEGIN ... PRIVATE KEY-----)",
        ),
        (
            private_key("ed25519", "pkcs8", b"passphrase"),
            "is an encrypted private key: Flux needs it without a passphrase (ssh-keygen -p -N '' -f KEY)",
        ),
    ],
)
def test_a_key_vault_secret_that_is_no_usable_ssh_key_is_an_error_naming_the_field_and_the_reference(
    raw, value, problem
):
    from modules.keyvault import Secrets
    from tests.conftest import deploy

    expect = f"fluxfleet:flux.configurations.demo.git.sshPrivateKey: the Key Vault secret keyvault:kv-test/deploy-key {problem}"
    with pytest.raises(pulumi.RunError) as caught:
        Secrets(OneValueKeyVault(value)).resolve(DEPLOY_KEY, SSH_KEY_LOC)
    assert str(caught.value) == expect
    with pytest.raises(pulumi.RunError) as caught:  # the program asks for the value of the field it is for
        deploy(ssh_stack(raw), key_vault=OneValueKeyVault(value))
    assert str(caught.value) == expect


def test_a_key_vault_secret_is_checked_only_as_the_value_of_a_field_that_takes_a_key(raw):
    from modules.keyvault import Secrets
    from tests.conftest import deploy, reveal

    key = private_key("ed25519", "openssh")
    protected = reveal(
        deploy(ssh_stack(raw), key_vault=OneValueKeyVault(key)).raw(FLUX)["configurationProtectedSettings"]
    )
    assert base64.b64decode(protected["sshPrivateKey"]).decode() == key
    secrets = Secrets(OneValueKeyVault("ghp_notAKeyButAToken0123456789"))
    secrets.resolve(DEPLOY_KEY, ("flux", "configurations", "demo", "git", "httpsKey"))  # a token: no check
    Secrets(OfflineKeyVault()).resolve(DEPLOY_KEY, SSH_KEY_LOC)  # `fluxfleet plan` offline: no value to check
    with pytest.raises(pulumi.RunError):  # read once, cached, and still checked for the field that takes a key
        secrets.resolve(DEPLOY_KEY, SSH_KEY_LOC)
