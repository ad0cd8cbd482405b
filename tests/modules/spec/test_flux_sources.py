"""The spec of issue 16's sources and auth: `oci`, `git.provider: Azure|GitHub` with a GitHub App, the Flux extension's
workload identity they need, and `adoptLiveConfiguration`. Each key good and bad, with the file and key a user sees,
and no message that shows a secret."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from modules.spec import FLUX_API_AZURE_NATIVE, FLUX_API_LATEST, SpecError, parse_spec
from modules.spec.secrets import PLAINTEXT_SECRET
from tests.conftest import BASE_STACK, CANARY
from tests.modules.spec.ssh import private_key
from tests.modules.test_spec import FILE, demo, errors

DEMO = "fluxfleet:flux.configurations.demo"
OCI = f"{DEMO}.oci"
GIT = f"{DEMO}.git"
KV = {"keyVault": "kv-test", "secret": "s"}
IDENTITY = "6f1c2e0a-3b4d-4c5e-8f90-1a2b3c4d5e6f"
ISSUER = "^https://token\\.actions\\.githubusercontent\\.com$"
SUBJECT = "^https://github\\.com/org/manifests/\\.github/workflows/release\\.yml@refs/tags/.+$"
WORKLOAD_IDENTITY_OFF = (
    "authenticates as the Flux extension's workload identity, which is off: set "
    "flux.extension.controllers.workloadIdentity {enable: true, azureClientId: CLIENT_ID} "
    "(the managed identity with the federated credential `fluxfleet preflight` prints)"
)


def identity_on(raw: dict[str, Any]) -> dict[str, Any]:
    raw["flux"]["extension"] = {"controllers": {"workloadIdentity": {"enable": True, "azureClientId": IDENTITY}}}
    return raw


def with_oci(raw: dict[str, Any], **oci: Any) -> dict[str, Any]:
    del demo(raw)["git"]
    demo(raw)["oci"] = {
        "url": "oci://ghcr.io/org/manifests",
        "tag": "v1.0.0",
        "verify": {"provider": "cosign", "matchOidcIdentity": [{"issuer": ISSUER, "subject": SUBJECT}]},
        **oci,
    }
    return raw


def with_provider(raw: dict[str, Any], provider: str, **git: Any) -> dict[str, Any]:
    source = demo(raw)["git"]
    del source["httpsUser"], source["httpsKey"]
    source.update(provider=provider, **git)
    return raw


def github_app(raw: dict[str, Any], **git: Any) -> dict[str, Any]:
    app = {"githubAppID": 123456, "githubAppInstallationID": 7654321, "githubAppPrivateKey": KV}
    return with_provider(raw, "GitHub", **{**app, **git})


def ado(raw: dict[str, Any], **git: Any) -> dict[str, Any]:
    git = {"url": "https://dev.azure.com/contoso/fleet/_git/platform", **git}
    return with_provider(identity_on(raw), "Azure", **git)


# --------------------------------------------------------------------------------------------- good


@pytest.mark.parametrize(
    "oci",
    [
        {},  # a tag, keyless cosign
        {"tag": None, "semver": ">=1.0.0 <2.0.0"},
        {"tag": None, "digest": "sha256:" + "0" * 64},
        {"verify": {"provider": "cosign", "verificationConfig": {"cosign.pub": KV, "release-2026.pub": KV}}},
        {"verify": {"provider": "cosign", "verificationConfig": {"cosign.pub": KV}, "matchOidcIdentity": []}},
        {"verify": {"provider": "notation", "verificationConfig": {"trustpolicy.json": KV, "root.crt": KV}}},
        {"tlsConfig": {"clientCertificate": KV, "privateKey": KV}},
        {"tlsConfig": {"caCertificate": KV}},
        {"serviceAccountName": "flux-pull", "insecure": False, "syncInterval": "5m", "timeout": "1m"},
        {"url": "oci://registry.example.com:5000/team/platform/manifests"},
        {"verify": None},  # the spec takes it; the policy flux-oci-verified does not
    ],
)
def test_oci_sources_that_are_valid(raw, oci):
    spec = parse_spec(with_oci(raw, **oci), file=FILE)
    configuration = spec.flux.configurations["demo"]
    assert configuration.source_kind == "OCIRepository"
    assert configuration.flux_api == FLUX_API_LATEST and configuration.newer_api_needs == ["an oci source"]


def test_the_oci_source_reads_into_typed_values(raw):
    oci = parse_spec(with_oci(identity_on(raw), useWorkloadIdentity=True), file=FILE).flux.configurations["demo"].oci
    assert oci.insecure is False and oci.use_workload_identity is True  # insecure false by default
    assert oci.ref == "tag v1.0.0" and oci.verify.match_oidc_identity[0].issuer == ISSUER


def test_git_providers_that_are_valid(raw):
    spec = parse_spec(github_app(raw), file=FILE)
    git = spec.flux.configurations["demo"].git
    assert (git.provider, git.github_app_id, git.github_app_installation_id) == ("GitHub", 123456, 7654321)
    assert spec.flux.configurations["demo"].flux_api == FLUX_API_LATEST
    for url in ("https://dev.azure.com/contoso/fleet/_git/platform", "https://contoso.visualstudio.com/fleet/_git/p"):
        spec = parse_spec(ado(copy.deepcopy(BASE_STACK), url=url), file=FILE)
        assert spec.flux.configurations["demo"].newer_api_needs == ["git provider Azure"]


@pytest.mark.parametrize("provider", [None, "Generic"])
def test_what_2023_expresses_stays_there(raw, provider):
    if provider:
        demo(raw)["git"]["provider"] = provider
    configuration = parse_spec(raw, file=FILE).flux.configurations["demo"]
    assert configuration.flux_api == FLUX_API_AZURE_NATIVE and configuration.newer_api_needs == []


def test_adopt_live_configuration_on_a_2025_configuration(raw):
    demo(with_oci(raw))["adoptLiveConfiguration"] = True
    assert parse_spec(raw, file=FILE).flux.configurations["demo"].adopt_live_configuration is True


def test_a_github_app_key_decrypted_or_read_is_checked_as_a_pem_key(raw):
    github_app(raw, githubAppPrivateKey=private_key("rsa", "pkcs1"))
    assert (
        parse_spec(raw, file=FILE, plain_strings_are_secret=True).flux.configurations["demo"].git.provider == "GitHub"
    )
    demo(raw)["git"]["githubAppPrivateKey"] = CANARY
    assert errors(raw, plain_strings_are_secret=True) == [
        f"{FILE}: {GIT}.githubAppPrivateKey: is not a private key in PEM format (-----BEGIN ... PRIVATE KEY-----)"
    ]


# --------------------------------------------------------------------------------------------- bad: oci


@pytest.mark.parametrize(
    ("oci", "expect"),
    [
        (
            {"url": "https://ghcr.io/org/manifests"},
            f"{OCI}.url: the URL must start with oci:// (oci://REGISTRY/REPOSITORY)",
        ),
        (
            {"url": "oci://user:pass@ghcr.io/org/manifests"},
            f"{OCI}.url: credentials inside the URL: use useWorkloadIdentity, or serviceAccountName with its image pull "
            "secret",
        ),
        (
            {"url": "oci://ghcr.io/org/manifests:v1"},
            f"{OCI}.url: a tag or digest inside the URL: set tag, semver or digest instead",
        ),
        (
            {"url": "oci://ghcr.io/org/m@sha256:abc"},
            f"{OCI}.url: a tag or digest inside the URL: set tag, semver or digest instead",
        ),
        ({"url": "oci://ghcr.io"}, f"{OCI}.url: an oci:// URL needs a registry host and a repository path"),
        ({"tag": None}, f"{OCI}: set exactly one of tag, semver or digest (found: none)"),
        ({"semver": ">=1"}, f"{OCI}: set exactly one of tag, semver or digest (found: tag, semver)"),
        (
            {"tag": None, "digest": "sha256:ABC"},
            f"{OCI}.digest: 'sha256:ABC' is not an artifact digest (sha256: and 64 lower-case hex)",
        ),
        (
            {"insecure": True, "tlsConfig": {"caCertificate": KV}},
            f"{OCI}.insecure: insecure: true is plain HTTP: it cannot go with tlsConfig",
        ),
        (
            {"tlsConfig": {"clientCertificate": KV}},
            f"{OCI}.tlsConfig.privateKey: clientCertificate and privateKey go together",
        ),
        (
            {"tlsConfig": {"privateKey": KV}},
            f"{OCI}.tlsConfig.clientCertificate: clientCertificate and privateKey go together",
        ),
        ({"tlsConfig": {}}, f"{OCI}.tlsConfig: set clientCertificate with privateKey, caCertificate, or both"),
        (
            {"tlsConfig": {"caCertificate": "-----BEGIN CERTIFICATE-----"}},
            f"{OCI}.tlsConfig.caCertificate: {PLAINTEXT_SECRET}",
        ),
        ({"serviceAccountName": "Flux_Pull"}, f"{OCI}.serviceAccountName: 'Flux_Pull' is not a Kubernetes object name"),
        ({"syncInterval": "1m", "timeout": "5m"}, f"{OCI}.timeout: timeout is longer than syncInterval"),
        ({"useWorkloadIdentity": True}, f"{OCI}.useWorkloadIdentity: {WORKLOAD_IDENTITY_OFF}"),
        ({"insecure": "false"}, f"{OCI}.insecure: Input should be a valid boolean"),
        ({"tags": "v1"}, f"{OCI}.tags: unknown key (did you mean 'tag'?)"),
    ],
)
def test_bad_oci_sources_name_the_file_and_key(raw, oci, expect):
    assert errors(with_oci(raw, **oci)) == [f"{FILE}: {expect}"]


@pytest.mark.parametrize(
    ("verify", "expect"),
    [
        ({"provider": "sigstore"}, "verify.provider: Input should be 'cosign' or 'notation' (got 'sigstore')"),
        (
            {"provider": "cosign"},
            "verify: say whose signatures count: verificationConfig (cosign public keys) or matchOidcIdentity "
            "(keyless); keyless without it accepts any signer",
        ),
        (
            {"provider": "cosign", "verificationConfig": {"cosign.key": KV}},
            "verify.verificationConfig.cosign.key: a cosign public key's name ends in .pub",
        ),
        (
            {"provider": "cosign", "verificationConfig": {"cosign pub": KV}},
            "verify.verificationConfig.cosign pub: 'cosign pub' is not a key name (1-253 letters, digits, '-', '_' or "
            "'.', such as cosign.pub)",
        ),
        (
            {"provider": "cosign", "verificationConfig": {"cosign.pub": "ssh-ed25519 AAAA"}},
            f"verify.verificationConfig.cosign.pub: {PLAINTEXT_SECRET}",
        ),
        (
            {"provider": "notation", "verificationConfig": {"root.crt": KV}},
            "verify.verificationConfig: notation needs trustpolicy.json and at least one certificate (.crt or .pem)",
        ),
        (
            {
                "provider": "notation",
                "verificationConfig": {"trustpolicy.json": KV, "root.pem": KV},
                "matchOidcIdentity": [{"issuer": ISSUER, "subject": SUBJECT}],
            },
            "verify.matchOidcIdentity: only with provider: cosign (keyless verification)",
        ),
        (
            {
                "provider": "cosign",
                "matchOidcIdentity": [{"issuer": "https://token.actions.githubusercontent.com", "subject": SUBJECT}],
            },
            "verify.matchOidcIdentity[0].issuer: anchor the expression with ^ and $: unanchored, it also matches "
            "identities you did not mean",
        ),
        (
            {"provider": "cosign", "matchOidcIdentity": [{"issuer": ISSUER, "subject": "^https://github.com/org/.*"}]},
            "verify.matchOidcIdentity[0].subject: anchor the expression with ^ and $: unanchored, it also matches "
            "identities you did not mean",
        ),
        (
            {"provider": "cosign", "matchOidcIdentity": [{"issuer": ISSUER}]},
            "verify.matchOidcIdentity[0].subject: required key is missing",
        ),
    ],
)
def test_bad_verification_names_the_file_and_key(raw, verify, expect):
    assert errors(with_oci(raw, verify=verify)) == [f"{FILE}: {OCI}.{expect}"]


def test_two_sources_with_oci_are_an_error(raw):
    demo(raw)["oci"] = {"url": "oci://ghcr.io/org/manifests", "tag": "v1"}
    assert errors(raw) == [f"{FILE}: {DEMO}: set exactly one source: git, bucket, azureBlob or oci (found: git, oci)"]


def test_an_oci_private_key_decrypted_is_checked_and_never_shown(raw):
    with_oci(raw, tlsConfig={"clientCertificate": "cert", "privateKey": CANARY})
    [message] = errors(raw, plain_strings_are_secret=True)
    assert (
        message
        == f"{FILE}: {OCI}.tlsConfig.privateKey: is not a private key in PEM format (-----BEGIN ... PRIVATE KEY-----)"
    )
    assert CANARY not in message


# --------------------------------------------------------------------------------------------- bad: git providers


@pytest.mark.parametrize(
    ("make", "expect"),
    [
        (
            lambda raw: ado(raw, url="https://github.com/org/repo"),
            [
                f"{GIT}.url: provider Azure authenticates to Azure DevOps (dev.azure.com), not 'github.com': use provider "
                "GitHub for GitHub, Generic for other hosts"
            ],
        ),
        (
            lambda raw: ado(raw, url="ssh://git@ssh.dev.azure.com/v3/contoso/fleet/platform"),
            [f"{GIT}.url: provider Azure fetches over https://: use the repository's https:// URL"],
        ),
        (
            lambda raw: ado(raw, httpsUser="git", httpsKey=KV),
            [
                f"{GIT}.httpsUser: provider Azure authenticates without it: remove it",
                f"{GIT}.httpsKey: provider Azure authenticates without it: remove it",
            ],
        ),
        (lambda raw: ado(raw, githubAppID=1), [f"{GIT}.githubAppID: a GitHub App's key: only with provider: GitHub"]),
        (
            lambda raw: with_provider(raw, "Azure", url="https://dev.azure.com/contoso/fleet/_git/platform"),
            [f"{GIT}.provider: {WORKLOAD_IDENTITY_OFF}"],
        ),
        (
            lambda raw: with_provider(raw, "GitHub"),
            [
                f"{GIT}.githubAppID: required with provider: GitHub (the GitHub App's ID, installation ID and private key)",
                f"{GIT}.githubAppInstallationID: required with provider: GitHub (the GitHub App's ID, installation ID and "
                "private key)",
                f"{GIT}.githubAppPrivateKey: required with provider: GitHub (the GitHub App's ID, installation ID and "
                "private key)",
            ],
        ),
        (
            lambda raw: github_app(raw, sshPrivateKey=KV),
            [
                f"{GIT}.sshPrivateKey: only with an ssh:// or git@ URL",
                f"{GIT}.sshPrivateKey: provider GitHub authenticates without it: remove it",
            ],
        ),
        (
            lambda raw: demo(raw)["git"].update(githubAppInstallationID=7) or raw,
            [f"{GIT}.githubAppInstallationID: a GitHub App's key: only with provider: GitHub"],
        ),
        (
            lambda raw: github_app(raw, githubAppID=0),
            [f"{GIT}.githubAppID: Input should be greater than or equal to 1"],
        ),
        (lambda raw: github_app(raw, githubAppID="123456"), [f"{GIT}.githubAppID: Input should be a valid integer"]),
        (
            lambda raw: github_app(raw, githubAppPrivateKey="-----BEGIN RSA PRIVATE KEY-----"),
            [f"{GIT}.githubAppPrivateKey: {PLAINTEXT_SECRET}"],
        ),
        (
            lambda raw: with_provider(raw, "Bitbucket"),
            [f"{GIT}.provider: Input should be 'Generic', 'Azure' or 'GitHub' (got 'Bitbucket')"],
        ),
    ],
)
def test_bad_git_providers_name_the_file_and_key(raw, make, expect):
    assert errors(make(raw)) == [f"{FILE}: {line}" for line in expect]


def test_adopt_live_configuration_only_where_it_means_something(raw):
    demo(raw)["adoptLiveConfiguration"] = True
    assert errors(raw) == [
        f"{FILE}: {DEMO}.adoptLiveConfiguration: only for a configuration on the 2025-04-01 resource (an oci source, git "
        "provider Azure or GitHub): this one stays on azure-native's (2023-05-01), which never takes over a live one"
    ]
    demo(raw)["adoptLiveConfiguration"] = "yes"
    assert errors(raw) == [f"{FILE}: {DEMO}.adoptLiveConfiguration: Input should be a valid boolean"]


def test_workload_identity_set_free_form_counts_too(raw):
    """The extension's settings may say it in `settings` (the keys the extension takes) as well as typed."""
    ado(raw)
    raw["flux"]["extension"] = {
        "settings": {"workloadIdentity.enable": True, "workloadIdentity.azureClientId": IDENTITY}
    }
    assert parse_spec(raw, file=FILE).flux.configurations["demo"].git.provider == "Azure"
    raw["flux"]["extension"] = {"controllers": {"workloadIdentity": {"enable": False}}}
    assert errors(raw) == [f"{FILE}: {GIT}.provider: {WORKLOAD_IDENTITY_OFF}"]


def test_an_error_in_a_profile_names_the_profile(tmp_path):
    """File and key like every other error: an oci source written in a profile is reported there."""
    from modules.spec import load_stack_file

    stacks = tmp_path / "stacks"
    (stacks / "profiles").mkdir(parents=True)
    (stacks / "profiles" / "oci.yaml").write_text(
        "config:\n  fluxfleet:flux:\n    configurations:\n      apps:\n        oci: {url: 'https://ghcr.io/o/r', tag: v1}\n"
        "        kustomizations: {apps: {}}\n"
    )
    (stacks / "Pulumi.s.yaml").write_text(
        "config:\n  fluxfleet:profiles: [oci]\n  fluxfleet:cluster: {kind: arc, name: c, resourceGroup: rg}\n"
    )
    with pytest.raises(SpecError) as caught:
        load_stack_file(stacks / "Pulumi.s.yaml", "stacks/Pulumi.s.yaml")
    assert [str(issue) for issue in caught.value.issues] == [
        "stacks/profiles/oci.yaml: fluxfleet:flux.configurations.apps.oci.url: the URL must start with oci:// "
        "(oci://REGISTRY/REPOSITORY)"
    ]
