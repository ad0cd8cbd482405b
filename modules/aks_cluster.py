"""An AKS cluster set up the way the Flux extension and the AKS baseline expect."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import containerservice

from modules.cluster_ref import ClusterRef
from modules.options import child_options
from modules.spec import ClusterSpec

# Key Vault secrets provider (CSI driver) with rotation, so pods see a rotated secret without a restart.
KEYVAULT_ADDON = "azureKeyvaultSecretsProvider"
KEYVAULT_ROTATION_POLL = "2m"


@dataclass(frozen=True)
class AksClusterArgs:
    cluster: ClusterSpec  # kind aks, validated by modules.spec


class AksCluster(pulumi.ComponentResource):
    """`containerservice.ManagedCluster` with managed identity, Entra ID + Azure RBAC, OIDC issuer and workload
    identity, and the Key Vault secrets provider."""

    def __init__(self, name: str, args: AksClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("fluxfleet:cluster:AksCluster", name, None, opts)
        spec = args.cluster
        pools = spec.node_pools or []
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
                containerservice.ManagedClusterAgentPoolProfileArgs(
                    name=pool.name,
                    vm_size=pool.vm_size,
                    mode=pool.mode,
                    os_type="Linux",
                    type="VirtualMachineScaleSets",
                    count=pool.count if not pool.autoscaled else pool.min_count,
                    enable_auto_scaling=pool.autoscaled,
                    min_count=pool.min_count,
                    max_count=pool.max_count,
                    availability_zones=pool.zones,
                )
                for pool in pools
            ],
            network_profile=containerservice.ContainerServiceNetworkProfileArgs(
                network_plugin=spec.network_plugin or "azure",
                network_policy=spec.network_policy,
                # Cilium network policy runs only on the Cilium dataplane, which needs overlay networking.
                **({"network_dataplane": "cilium", "network_plugin_mode": "overlay"} if cilium else {}),
            ),
            auto_upgrade_profile=containerservice.ManagedClusterAutoUpgradeProfileArgs(
                upgrade_channel=spec.auto_upgrade_channel or "patch",  # patches within the version the spec names
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
                # The autoscaler owns node counts and AKS the node images: neither is drift.
                ignore_changes=[
                    *(f"agentPoolProfiles[{i}].count" for i, pool in enumerate(pools) if pool.autoscaled),
                    *(f"agentPoolProfiles[{i}].nodeImageVersion" for i in range(len(pools))),
                ],
                custom_timeouts=pulumi.CustomTimeouts(create="60m", update="60m", delete="60m"),
            ),
        )
        self.id = self.managed_cluster.id
        self.ref = ClusterRef.aks(self.managed_cluster.name, spec.resource_group)
        self.register_outputs({"id": self.id, "name": self.managed_cluster.name})
