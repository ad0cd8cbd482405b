"""An AKS cluster set up the way the Flux extension and the AKS baseline expect."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_azure_native import containerservice
from pydantic.alias_generators import to_snake

from modules.cluster_ref import ClusterRef
from modules.options import child_options
from modules.spec import ClusterSpec
from modules.spec.cluster import NodePool
from modules.spec.maintenance import AksWindow, aks_window

# Key Vault secrets provider (CSI driver) with rotation, so pods see a rotated secret without a restart.
KEYVAULT_ADDON = "azureKeyvaultSecretsProvider"
KEYVAULT_ROTATION_POLL = "2m"
# A new VM size replaces an AgentPool (azure-native does so itself since pulumi/pulumi-azure-native#3655; said here so
# that `plan` shows it), the old pool deleted first: the new one takes its name. The other keys AKS fixes at creation
# (osType, maxPods, vnetSubnetID, availabilityZones) are not replace triggers: AKS refuses their change, so the update
# fails and nothing is deleted; and after `pulumi import` a pool's state holds AKS's defaults (maxPods) that the
# program leaves unset, which as a trigger would replace the pool on its first update.
POOL_CREATE_ONLY = ["vmSize"]


@dataclass(frozen=True)
class AksClusterArgs:
    cluster: ClusterSpec  # kind aks, validated by modules.spec


class AksCluster(pulumi.ComponentResource):
    """`containerservice.ManagedCluster` with managed identity, Entra ID + Azure RBAC, OIDC issuer and workload
    identity, and the Key Vault secrets provider; its node pools beyond the system pool as `AgentPool` children.

    Node pools: AKS refuses a managed-cluster update that introduces a pool ("A new agent pool was introduced",
    pulumi/pulumi-azure-native#579), and needs one System pool at creation. So the cluster declares exactly one pool
    inline, the first System pool of the spec, and owns it: its count, autoscaler bounds, labels, taints and surge
    are updated by the cluster's own update (AKS updates the existing pools a managed-cluster PUT names, and leaves
    the pools it does not name alone). Every other pool is an `AgentPool` resource: adding, resizing or removing one
    is a create, update or delete of that pool and never changes the cluster's inputs. The cluster ignores only what
    it does not own in its pool: the autoscaler's count and AKS's node image. It does not ignore `agentPoolProfiles`
    as a whole: that would freeze the system pool, and replay a stale pool list on the next cluster update
    (pulumi/pulumi-azure-native#2719). The cluster keeps its name and URN, so an existing stack is not replaced; a
    pool that was inline before is imported as an AgentPool once (README, "Node pools").

    Upgrades AKS starts itself: the auto-upgrade and node OS channels of `cluster.upgrade`, and its window as the
    `aksManagedAutoUpgradeSchedule` and `aksManagedNodeOSUpgradeSchedule` maintenance configurations, children of
    this component (modules/spec/maintenance.py maps the window).
    """

    def __init__(self, name: str, args: AksClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("fluxfleet:cluster:AksCluster", name, None, opts)
        spec = args.cluster
        pools = spec.node_pools or []
        system = own_pool(pools)
        cilium = spec.network_policy == "cilium"
        self.managed_cluster = containerservice.ManagedCluster(
            name,
            resource_name_=spec.name,
            resource_group_name=spec.resource_group,
            location=spec.location,
            dns_prefix=spec.dns_prefix or spec.name,
            kubernetes_version=spec.kubernetes_version,
            identity=containerservice.ManagedClusterIdentityArgs(
                type=containerservice.ResourceIdentityType.SYSTEM_ASSIGNED
            ),
            enable_rbac=True,
            aad_profile=containerservice.ManagedClusterAADProfileArgs(
                managed=True,
                enable_azure_rbac=True,
                admin_group_object_ids=spec.aad_admin_group_object_ids,
            ),
            disable_local_accounts=True if spec.disable_local_accounts is None else spec.disable_local_accounts,
            oidc_issuer_profile=containerservice.ManagedClusterOIDCIssuerProfileArgs(enabled=True),
            security_profile=containerservice.ManagedClusterSecurityProfileArgs(
                workload_identity=containerservice.ManagedClusterSecurityProfileWorkloadIdentityArgs(enabled=True),
            ),
            addon_profiles={
                KEYVAULT_ADDON: containerservice.ManagedClusterAddonProfileArgs(
                    enabled=True,
                    config={"enableSecretRotation": "true", "rotationPollInterval": KEYVAULT_ROTATION_POLL},
                ),
            },
            agent_pool_profiles=[
                containerservice.ManagedClusterAgentPoolProfileArgs(name=system.name, **pool_properties(system))
            ]
            if system
            else None,
            network_profile=containerservice.ContainerServiceNetworkProfileArgs(
                network_plugin=spec.network_plugin or "azure",
                network_policy=spec.network_policy,
                # Cilium network policy runs only on the Cilium dataplane, which needs overlay networking.
                **({"network_dataplane": "cilium", "network_plugin_mode": "overlay"} if cilium else {}),
            ),
            auto_upgrade_profile=containerservice.ManagedClusterAutoUpgradeProfileArgs(
                upgrade_channel=spec.upgrade_channel,  # patch unless set: patches within the version the spec names
                node_os_upgrade_channel=spec.node_os_upgrade_channel,
            ),
            api_server_access_profile=containerservice.ManagedClusterAPIServerAccessProfileArgs(
                enable_private_cluster=spec.private_cluster,
                authorized_ip_ranges=spec.authorized_ip_ranges,
            )
            if spec.private_cluster or spec.authorized_ip_ranges
            else None,
            tags=spec.tags,
            opts=child_options(
                self,
                opts,
                protect=spec.protect,
                # The autoscaler owns the system pool's node count and AKS its node image: neither is drift.
                ignore_changes=[
                    *(["agentPoolProfiles[0].count"] if system and system.autoscaled else []),
                    *(["agentPoolProfiles[0].nodeImageVersion"] if system else []),
                ],
                custom_timeouts=pulumi.CustomTimeouts(create="60m", update="60m", delete="60m"),
            ),
        )
        self.agent_pools = {
            pool.name: containerservice.AgentPool(
                pool.name,
                agent_pool_name=pool.name,
                resource_group_name=spec.resource_group,
                resource_name_=self.managed_cluster.name,  # created once the cluster is
                **pool_properties(pool),
                opts=child_options(
                    self,
                    opts,
                    ignore_changes=["count"] if pool.autoscaled else [],  # the autoscaler's
                    replace_on_changes=POOL_CREATE_ONLY,
                    delete_before_replace=True,
                    custom_timeouts=pulumi.CustomTimeouts(create="60m", update="60m", delete="60m"),
                ),
            )
            for pool in pools
            if pool is not system
        }
        # `cluster.upgrade.windows`: when AKS may start the upgrades of its channels (planned maintenance).
        window = spec.upgrade.windows[0] if spec.upgrade and spec.upgrade.windows else None
        self.maintenance_configurations = {
            schedule: containerservice.MaintenanceConfiguration(
                schedule,
                config_name=schedule,
                resource_group_name=spec.resource_group,
                resource_name_=self.managed_cluster.name,  # created once the cluster is
                maintenance_window=maintenance_window(aks_window(window, schedule)),
                opts=child_options(self, opts),
            )
            for schedule in spec.maintenance_schedules
            if window  # the spec sets schedules only with a window
        }
        self.id = self.managed_cluster.id
        self.ref = ClusterRef.aks(self.managed_cluster.name, spec.resource_group)
        self.register_outputs({"id": self.id, "name": self.managed_cluster.name})


def own_pool(pools: list[NodePool]) -> NodePool | None:
    """The pool the cluster is created with and owns: the first System pool (modules.spec requires one)."""
    return next((pool for pool in pools if pool.mode == "System"), None)


_SCHEDULES = {
    "daily": containerservice.DailyScheduleArgs,
    "weekly": containerservice.WeeklyScheduleArgs,
    "absoluteMonthly": containerservice.AbsoluteMonthlyScheduleArgs,
    "relativeMonthly": containerservice.RelativeMonthlyScheduleArgs,
}


def maintenance_window(window: AksWindow) -> containerservice.MaintenanceWindowArgs:
    """A window the spec validated (modules/spec/maintenance.py) as azure-native's MaintenanceWindowArgs."""
    [(kind, fields)] = window.schedule.items()
    schedule = _SCHEDULES[kind](**{to_snake(key): value for key, value in fields.items()})
    return containerservice.MaintenanceWindowArgs(
        schedule=containerservice.ScheduleArgs(**{to_snake(kind): schedule}),
        start_time=window.start_time,
        utc_offset=window.utc_offset,
        duration_hours=window.duration_hours,
    )


def pool_properties(pool: NodePool) -> dict[str, Any]:
    """A pool's ARM properties, the same inline in the cluster and on an AgentPool. Unset keys are not sent, so a
    pool written before these keys existed sends what it sent then."""
    return {
        "vm_size": pool.vm_size,
        "mode": pool.mode,
        "os_type": pool.os_type,
        "os_sku": pool.os_sku,
        "type": "VirtualMachineScaleSets",
        "count": pool.count if not pool.autoscaled else pool.min_count,
        "enable_auto_scaling": pool.autoscaled,
        "min_count": pool.min_count,
        "max_count": pool.max_count,
        "availability_zones": pool.zones,
        "max_pods": pool.max_pods,
        "node_labels": pool.node_labels,
        "node_taints": pool.node_taints,
        "vnet_subnet_id": pool.vnet_subnet_id,
        "orchestrator_version": pool.orchestrator_version,  # unset: the pool follows the control plane
        "upgrade_settings": containerservice.AgentPoolUpgradeSettingsArgs(max_surge=pool.max_surge)
        if pool.max_surge
        else None,
    }
