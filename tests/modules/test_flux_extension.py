"""The microsoft.flux extension the program declares."""

from tests.conftest import CANARY, deploy, is_secret, reveal


def test_extension_is_the_managed_flux(raw):
    extension = deploy(raw).one("kubernetesconfiguration:Extension")
    inputs = extension.inputs
    assert inputs["extensionType"] == "microsoft.flux" and inputs["extensionName"] == "flux"
    assert inputs["releaseTrain"] == "Stable" and inputs["autoUpgradeMinorVersion"] is True
    assert inputs["scope"] == {"cluster": {"releaseNamespace": "flux-system"}}
    assert (inputs["clusterRp"], inputs["clusterResourceName"], inputs["clusterName"]) == (
        "Microsoft.ContainerService",
        "managedClusters",
        "aks-test",
    )
    assert "identity" not in inputs  # on AKS the cluster's managed identity serves
    assert "version" not in inputs


def test_arc_extension_has_its_own_identity(raw):
    raw["cluster"] = {"kind": "arc", "name": "arc-1", "resourceGroup": "rg"}
    assert deploy(raw).one("kubernetesconfiguration:Extension").inputs["identity"] == {"type": "SystemAssigned"}


def test_pinned_version_and_settings(raw):
    raw["flux"]["extension"] = {
        "autoUpgradeMinorVersion": False,
        "version": "1.22.2",
        "settings": {"multiTenancy.enforce": False, "helm-controller.enabled": True},
    }
    inputs = deploy(raw).one("kubernetesconfiguration:Extension").inputs
    assert inputs["autoUpgradeMinorVersion"] is False and inputs["version"] == "1.22.2"
    assert inputs["configurationSettings"] == {"multiTenancy.enforce": "false", "helm-controller.enabled": "true"}


def test_protected_settings_are_secret_and_kept_out_of_state(raw):
    raw["flux"]["extension"] = {"protectedSettings": {"token": {"keyVault": "kv-test", "secret": "token"}}}
    deployment = deploy(raw)
    extension = deployment.one("kubernetesconfiguration:Extension")
    assert extension.inputs["configurationProtectedSettings"] == "[secret]"
    assert "configurationProtectedSettings" in extension.secrets
    assert "configurationProtectedSettings" in extension.options["additionalSecretOutputs"]
    raw_value = deployment.raw("kubernetesconfiguration:Extension")["configurationProtectedSettings"]
    assert is_secret(raw_value) and reveal(raw_value) == {"token": CANARY}  # extension settings are not base64


def test_extension_waits_for_cluster_and_providers_with_bounded_timeouts(raw):
    deployment = deploy(raw)
    extension = deployment.one("kubernetesconfiguration:Extension")
    needed = {r.urn for r in deployment.records if r.type.endswith((":ManagedCluster", ":ProviderRegistration"))}
    assert needed <= set(extension.options["dependsOn"])
    assert extension.options["customTimeouts"] == {"create": "30m", "update": "30m", "delete": "30m"}
    assert extension.options["deleteBeforeReplace"] is True


CLIENT_ID = "0a1b2c3d-1111-2222-3333-444455556666"
CONTROLLERS = {
    "helm": {"enabled": False},
    "kustomize": {"concurrent": 6, "requeueDependency": "90s"},
    "imageAutomation": {"enabled": True},
    "imageReflector": {"enabled": True},
    "multiTenancy": {"enforce": False},
    "workloadIdentity": {"enable": True, "azureClientId": CLIENT_ID},
}


def test_typed_controllers_are_sent_under_the_extensions_documented_keys_as_strings(raw):
    raw["flux"]["extension"] = {"controllers": CONTROLLERS, "settings": {"helm-controller.detectDrift": True}}
    inputs = deploy(raw).one("kubernetesconfiguration:Extension").inputs
    assert inputs["configurationSettings"] == {
        "helm-controller.detectDrift": "true",  # free-form settings stay beside them
        "helm-controller.enabled": "false",
        "image-automation-controller.enabled": "true",
        "image-reflector-controller.enabled": "true",
        "kustomize-controller.concurrent": "6",
        "kustomize-controller.requeue-dependency": "1m30s",
        "multiTenancy.enforce": "false",
        "workloadIdentity.enable": "true",
        "workloadIdentity.azureClientId": CLIENT_ID,
    }


def test_controllers_left_unset_send_no_key(raw):
    """The extension keeps its own defaults, and a stack without `controllers` sends what it sent before."""
    inputs = deploy(raw).one("kubernetesconfiguration:Extension").inputs
    assert "configurationSettings" not in inputs
    raw["flux"]["extension"] = {"controllers": {"source": {}, "multiTenancy": {}}, "settings": {"a": "b"}}
    assert deploy(raw).one("kubernetesconfiguration:Extension").inputs["configurationSettings"] == {"a": "b"}
