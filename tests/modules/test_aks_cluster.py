"""The AKS cluster the program declares, as ARM will receive it."""

from tests.conftest import deploy

SUBNET = (
    "/subscriptions/6f1c2e0a-3b4d-4c5e-8f90-1a2b3c4d5e6f/resourceGroups/rg-net/providers/Microsoft.Network"
    "/virtualNetworks/vnet-weu/subnets/snet-apps"
)


def test_managed_cluster_is_baseline_shaped(raw):
    raw["cluster"]["aadAdminGroupObjectIds"] = ["6f1c2e0a-3b4d-4c5e-8f90-1a2b3c4d5e6f"]
    cluster = deploy(raw).one(":ManagedCluster")
    inputs = cluster.inputs
    assert inputs["resourceName"] == "aks-test" and inputs["resourceGroupName"] == "rg-test"
    assert inputs["location"] == "westeurope" and inputs["kubernetesVersion"] == "1.35"
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


def test_the_cluster_declares_only_its_system_pool(raw):
    raw["cluster"]["nodePools"].append({"name": "apps", "vmSize": "Standard_D8s_v5", "minCount": 2, "maxCount": 6})
    cluster = deploy(raw).one(":ManagedCluster")
    # AKS needs a System pool at creation, and refuses a cluster update that introduces a pool: only this one inline
    assert cluster.inputs["agentPoolProfiles"] == [
        {
            "name": "system",
            "vmSize": "Standard_D4s_v5",
            "mode": "System",
            "osType": "Linux",
            "type": "VirtualMachineScaleSets",
            "count": 3,
            "enableAutoScaling": False,
        }
    ]
    # the cluster owns its pool, bar AKS's node image; nothing freezes or replays the pool list
    assert cluster.options["ignoreChanges"] == ["agentPoolProfiles[0].nodeImageVersion"]
    assert cluster.options["replaceOnChanges"] == []


def test_every_other_pool_is_an_agent_pool_of_the_cluster_component(raw):
    raw["cluster"]["nodePools"] += [
        {
            "name": "apps",
            "vmSize": "Standard_D8s_v5",
            "minCount": 2,
            "maxCount": 6,
            "zones": ["1", "2"],
            "maxPods": 60,
            "nodeLabels": {"workload": "apps", "example.com/team": "web"},
            "nodeTaints": ["dedicated=apps:NoSchedule"],
            "vnetSubnetId": SUBNET,
            "maxSurge": "33%",
            "osSKU": "AzureLinux",
        },
        {"name": "win", "vmSize": "Standard_D4s_v5", "count": 2, "osType": "Windows", "osSKU": "Windows2022"},
    ]
    deployment = deploy(raw)
    component = deployment.one(":AksCluster")
    cluster = deployment.one(":ManagedCluster")
    pools = {r.name: r for r in deployment.records if r.type == "azure-native:containerservice:AgentPool"}
    assert set(pools) == {"apps", "win"}
    apps, win = pools["apps"], pools["win"]
    assert apps.parent == win.parent == component.urn
    assert apps.inputs == {
        "agentPoolName": "apps",
        "resourceGroupName": "rg-test",
        "resourceName": "aks-test",  # the cluster's name output: the pool waits for the cluster
        "vmSize": "Standard_D8s_v5",
        "mode": "User",
        "osType": "Linux",
        "osSKU": "AzureLinux",
        "type": "VirtualMachineScaleSets",
        "count": 2,
        "enableAutoScaling": True,
        "minCount": 2,
        "maxCount": 6,
        "availabilityZones": ["1", "2"],
        "maxPods": 60,
        "nodeLabels": {"workload": "apps", "example.com/team": "web"},
        "nodeTaints": ["dedicated=apps:NoSchedule"],
        "vnetSubnetID": SUBNET,
        "upgradeSettings": {"maxSurge": "33%"},
    }
    assert cluster.urn in apps.options["dependsOn"]
    assert (win.inputs["osType"], win.inputs["osSKU"], win.inputs["count"]) == ("Windows", "Windows2022", 2)
    # the autoscaler owns an autoscaled pool's count; a fixed pool's count is the spec's
    assert apps.options["ignoreChanges"] == ["count"] and win.options["ignoreChanges"] == []
    # a new VM size replaces the pool, deleted first (the new one takes the same name); removing a pool from the
    # spec deletes it: it is not protected like the cluster
    assert apps.options["replaceOnChanges"] == ["vmSize"]
    assert apps.options["deleteBeforeReplace"] is True and apps.options["protect"] is False
    assert [p["name"] for p in cluster.inputs["agentPoolProfiles"]] == ["system"]


def test_the_first_system_pool_is_the_clusters_own_and_others_are_agent_pools(raw):
    raw["cluster"]["nodePools"] = [
        {"name": "apps", "vmSize": "Standard_D8s_v5", "count": 2},
        {"name": "sys", "vmSize": "Standard_D4s_v5", "minCount": 1, "maxCount": 3, "mode": "System"},
        {"name": "sys2", "vmSize": "Standard_D4s_v5", "count": 1, "mode": "System"},
    ]
    deployment = deploy(raw)
    cluster = deployment.one(":ManagedCluster")
    assert [p["name"] for p in cluster.inputs["agentPoolProfiles"]] == ["sys"]
    assert cluster.options["ignoreChanges"] == ["agentPoolProfiles[0].count", "agentPoolProfiles[0].nodeImageVersion"]
    pools = {r.name: r.inputs["mode"] for r in deployment.records if r.type.endswith(":AgentPool")}
    assert pools == {"apps": "User", "sys2": "System"}


def test_the_new_pool_keys_reach_the_clusters_own_pool(raw):
    raw["cluster"]["nodePools"][0].update(
        nodeTaints=["CriticalAddonsOnly=true:NoSchedule"], maxSurge=2, nodeLabels={"tier": "system"}
    )
    [pool] = deploy(raw).one(":ManagedCluster").inputs["agentPoolProfiles"]
    assert pool["nodeTaints"] == ["CriticalAddonsOnly=true:NoSchedule"] and pool["nodeLabels"] == {"tier": "system"}
    assert pool["upgradeSettings"] == {"maxSurge": "2"}  # ARM takes a string


def test_cluster_is_protected_unless_the_spec_says_not(raw):
    assert deploy(raw).one(":ManagedCluster").options["protect"] is True
    raw["cluster"]["protect"] = False
    assert deploy(raw).one(":ManagedCluster").options["protect"] is False


def test_cluster_waits_for_its_resource_providers(raw):
    deployment = deploy(raw)
    registrations = {r.urn for r in deployment.records if r.type.endswith(":ProviderRegistration")}
    assert len(registrations) == 3
    assert registrations <= set(deployment.one(":ManagedCluster").options["dependsOn"])


MAINTENANCE = "azure-native:containerservice:MaintenanceConfiguration"


def maintenance_configurations(deployment) -> dict:
    return {r.name: r for r in deployment.records if r.type == MAINTENANCE}


def test_the_upgrade_channels_and_their_window_are_the_clusters(raw):
    raw["cluster"]["upgrade"] = {
        "channel": "stable",
        "nodeOSChannel": "SecurityPatch",
        "windows": [{"cron": "0 22 * * 6", "duration": "5h", "timezone": "Europe/Amsterdam"}],
    }
    deployment = deploy(raw)
    component = deployment.one(":AksCluster")
    cluster = deployment.one(":ManagedCluster")
    assert cluster.inputs["autoUpgradeProfile"] == {"upgradeChannel": "stable", "nodeOSUpgradeChannel": "SecurityPatch"}
    configurations = maintenance_configurations(deployment)
    assert set(configurations) == {"aksManagedAutoUpgradeSchedule", "aksManagedNodeOSUpgradeSchedule"}
    # Saturday 22:00 in Amsterdam, at its winter offset, for the 4 hours open in both seasons
    window = {
        "schedule": {"weekly": {"dayOfWeek": "Saturday", "intervalWeeks": 1}},
        "startTime": "22:00",
        "utcOffset": "+01:00",
        "durationHours": 4,
    }
    for name, configuration in configurations.items():
        assert configuration.inputs == {
            "configName": name,
            "resourceGroupName": "rg-test",
            "resourceName": "aks-test",  # the cluster's name output: the configuration waits for the cluster
            "maintenanceWindow": window,
        }
        assert configuration.parent == component.urn
        assert cluster.urn in configuration.options["dependsOn"]
        assert configuration.options["protect"] is False  # removing the window from the spec deletes it


def test_a_daily_window_with_no_cluster_channel_times_only_the_node_os_upgrades(raw):
    raw["cluster"]["upgrade"] = {
        "channel": "none",
        "nodeOSChannel": "NodeImage",
        "windows": [{"cron": "30 2 * * *", "duration": "4h"}],
    }
    deployment = deploy(raw)
    assert deployment.one(":ManagedCluster").inputs["autoUpgradeProfile"] == {
        "upgradeChannel": "none",
        "nodeOSUpgradeChannel": "NodeImage",
    }
    [node_os] = maintenance_configurations(deployment).values()
    assert node_os.inputs["configName"] == "aksManagedNodeOSUpgradeSchedule"
    assert node_os.inputs["maintenanceWindow"] == {
        "schedule": {"daily": {"intervalDays": 1}},
        "startTime": "02:30",
        "utcOffset": "+00:00",
        "durationHours": 4,
    }


def test_without_windows_aks_schedules_nothing(raw):
    raw["cluster"]["upgrade"] = {"channel": "rapid"}
    deployment = deploy(raw)
    assert deployment.one(":ManagedCluster").inputs["autoUpgradeProfile"] == {"upgradeChannel": "rapid"}
    assert maintenance_configurations(deployment) == {}
