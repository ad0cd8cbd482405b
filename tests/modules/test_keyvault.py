"""The Key Vault reader against the real azure-keyvault-secrets client and the official GetSecret example."""

from __future__ import annotations

import copy

import pulumi
import pytest

from modules.keyvault import KeyVaultReader, OfflineKeyVault
from modules.spec import KeyVaultRef
from tests.azure_transport import FakeCredential, ScriptedTransport, example
from tests.conftest import require_shared

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
    body = example(require_shared(*GET_SECRET))
    transport = vault(lambda request: (200, body, {}))
    reader = KeyVaultReader(FakeCredential(), transport=transport)
    ref = KeyVaultRef("myvault", "mysecretname", "4387e9f3d6e14c459867679a90fd0f79")
    assert reader.get_secret(ref) == body["value"]
    last = transport.requests[-1]
    assert last.url.startswith("https://myvault.vault.azure.net/secrets/mysecretname/4387e9f3d6e14c459867679a90fd0f79?")
    assert "api-version=" in last.url


def test_one_client_per_vault():
    body = copy.deepcopy(example(require_shared(*GET_SECRET)))
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
    value = OfflineKeyVault().get_secret(KeyVaultRef("kv-test", "github-pat"))
    assert value == "offline-placeholder:keyvault:kv-test/github-pat"
