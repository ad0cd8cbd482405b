"""The Flux configuration the program declares: source, refs, kustomizations, protected settings."""

import base64

import pytest

from tests.conftest import CANARY, CanaryKeyVault, deploy, reveal

FLUX = "kubernetesconfiguration:FluxConfiguration"


def demo(raw):
    return raw["flux"]["configurations"]["demo"]


def test_git_source_and_kustomization_graph(raw):
    demo(raw)["kustomizations"]["apps"].update({"syncInterval": "10m", "retryInterval": "2m", "timeout": "1h30m"})
    demo(raw)["kustomizations"]["apps"]["syncInterval"] = "2h"
    inputs = deploy(raw).one(FLUX).inputs
    assert inputs["fluxConfigurationName"] == "demo"
    assert inputs["namespace"] == "flux-system" and inputs["scope"] == "cluster" and inputs["suspend"] is False
    assert inputs["sourceKind"] == "GitRepository"
    git = inputs["gitRepository"]
    assert git["url"] == "https://github.com/fluxcd/flux2-kustomize-helm-example"
    assert git["repositoryRef"] == {"branch": "main"}
    assert git["httpsUser"] == "git"
    apps = inputs["kustomizations"]["apps"]
    assert apps["dependsOn"] == ["infra"] and apps["path"] == "./apps/staging" and apps["prune"] is True
    assert (apps["syncIntervalInSeconds"], apps["retryIntervalInSeconds"], apps["timeoutInSeconds"]) == (
        7200,
        120,
        5400,
    )
    assert "dependsOn" not in inputs["kustomizations"]["infra"]


@pytest.mark.parametrize(
    ("ref", "wire"),
    [
        ({"tag": "v1.2.0"}, {"tag": "v1.2.0"}),
        ({"semver": ">=1.0.0 <2.0.0"}, {"semver": ">=1.0.0 <2.0.0"}),
        ({"branch": "main", "commit": "0ba6f0d"}, {"branch": "main", "commit": "0ba6f0d"}),
    ],
)
def test_git_refs(raw, ref, wire):
    git = demo(raw)["git"]
    del git["branch"]
    git.update(ref)
    assert deploy(raw).one(FLUX).inputs["gitRepository"]["repositoryRef"] == wire


def test_https_key_is_protected_secret_and_base64_once(raw):
    deployment = deploy(raw)
    flux = deployment.one(FLUX)
    assert flux.inputs["configurationProtectedSettings"] == "[secret]"
    assert flux.secrets == ["configurationProtectedSettings"]
    assert "configurationProtectedSettings" in flux.options["additionalSecretOutputs"]
    protected = reveal(deployment.raw(FLUX)["configurationProtectedSettings"])
    assert set(protected) == {"httpsKey"}
    assert base64.b64decode(protected["httpsKey"]).decode() == CANARY  # decoded once, it is the key itself


def test_ssh_key_and_known_hosts(raw):
    from tests.modules.spec.ssh import DEPLOY_KEY, DeployKeyVault, known_hosts_line

    known_hosts = known_hosts_line()
    git = demo(raw)["git"]
    git.update(
        {
            "url": "ssh://git@github.com/org/repo",
            "sshPrivateKey": {"keyVault": "kv-test", "secret": "deploy-key"},
            "sshKnownHosts": known_hosts,
        }
    )
    del git["httpsUser"], git["httpsKey"]
    deployment = deploy(raw, key_vault=DeployKeyVault())
    inputs = deployment.one(FLUX).inputs
    assert base64.b64decode(inputs["gitRepository"]["sshKnownHosts"]).decode() == known_hosts
    protected = reveal(deployment.raw(FLUX)["configurationProtectedSettings"])
    assert set(protected) == {"sshPrivateKey"} and base64.b64decode(protected["sshPrivateKey"]).decode() == DEPLOY_KEY


def test_pulumi_secret_config_value_is_protected_too(raw):
    demo(raw)["git"]["httpsKey"] = "ghp_fromPulumiSecretConfig"  # decrypted by the engine
    deployment = deploy(raw, plain_strings_are_secret=True)
    protected = reveal(deployment.raw(FLUX)["configurationProtectedSettings"])
    assert base64.b64decode(protected["httpsKey"]).decode() == "ghp_fromPulumiSecretConfig"


def test_public_repository_sends_no_protected_settings(raw):
    del demo(raw)["git"]["httpsUser"], demo(raw)["git"]["httpsKey"]
    flux = deploy(raw).one(FLUX)
    assert "configurationProtectedSettings" not in flux.inputs and flux.secrets == []


def test_bucket_source_is_tls_with_protected_secret_key(raw):
    del demo(raw)["git"]
    demo(raw)["bucket"] = {
        "url": "https://minio.example.com",
        "bucketName": "flux",
        "accessKey": "AKIAEXAMPLE",
        "secretKey": {"keyVault": "kv-test", "secret": "minio"},
        "syncInterval": "5m",
    }
    deployment = deploy(raw)
    inputs = deployment.one(FLUX).inputs
    assert inputs["sourceKind"] == "Bucket"
    assert inputs["bucket"] == {
        "url": "https://minio.example.com",
        "bucketName": "flux",
        "accessKey": "AKIAEXAMPLE",
        "insecure": False,
        "syncIntervalInSeconds": 300,
        "timeoutInSeconds": 300,
    }
    protected = reveal(deployment.raw(FLUX)["configurationProtectedSettings"])
    assert base64.b64decode(protected["bucketSecretKey"]).decode() == CANARY


@pytest.mark.parametrize(
    ("interval", "timeout", "sent"),
    [("5m", None, 300), ("20m", None, 600), ("5m", "1m", 60), (None, None, 600)],
)
def test_timeout_never_outlasts_a_short_interval(raw, interval, timeout, sent):
    """Unset, the API's 600 s timeout would let one attempt run past the next 5-minute sync."""
    settings = {k: v for k, v in (("syncInterval", interval), ("timeout", timeout)) if v}
    demo(raw)["git"].update(settings)
    demo(raw)["kustomizations"]["apps"].update(settings)
    inputs = deploy(raw).one(FLUX).inputs
    assert inputs["gitRepository"]["timeoutInSeconds"] == sent
    assert inputs["kustomizations"]["apps"]["timeoutInSeconds"] == sent


def test_azure_blob_account_key_is_secret(raw):
    del demo(raw)["git"]
    demo(raw)["azureBlob"] = {
        "url": "https://acct.blob.core.windows.net",
        "containerName": "flux",
        "accountKey": {"keyVault": "kv-test", "secret": "blob-key"},
    }
    deployment = deploy(raw)
    flux = deployment.one(FLUX)
    assert flux.inputs["sourceKind"] == "AzureBlob" and flux.inputs["azureBlob"]["accountKey"] == "[secret]"
    assert "azureBlob.accountKey" in flux.secrets and "azureBlob" in flux.options["additionalSecretOutputs"]
    assert reveal(deployment.raw(FLUX)["azureBlob"])["accountKey"] == CANARY  # the engine sees it secret


def test_scope_and_namespace_replace_and_configuration_waits_for_extension(raw):
    deployment = deploy(raw)
    flux = deployment.one(FLUX)
    extension = deployment.one("kubernetesconfiguration:Extension")
    assert set(flux.options["replaceOnChanges"]) == {"scope", "namespace"}
    assert flux.options["deleteBeforeReplace"] is True
    assert extension.urn in flux.options["dependsOn"]


def test_post_build_and_reconciliation_wait(raw):
    demo(raw).update({"waitForReconciliation": True, "reconciliationWaitDuration": "PT30M", "suspend": True})
    demo(raw)["kustomizations"]["apps"]["postBuild"] = {
        "substitute": {"cluster_env": "dev"},
        "substituteFrom": [{"kind": "ConfigMap", "name": "cluster-vars"}],
    }
    inputs = deploy(raw).one(FLUX).inputs
    assert inputs["waitForReconciliation"] is True and inputs["reconciliationWaitDuration"] == "PT30M"
    assert inputs["suspend"] is True
    assert inputs["kustomizations"]["apps"]["postBuild"] == {
        "substitute": {"cluster_env": "dev"},
        "substituteFrom": [{"kind": "ConfigMap", "name": "cluster-vars", "optional": False}],
    }


def test_each_key_vault_secret_is_read_once(raw):
    second = {"git": dict(demo(raw)["git"]), "kustomizations": {"apps": {"path": "./apps"}}}
    raw["flux"]["configurations"]["second"] = second
    key_vault = CanaryKeyVault()
    deployment = deploy(raw, key_vault=key_vault)
    assert len(key_vault.reads) == 1
    assert len([r for r in deployment.records if r.type.endswith(FLUX)]) == 2
