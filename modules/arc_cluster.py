"""An Azure Arc-connected cluster, adopted by name: its agent onboarded it, fluxfleet only reads it."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import kubernetes

from modules.cluster_ref import ClusterRef
from modules.options import child_options
from modules.spec import ClusterSpec


@dataclass(frozen=True)
class ArcClusterArgs:
    cluster: ClusterSpec  # kind arc, validated by modules.spec
    subscription_id: pulumi.Input[str]


class ArcCluster(pulumi.ComponentResource):
    """Reads the connected cluster (nothing is created or changed) and exposes the same `ref` as `AksCluster`."""

    def __init__(self, name: str, args: ArcClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("fluxfleet:cluster:ArcCluster", name, None, opts)
        spec = args.cluster
        adopted = ClusterRef.arc(spec.name, spec.resource_group)
        resource_id = pulumi.Output.from_input(args.subscription_id).apply(adopted.resource_id)
        self.connected_cluster = kubernetes.ConnectedCluster.get(name, resource_id, opts=child_options(self, opts))
        self.id = self.connected_cluster.id
        self.ref = ClusterRef.arc(self.connected_cluster.name, spec.resource_group)
        self.register_outputs({"id": self.id, "name": self.connected_cluster.name})
