"""The one value both cluster components expose and the Flux components take."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from modules.spec import ClusterSpec


@dataclass(frozen=True)
class ClusterRef:
    """Where an extension or Flux configuration attaches: `{rp}/{resource_type}/{name}` in a resource group."""

    rp: str  # Microsoft.ContainerService | Microsoft.Kubernetes
    resource_type: str  # managedClusters | connectedClusters
    name: pulumi.Input[str]
    resource_group: str
    is_arc: bool

    @staticmethod
    def aks(name: pulumi.Input[str], resource_group: str) -> ClusterRef:
        return ClusterRef("Microsoft.ContainerService", "managedClusters", name, resource_group, is_arc=False)

    @staticmethod
    def arc(name: pulumi.Input[str], resource_group: str) -> ClusterRef:
        return ClusterRef("Microsoft.Kubernetes", "connectedClusters", name, resource_group, is_arc=True)

    @staticmethod
    def of(cluster: ClusterSpec) -> ClusterRef:
        """The cluster a stack spec names (outside the program, where its name is a plain string)."""
        make = ClusterRef.aks if cluster.is_aks else ClusterRef.arc
        return make(cluster.name, cluster.resource_group)

    def arm_target(self) -> dict[str, pulumi.Input[str]]:
        """The path parameters by which ARM addresses a cluster's extensions and Flux configurations."""
        return {
            "cluster_rp": self.rp,
            "cluster_resource_name": self.resource_type,
            "cluster_name": self.name,
            "resource_group_name": self.resource_group,
        }

    def resource_id(self, subscription_id: str) -> str:
        """The ARM id, for a cluster whose name is known (an adopted Arc cluster)."""
        return (
            f"/subscriptions/{subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/{self.rp}/{self.resource_type}/{self.name}"
        )
