"""Issue 16's rules (flux-oci-verified, flux-source-identity, flux-workload-identity-ready), and the rules reading
fluxfleet's 2025-04-01 Flux configuration as they read azure-native's: good and bad, through `plan`'s evaluation and
the CrossGuard pack."""

from __future__ import annotations

from typing import Any

import pytest

from fluxfleet.plan import policy_view
from modules.flux_configuration_v2025 import TYPE
from policies.rules import Resource, evaluate
from tests.conftest import deploy
from tests.modules.spec.ssh import private_key
from tests.modules.test_flux_configuration_v2025 import KeyVault
from tests.policies.test_rules import FLUX, hardened, mutate, run_pack

IDENTITY = "6f1c2e0a-3b4d-4c5e-8f90-1a2b3c4d5e6f"
KV = {"keyVault": "kv-test", "secret": "s"}
VERIFY = {
    "provider": "cosign",
    "matchOidcIdentity": [
        {"issuer": "^https://token\\.actions\\.githubusercontent\\.com$", "subject": "^https://github\\.com/o/r/.+$"}
    ],
}


def resources(raw: dict[str, Any]) -> list[Resource]:
    return [policy_view(record) for record in deploy(raw, KeyVault()).records]


def violations(found: list[Resource], policy: str) -> list[tuple[str, str, str]]:
    return [(v.resource, v.path, v.level) for v in evaluate(found) if v.policy == policy]


def oci_stack(raw: dict[str, Any], **oci: Any) -> dict[str, Any]:
    hardened(raw)
    raw["flux"]["configurations"]["demo"] = {
        "oci": {"url": "oci://ghcr.io/org/manifests", "tag": "v1.0.0", "verify": VERIFY, **oci},
        "kustomizations": {"apps": {"prune": True}},
    }
    return raw


def identity(raw: dict[str, Any]) -> dict[str, Any]:
    raw["flux"]["extension"] = {"controllers": {"workloadIdentity": {"enable": True, "azureClientId": IDENTITY}}}
    return raw


def ado_stack(raw: dict[str, Any]) -> dict[str, Any]:
    identity(hardened(raw))
    git = raw["flux"]["configurations"]["demo"]["git"]
    del git["httpsUser"], git["httpsKey"]
    git.update(url="https://dev.azure.com/contoso/fleet/_git/platform", provider="Azure")
    return raw


def test_the_2025_resource_is_read_as_a_flux_configuration(raw):
    found = resources(oci_stack(raw))
    [configuration] = [r for r in found if r.type == TYPE]
    assert configuration.kind == FLUX
    assert evaluate(found) == []  # verified, prune, intervals, the extension dependency: every rule passes
    unpruned = mutate(found, FLUX, lambda p: p["kustomizations"]["apps"].update(prune=False))
    assert violations(unpruned, "flux-prune") == [("demo", "kustomizations.apps.prune", "advisory")]
    fast = mutate(found, FLUX, lambda p: p["ociRepository"].update(syncIntervalInSeconds=10))
    assert ("demo", "ociRepository.syncIntervalInSeconds", "advisory") in violations(fast, "flux-sync-interval")
    leaky = mutate(found, FLUX, lambda p: p["ociRepository"].update(url="oci://u:p@ghcr.io/o/r"))
    assert [path for _, path, _ in violations(leaky, "flux-source-url-secure")] == ["ociRepository.url"]


# --------------------------------------------------------------------------------------------- flux-oci-verified


@pytest.mark.parametrize(
    ("oci", "expect"),
    [
        ({}, []),
        ({"verify": None}, [("demo", "ociRepository.verify", "mandatory")]),
        ({"verify": {"provider": "notation", "verificationConfig": {"trustpolicy.json": KV, "a.crt": KV}}}, []),
        ({"insecure": True}, [("demo", "ociRepository.insecure", "mandatory")]),
        (
            {"insecure": True, "verify": None},
            [("demo", "ociRepository.insecure", "mandatory"), ("demo", "ociRepository.verify", "mandatory")],
        ),
    ],
)
def test_an_oci_source_is_verified_and_not_insecure(raw, oci, expect):
    found = resources(oci_stack(raw, **oci))
    assert violations(found, "flux-oci-verified") == expect
    reported = run_pack(found, "flux-oci-verified")
    assert len(reported) == len(expect) and all(path in " ".join(reported) for _, path, _ in expect)


def test_a_git_source_is_no_oci_violation(raw):
    assert violations(resources(hardened(raw)), "flux-oci-verified") == []


# --------------------------------------------------------------------------------------------- flux-source-identity

GITHUB_APP = {
    "provider": "GitHub",
    "githubAppID": 1,
    "githubAppInstallationID": 2,
    "githubAppPrivateKey": {"keyVault": "kv-test", "secret": "app-key"},
}


def git(raw: dict[str, Any], **source: Any) -> dict[str, Any]:
    hardened(raw)
    raw["flux"]["configurations"]["demo"]["git"] = {"branch": "main", **source}
    return raw


@pytest.mark.parametrize(
    ("source", "path", "instead"),
    [
        (
            {"url": "https://github.com/o/r", "httpsUser": "git", "httpsKey": KV},
            "configurationProtectedSettings.httpsKey",
            "GitHub App",
        ),
        (
            {"url": "ssh://git@github.com/o/r", "sshPrivateKey": {"keyVault": "kv-test", "secret": "deploy-key"}},
            "configurationProtectedSettings.sshPrivateKey",
            "GitHub App",
        ),
        (
            {"url": "git@github.com:o/r.git"},
            "configurationProtectedSettings.sshPrivateKey",
            "GitHub App",
        ),  # Flux makes a key
        (
            {"url": "https://dev.azure.com/contoso/fleet/_git/p", "httpsUser": "git", "httpsKey": KV},
            "configurationProtectedSettings.httpsKey",
            "provider: Azure",
        ),
        (
            {"url": "https://contoso.visualstudio.com/fleet/_git/p", "httpsUser": "git", "httpsKey": KV},
            "configurationProtectedSettings.httpsKey",
            "provider: Azure",
        ),
    ],
)
def test_a_long_lived_git_credential_where_an_identity_would_do_is_advised_against(raw, source, path, instead):
    found = resources(git(raw, **source))
    [(name, where, level)] = violations(found, "flux-source-identity")
    assert (name, where, level) == ("demo", path, "advisory")
    [violation] = [v for v in evaluate(found) if v.policy == "flux-source-identity"]
    assert instead in violation.message
    assert [message for message in run_pack(found, "flux-source-identity") if path in message]


@pytest.mark.parametrize(
    "source",
    [
        {"url": "https://git.example.com/o/r", "httpsUser": "git", "httpsKey": KV},  # no identity there
        {"url": "https://github.com/fluxcd/flux2-kustomize-helm-example"},  # public: nothing to store
        {"url": "https://github.com/o/r", **GITHUB_APP},
    ],
)
def test_no_advice_where_no_identity_would_do_or_one_is_used(raw, source):
    assert violations(resources(git(raw, **source)), "flux-source-identity") == []


def test_an_azure_devops_source_with_workload_identity_passes(raw):
    found = resources(ado_stack(raw))
    assert evaluate(found) == []


def test_bucket_and_blob_keys_are_advised_against_and_a_managed_identity_is_not(raw):
    hardened(raw)
    configurations = raw["flux"]["configurations"]
    configurations["bucket"] = {
        "bucket": {"url": "https://minio.example.com", "bucketName": "b", "accessKey": "ak", "secretKey": KV},
        "kustomizations": {"apps": {"prune": True}},
    }
    configurations["blob"] = {
        "azureBlob": {"url": "https://acct.blob.core.windows.net", "containerName": "c", "sasToken": KV},
        "kustomizations": {"apps": {"prune": True}},
    }
    configurations["mi"] = {
        "azureBlob": {
            "url": "https://acct.blob.core.windows.net",
            "containerName": "c",
            "managedIdentity": {"clientId": IDENTITY},
        },
        "kustomizations": {"apps": {"prune": True}},
    }
    assert sorted(violations(resources(raw), "flux-source-identity")) == [
        ("blob", "azureBlob.sasToken", "advisory"),
        ("bucket", "configurationProtectedSettings.bucketSecretKey", "advisory"),
    ]


# --------------------------------------------------------------------------------------------- flux-workload-identity-ready


def test_workload_identity_sources_need_it_on_in_the_extension_and_the_cluster(raw):
    found = resources(ado_stack(raw))
    assert violations(found, "flux-workload-identity-ready") == []
    assert run_pack(found, "flux-workload-identity-ready") == []
    off = mutate(found, "kubernetesconfiguration:Extension", lambda p: p.update(configurationSettings={}))
    assert violations(off, "flux-workload-identity-ready") == [("demo", "gitRepository.provider", "mandatory")]
    assert [m for m in run_pack(off, "flux-workload-identity-ready") if "gitRepository.provider" in m]
    no_oidc = mutate(found, "containerservice:ManagedCluster", lambda p: p["oidcIssuerProfile"].update(enabled=False))
    [violation] = [v for v in evaluate(no_oidc) if v.policy == "flux-workload-identity-ready"]
    assert "OIDC issuer" in violation.message


def test_an_oci_source_with_workload_identity_needs_it_too(raw):
    found = resources(identity(oci_stack(raw, useWorkloadIdentity=True)))
    assert violations(found, "flux-workload-identity-ready") == []
    off = mutate(found, "kubernetesconfiguration:Extension", lambda p: p.update(configurationSettings={}))
    assert violations(off, "flux-workload-identity-ready") == [
        ("demo", "ociRepository.useWorkloadIdentity", "mandatory")
    ]


def test_the_github_app_key_is_protected_like_any_credential(raw):
    source = {**GITHUB_APP, "githubAppPrivateKey": {"keyVault": "kv-test", "secret": "app-key"}}
    found = resources(git(raw, url="https://github.com/o/r", **source))
    assert violations(found, "flux-credentials-protected") == []
    leaked = mutate(found, FLUX, lambda p: p["gitRepository"].update(githubAppPrivateKey=private_key("rsa", "pkcs1")))
    assert ("demo", "gitRepository.githubAppPrivateKey", "mandatory") in violations(
        leaked, "flux-credentials-protected"
    )
