"""The AKS cluster the program declares, as ARM will receive it."""

from tests.conftest import deploy


def test_managed_cluster_is_baseline_shaped(raw):
    raw["cluster"]["aadAdminGroupObjectIds"] = ["6f1c2e0a-3b4d-4c5e-8f90-1a2b3c4d5e6f"]
    cluster = deploy(raw).one(":ManagedCluster")
    inputs = cluster.inputs
    assert inputs["resourceName"] == "aks-test" and inputs["resourceGroupName"] == "rg-test"
    assert inputs["location"] == "westeurope" and inputs["kubernetesVersion"] == "1.31"
    assert inputs["identity"] == {"type": "SystemAssigned"}  # the Flux extension needs a managed identity
    assert "servicePrincipalProfile" not in inputs
    assert inputs["enableRBAC"] is True
    assert inputs["aadProfile"] == {
        "managed": True,
        "enableAzureRBAC": True,
        "adminGroupObjectIDs": ["6f1c2e0a-3b4d-4c5e-8f90-1a2b3c4d5e6f"],
    }
    assert inputs["disableLocalAccounts"] is True
    assert inputs["oidcIssuerProfile"] == {"enabled": True}
    assert inputs["securityProfile"] == {"workloadIdentity": {"enabled": True}}
    assert inputs["addonProfiles"]["azureKeyvaultSecretsProvider"] == {
        "enabled": True,
        "config": {"enableSecretRotation": "true", "rotationPollInterval": "2m"},
    }
    assert inputs["dnsPrefix"] == "aks-test"


def test_upgrades_patches_by_default_and_api_server_access_as_asked(raw):
    inputs = deploy(raw).one(":ManagedCluster").inputs
    assert inputs["autoUpgradeProfile"] == {"upgradeChannel": "patch"}  # keeps the minor version the spec names
    assert "apiServerAccessProfile" not in inputs
    raw["cluster"].update(autoUpgradeChannel="stable", authorizedIpRanges=["203.0.113.0/24"])
    inputs = deploy(raw).one(":ManagedCluster").inputs
    assert inputs["autoUpgradeProfile"] == {"upgradeChannel": "stable"}
    assert inputs["apiServerAccessProfile"] == {"authorizedIPRanges": ["203.0.113.0/24"]}
    del raw["cluster"]["authorizedIpRanges"]
    raw["cluster"]["privateCluster"] = True
    assert deploy(raw).one(":ManagedCluster").inputs["apiServerAccessProfile"] == {"enablePrivateCluster": True}


def test_cilium_network_policy_runs_on_the_cilium_dataplane(raw):
    raw["cluster"]["networkPolicy"] = "cilium"
    profile = deploy(raw).one(":ManagedCluster").inputs["networkProfile"]
    wanted = {"networkPlugin": "azure", "networkPolicy": "cilium", "networkDataplane": "cilium"}
    assert {key: profile.get(key) for key in wanted} == wanted and profile["networkPluginMode"] == "overlay"


def test_local_accounts_can_be_kept_when_asked(raw):
    raw["cluster"]["disableLocalAccounts"] = False
    assert deploy(raw).one(":ManagedCluster").inputs["disableLocalAccounts"] is False


def test_node_pools_and_autoscaler_ownership(raw):
    raw["cluster"]["nodePools"].append({"name": "apps", "vmSize": "Standard_D8s_v5", "minCount": 2, "maxCount": 6})
    cluster = deploy(raw).one(":ManagedCluster")
    system, apps = cluster.inputs["agentPoolProfiles"]
    assert system["mode"] == "System" and system["count"] == 3 and system["enableAutoScaling"] is False
    assert apps["mode"] == "User" and apps["enableAutoScaling"] is True
    assert (apps["minCount"], apps["maxCount"]) == (2, 6)
    # the autoscaler owns the count of autoscaled pools, AKS the node images: neither is drift
    assert "agentPoolProfiles[1].count" in cluster.options["ignoreChanges"]
    assert "agentPoolProfiles[0].count" not in cluster.options["ignoreChanges"]
    assert {"agentPoolProfiles[0].nodeImageVersion", "agentPoolProfiles[1].nodeImageVersion"} <= set(
        cluster.options["ignoreChanges"]
    )


def test_cluster_is_protected_unless_the_spec_says_not(raw):
    assert deploy(raw).one(":ManagedCluster").options["protect"] is True
    raw["cluster"]["protect"] = False
    assert deploy(raw).one(":ManagedCluster").options["protect"] is False


def test_cluster_waits_for_its_resource_providers(raw):
    deployment = deploy(raw)
    registrations = {r.urn for r in deployment.records if r.type.endswith(":ProviderRegistration")}
    assert len(registrations) == 3
    assert registrations <= set(deployment.one(":ManagedCluster").options["dependsOn"])
