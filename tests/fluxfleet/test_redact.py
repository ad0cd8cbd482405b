"""`mask_secrets`: every kind of credential a provider's or Azure's message can quote is masked, and what a reader
needs to act on (commit SHAs, resource ids, GUIDs, plain URLs, fluxfleet's own key paths) is left as it is."""

from __future__ import annotations

import pytest

from fluxfleet.redact import mask_secrets

PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
    "-----END RSA PRIVATE KEY-----"
)
GITHUB_PAT = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
JWT = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJvaWQiOiIwMDAwMDAwMCIsInVwbiI6ImFsaWNlIn0.c2lnbmF0dXJlLXBhcnQ"
STORAGE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
SHA = "0ba6f0d7c3a93b8e8a3a05b0c3c2c1a5b1b2c3d4"
RESOURCE_ID = (
    "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/myResourceGroup1/providers/"
    "Microsoft.ContainerService/managedClusters/aks-dev-weu/providers/Microsoft.KubernetesConfiguration/"
    "fluxConfigurations/platform"
)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (f"key: {PEM} then more", "key: [secret] then more"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU (cut)", "[secret]"),
        ("clone 'https://user:pass@github.com/org/repo' failed", "clone 'https://[secret]@github.com/org/repo' failed"),
        ("https://x-access-token:ghs_0123456789abcdefABCDEF@github.com/o/r", "https://[secret]@github.com/o/r"),
        ("https://PAT123@dev.azure.com/org/_git/repo", "https://[secret]@dev.azure.com/org/_git/repo"),
        ("password=hunter2 user=bob", "password=[secret] user=bob"),
        ("Password: hunter2", "Password: [secret]"),
        ('{"client_secret": "abc def", "name": "app"}', '{"client_secret": "[secret]", "name": "app"}'),
        ('{\\"accessToken\\":\\"abc\\"}', '{\\"accessToken\\":\\"[secret]\\"}'),
        (
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=abcd1234==;EndpointSuffix=core.windows.net",
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=[secret];EndpointSuffix=core.windows.net",
        ),
        (
            "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKey=Zm9v",
            "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKey=[secret]",
        ),
        (
            "https://a.blob.core.windows.net/c?sv=2022-11-02&sig=abc%2Bdef%3D&se=x",
            "https://a.blob.core.windows.net/c?sv=2022-11-02&sig=[secret]&se=x",
        ),
        (
            "AZURE_CLIENT_SECRET=s3 GITHUB_TOKEN=t pwd=1 passwd=2 apikey=3 api_key=4 privateKey=5",
            "AZURE_CLIENT_SECRET=[secret] GITHUB_TOKEN=[secret] pwd=[secret] passwd=[secret] apikey=[secret] api_key=[secret] privateKey=[secret]",
        ),
        ("Authorization: Bearer abc.def-ghi123", "Authorization: Bearer [secret]"),
        # base64 of alice:hunter2, in a header a proxy's error quotes
        (
            "401 from proxy; Authorization: Basic YWxpY2U6aHVudGVyMg== sent",
            "401 from proxy; Authorization: Basic [secret] sent",
        ),
        ('{"headers": {"authorization": "basic dXNlcjpwYXNz"}}', '{"headers": {"authorization": "basic [secret]"}}'),
        (
            "POST https://contoso.webhook.office.com/webhookb2/9a1b2c3d-1234-5678-9abc-def012345678@72f988bf-86f1-41af"
            "-91ab-2d7cd011db47/IncomingWebhook/5c1f4e2a9b8d4c7e8f0a1b2c3d4e5f60/0b7d8a6e-1c2f-4e3a-9b5d-6c7e8f9a0b1c/"
            "V2AbCdEf0123 failed: 400 Bad Request",
            "POST https://contoso.webhook.office.com/webhookb2/[secret] failed: 400 Bad Request",
        ),
        (
            "url='https://outlook.office.com/webhook/9a1b2c3d-1234-5678-9abc-def012345678@72f988bf-86f1-41af-91ab-"
            "2d7cd011db47/IncomingWebhook/5c1f4e2a9b8d/0b7d8a6e'",
            "url='https://outlook.office.com/webhook/[secret]'",
        ),
        (
            "POST https://prod-12.westeurope.logic.azure.com:443/workflows/5c1f4e2a9b8d/triggers/manual/paths/invoke"
            "?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=AbC123dEf456 timed out",
            "POST https://prod-12.westeurope.logic.azure.com:443/workflows/5c1f4e2a9b8d/triggers/manual/paths/invoke"
            "?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=[secret] timed out",
        ),
        (
            "https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX",
            "https://hooks.slack.com/services/[secret]",
        ),
        (f"push with {GITHUB_PAT} denied", "push with [secret] denied"),
        ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ", "[secret]"),
        (f"token {JWT} expired", "token [secret] expired"),
        (f"key {STORAGE_KEY} rejected", "key [secret] rejected"),
        ("blob Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7cDe0fGh3 end", "blob [secret] end"),
        # A key inside another key's quoted value is still a key.
        (
            'Code="BadRequest" Message="clone failed; password=hunter2"',
            'Code="BadRequest" Message="clone failed; password=[secret]"',
        ),
    ],
)
def test_credentials_are_masked(text, masked):
    assert mask_secrets(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        f"synced main/{SHA}, not commit {SHA.upper()}",
        f"main@sha1:{SHA}",
        RESOURCE_ID,
        "https://github.com/fluxcd/flux2-kustomize-helm-example?ref=main#readme",
        "object id 9a1b2c3d-1234-5678-9abc-def012345678 in tenant 72f988bf-86f1-41af-91ab-2d7cd011db47",
        "ssh://git@github.com/org/repo",  # the SSH user every git host uses, no credential
        "rotation pending for fluxfleet:flux.configurations.platform.git.httpsKey: deployed version 4387e9f3",
        "401 InvalidAuthenticationToken: Azure did not accept the token of alice@contoso.com",
        "AzureCliCredential: Please run 'az login' to set up an account",
        "the bearer authentication failed; password=",
        "Basic authentication is not supported; use Basic auth over TLS",
        "https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/what-are-webhooks",
        "cannot read keyvault:kv-fleet-dev/github-pat: 403 Forbidden",
        "[secret]",
    ],
)
def test_what_is_no_credential_is_kept(text):
    assert mask_secrets(text) == text


def test_masking_twice_changes_nothing_more():
    once = mask_secrets(f"password=hunter2 https://u:p@h/x {GITHUB_PAT} {STORAGE_KEY}")
    assert mask_secrets(once) == once and "hunter2" not in once
