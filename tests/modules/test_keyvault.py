"""The Key Vault reader against the real azure-keyvault-secrets client and the official GetSecret example."""

from __future__ import annotations

import copy

import pulumi
import pytest

from modules.keyvault import KeyVaultReader, OfflineKeyVault
from modules.spec import KeyVaultRef
from tests.azure_transport import FakeCredential, ScriptedTransport, example
from tests.conftest import fixture_file

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
