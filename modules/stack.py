"""The whole program for one stack: providers -> cluster -> Flux extension -> Flux configurations."""

from __future__ import annotations

import pulumi
from pulumi_azure_native import authorization

from modules.aks_cluster import AksCluster, AksClusterArgs
from modules.arc_cluster import ArcCluster, ArcClusterArgs
from modules.flux_configuration import FluxConfiguration, FluxConfigurationArgs
from modules.flux_extension import FluxExtension, FluxExtensionArgs
from modules.keyvault import Secrets
from modules.providers import ProviderRegistrations, ProviderRegistrationsArgs
from modules.spec import StackSpec


def build_stack(spec: StackSpec, secrets: Secrets) -> dict[str, pulumi.Output]:
    """Declare every resource of the stack and return its outputs (ids and secret versions, never a secret)."""
    subscription_id = spec.cluster.subscription_id or authorization.get_client_config_output().subscription_id
    registrations = ProviderRegistrations(
        "providers", ProviderRegistrationsArgs(subscription_id, spec.providers, spec.features, spec.cluster.cloud)
    )
    after_registrations = pulumi.ResourceOptions(depends_on=registrations.resources)
    if spec.cluster.is_aks:
        cluster: AksCluster | ArcCluster = AksCluster(
            spec.cluster.name, AksClusterArgs(spec.cluster), after_registrations
        )
    else:
        cluster = ArcCluster(spec.cluster.name, ArcClusterArgs(spec.cluster, subscription_id), after_registrations)
    extension = FluxExtension(
        "flux",
        FluxExtensionArgs(cluster.ref, spec.flux.extension, secrets),
        pulumi.ResourceOptions(depends_on=[cluster, *registrations.resources]),
    )
    configurations = {
        name: FluxConfiguration(
            name,
            FluxConfigurationArgs(cluster.ref, configuration, secrets, subscription_id, spec.cluster.cloud),
            pulumi.ResourceOptions(depends_on=[extension]),
        )
        for name, configuration in spec.flux.configurations.items()
    }
    return {
        "clusterId": cluster.id,
        "fluxExtensionId": extension.id,
        "fluxConfigurationIds": pulumi.Output.from_input({name: c.id for name, c in configurations.items()}),
        # Which version of each Key Vault secret this update deployed (never a value): drift compares it with
        # the current version to report a rotation the cluster has not received.
        "secretVersions": dict(secrets.versions),
        # The git ref each configuration runs at after this update: what a rollback of the next update returns to.
        "fluxConfigurationRefs": spec.source_refs(),
        # The Kubernetes and Flux extension versions it declares (those set): what a rollback of a stage's
        # kubernetes / flux-extension pin returns fleet.yaml to.
        "platformVersions": spec.platform_versions(),
    }
