"""Plaintext credentials in a stack's config (issue 15): invalid input at their file and key path, whatever key they are
under, with a message that never quotes them; and what is no credential (URLs, paths, refs, certificates) passes."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from modules.spec import SpecError, parse_spec, shown
from modules.spec.credentials import credential_kind, masked
from modules.spec.origins import Origins
from modules.spec.secrets import PLAINTEXT_SECRET

FILE = "stacks/Pulumi.dev.yaml"
TOKEN = "ghp_" + "Cr3dCanary0123456789abcdefXYZ"
PEM = f"-----BEGIN RSA PRIVATE KEY-----\nMIIEow{TOKEN[4:]}\n-----END RSA PRIVATE KEY-----"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJvaWQiOiJDYW5hcnkifQ.c2lnbmF0dXJlQ2FuYXJ5"
STORAGE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
KNOWN_HOSTS = "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
CA_CERT = "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJ\n-----END CERTIFICATE-----"
RELEASE_TOKEN = "ghr_" + "A1b2C3d4E5f6G7h8I9j0K1l2"


def issues(raw: dict[str, Any], origins: Origins | None = None) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_spec(raw, file=FILE, origins=origins)
    return [str(issue) for issue in caught.value.issues]


def demo(raw: dict[str, Any]) -> dict[str, Any]:
    return raw["flux"]["configurations"]["demo"]


def substitute(raw: dict[str, Any], values: dict[str, Any]) -> None:
    demo(raw)["kustomizations"]["apps"]["postBuild"] = {"substitute": values}


SETTINGS_REMEDY = (
    "move it to protectedSettings, as a Key Vault reference {keyVault: VAULT, secret: NAME} "
    "or with `pulumi config set --secret --path`"
)
FIELD_REMEDY = (
    "put it in a secret field, as a Key Vault reference {keyVault: VAULT, secret: NAME} "
    "or with `pulumi config set --secret --path`"
)
SUBSTITUTE_REMEDY = "keep it in a Kubernetes Secret and name that Secret in postBuild.substituteFrom"


# --- what looks like a credential -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (PEM, "a PEM private key"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE", "a PEM private key"),  # cut short
        (base64.b64encode(PEM.encode()).decode(), "a PEM private key"),  # base64-encoded
        (TOKEN, "an access token"),
        (RELEASE_TOKEN, "an access token"),
        ("github_pat_11ABCDEFG0123456789_abcdefghijklmnop", "an access token"),
        ("glpat-" + "abcdefghij0123456789", "an access token"),
        (JWT, "a JSON web token"),
        ("https://oauth2:s3cr3t@gitlab.example.com/o/r", "a password in a URL"),
        ("redis://default:hunter2@cache:6379", "a password in a URL"),
        ("Authorization: Bearer abc.def-ghi123", "a bearer token"),
        ("Authorization: Basic YWxpY2U6aHVudGVyMg==", "a Basic credential"),
        (
            "https://contoso.webhook.office.com/webhookb2/9a1b2c3d@72f988bf/IncomingWebhook/5c1f4e2a/0b7d8a6e",
            "a webhook URL",
        ),
        ("Server=db;User Id=app;Password=hunter22;", "the value of Password"),
        ("DefaultEndpointsProtocol=https;AccountName=a;AccountKey=bm90LWEtcmVhbC1rZXk=", "the value of AccountKey"),
        ("https://acct.blob.core.windows.net/c?sv=2022-11-02&sig=abcdefghijkl", "the value of sig"),
        ("https://github.com/o/r?access_token=abc123", "the value of access_token"),
        (STORAGE_KEY, "a storage account key"),
    ],
)
def test_credentials_are_recognised(value, kind):
    assert credential_kind(value) == kind


@pytest.mark.parametrize(
    "value",
    [
        "https://github.com/fluxcd/flux2-kustomize-helm-example",
        "https://github.com/fluxcd/flux2-kustomize-helm-example?ref=main#readme",
        "ssh://git@github.com/fluxcd/flux2-kustomize-helm-example",
        "git@github.com:fluxcd/flux2-kustomize-helm-example.git",
        "ssh://deploy@git.example.com/o/r",  # a user alone is no credential
        "https://minio.example.com:9000",
        "./apps/staging",
        "./infrastructure/secrets",
        "main",
        "feature/password-reset",
        "release/token-refresh",
        "v1.0.0",
        ">=1.0.0 <2.0.0",
        "0ba6f0d7c3a93b8e8a3a05b0c3c2c1a5b1b2c3d4",
        "westeurope",
        "Standard_D4s_v5",
        "9a1b2c3d-1234-5678-9abc-def012345678",
        "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg/providers/Microsoft.Network/"
        "virtualNetworks/vnet/subnets/aks",
        "${DB_PASSWORD}",  # a Flux variable: the name of a credential, not one
        "host=db;password=${DB_PASSWORD}",
        "password=",
        KNOWN_HOSTS,
        CA_CERT,
        "secretName: flux-git-auth",
        "Basic auth",
        "https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/what-are-webhooks",
        "",
    ],
)
def test_what_is_no_credential_passes(value):
    assert credential_kind(value) is None


def test_masked_walks_maps_and_lists_by_look_and_by_key():
    value = {"tags": {"note": PEM, "owner": "platform"}, "settings": {"helm.password": "hunter2", "a": True}}
    value["list"] = [TOKEN, "main"]
    assert masked(value) == {
        "tags": {"note": "[secret]", "owner": "platform"},
        "settings": {"helm.password": "[secret]", "a": True},
        "list": ["[secret]", "main"],
    }


# --- the stack spec refuses them --------------------------------------------------------------------------------


def test_a_password_in_extension_settings_is_invalid(raw):
    raw["flux"]["extension"] = {"settings": {"helm-password": "hunter2", "multiTenancy.enforce": False}}
    assert issues(raw) == [
        f"{FILE}: fluxfleet:flux.extension.settings.helm-password: looks like a plaintext credential "
        f"(its key names one): {SETTINGS_REMEDY}"
    ]


def test_a_setting_that_looks_like_a_credential_is_invalid_whatever_its_key(raw):
    raw["flux"]["extension"] = {"settings": {"git.auth": f"https://x-access-token:{TOKEN}@github.com"}}
    [issue] = issues(raw)
    assert issue.startswith(f"{FILE}: fluxfleet:flux.extension.settings.git.auth: looks like a plaintext credential")
    assert TOKEN not in issue


def test_a_pem_in_a_postbuild_substitution_is_invalid(raw):
    substitute(raw, {"tls_key": PEM, "cluster_env": "dev"})
    assert issues(raw) == [
        f"{FILE}: fluxfleet:flux.configurations.demo.kustomizations.apps.postBuild.substitute.tls_key: "
        f"looks like a plaintext credential (a PEM private key): {SUBSTITUTE_REMEDY}"
    ]


@pytest.mark.parametrize("key", ["DB_PASSWORD", "api_token", "clientSecret", "storage_account_key"])
def test_a_substitution_named_like_a_credential_is_invalid(raw, key):
    substitute(raw, {key: "s3cr3t-value"})
    [issue] = issues(raw)
    assert f".substitute.{key}: looks like a plaintext credential (its key names one): " in issue
    assert "s3cr3t-value" not in issue


@pytest.mark.parametrize(
    "values",
    [
        {"cluster_env": "dev", "SECRET_NAME": "flux-git-auth", "token_ttl": "1h", "DB_PASSWORD": "${DB_PASSWORD}"},
        {"issuer": "letsencrypt-prod", "domain": "example.com", "empty_password": ""},
    ],
)
def test_ordinary_substitutions_pass(raw, values):
    substitute(raw, values)
    spec = parse_spec(raw, file=FILE)
    assert spec.flux.configurations["demo"].kustomizations["apps"].post_build.substitute == values


def test_a_token_in_a_git_url_is_one_error_at_the_url(raw):
    demo(raw)["git"]["url"] = f"https://x-access-token:{TOKEN}@github.com/fluxcd/flux2-kustomize-helm-example"
    [issue] = issues(raw)
    assert issue == (
        f"{FILE}: fluxfleet:flux.configurations.demo.git.url: "
        "credentials inside the URL: put the user in httpsUser and the key in httpsKey"
    )


def test_a_token_in_a_git_url_query_is_invalid(raw):
    demo(raw)["git"]["url"] = f"https://github.com/fluxcd/flux2-kustomize-helm-example?access_token={TOKEN}"
    assert issues(raw) == [
        f"{FILE}: fluxfleet:flux.configurations.demo.git.url: looks like a plaintext credential "
        f"(an access token): {FIELD_REMEDY}"
    ]


def test_a_credential_under_any_key_is_invalid_and_never_quoted(raw):
    raw["cluster"]["tags"] = {"note": JWT, "owner": "platform"}
    demo(raw)["git"]["commit"] = TOKEN  # also not a commit SHA: the message says so without the value
    found = issues(raw)
    assert f"{FILE}: fluxfleet:cluster.tags.note: looks like a plaintext credential (a JSON web token): " in "".join(
        found
    )
    assert not any(TOKEN in issue or JWT in issue for issue in found)
    assert any(issue.startswith(f"{FILE}: fluxfleet:flux.configurations.demo.git.commit: [secret]") for issue in found)


def test_a_credential_in_a_profile_names_the_profile(raw):
    origins = Origins(FILE)
    origins.keys["flux"] = Origins("stacks/profiles/base.yaml")
    raw["flux"]["extension"] = {"settings": {"db.password": "hunter2"}}
    [issue] = issues(raw, origins)
    assert issue.startswith("stacks/profiles/base.yaml: fluxfleet:flux.extension.settings.db.password: ")


def test_a_plaintext_secret_field_keeps_its_one_message(raw):
    demo(raw)["git"]["httpsKey"] = TOKEN
    assert issues(raw) == [f"{FILE}: fluxfleet:flux.configurations.demo.git.httpsKey: {PLAINTEXT_SECRET}"]


def test_a_decrypted_pulumi_secret_in_a_secret_field_is_no_plaintext(raw):
    demo(raw)["git"]["httpsKey"] = TOKEN  # `pulumi up`: the engine decrypted it into the config
    parse_spec(raw, file=FILE, plain_strings_are_secret=True)


def test_shown_never_quotes_a_credential():
    assert shown(TOKEN) == "[secret]" and shown({"a": PEM}) == "{'a': [secret]}" and shown("main") == "'main'"
