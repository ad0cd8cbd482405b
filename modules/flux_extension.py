"""The Azure-managed Flux extension (`microsoft.flux`) on a cluster."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import kubernetesconfiguration

from modules.cluster_ref import ClusterRef
from modules.options import child_options
from modules.keyvault import Secrets
from modules.spec import ExtensionSpec

EXTENSION_TYPE = "microsoft.flux"
EXTENSION_NAME = "flux"
RELEASE_NAMESPACE = "flux-system"
# The extension has been seen stuck in Creating for hours; fail in bounded time instead of the 2 h default.
TIMEOUTS = pulumi.CustomTimeouts(create="30m", update="30m", delete="30m")


@dataclass(frozen=True)
class FluxExtensionArgs:
    cluster: ClusterRef
    extension: ExtensionSpec
    secrets: Secrets


class FluxExtension(pulumi.ComponentResource):
    def __init__(self, name: str, args: FluxExtensionArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("fluxfleet:flux:Extension", name, None, opts)
        spec = args.extension
        protected = None
        if spec.protected_settings:
            # pulumi-azure-native does not mark protected settings secret; wrap them so state never holds them plain.
            protected = pulumi.Output.secret(
                {key: args.secrets.resolve(source) for key, source in sorted(spec.protected_settings.items())}
            )
        self.extension = kubernetesconfiguration.Extension(
            name,
            extension_name=EXTENSION_NAME,
            extension_type=EXTENSION_TYPE,
            **args.cluster.arm_target(),
            auto_upgrade_minor_version=spec.auto_upgrade_minor_version,
            release_train=spec.release_train,
            version=spec.version,
            scope=kubernetesconfiguration.ScopeArgs(
                cluster=kubernetesconfiguration.ScopeClusterArgs(release_namespace=RELEASE_NAMESPACE),
            ),
            configuration_settings=spec.configuration_settings or None,  # free-form and typed (`controllers`)
            configuration_protected_settings=protected,
            # An Arc cluster's extension needs its own identity; on AKS the cluster's managed identity serves.
            identity=kubernetesconfiguration.IdentityArgs(type="SystemAssigned") if args.cluster.is_arc else None,
            opts=child_options(
                self,
                opts,
                additional_secret_outputs=["configurationProtectedSettings"],
                replace_on_changes=["extensionType", "scope"],  # create-only in ARM
                delete_before_replace=True,  # the extension's name is fixed
                custom_timeouts=TIMEOUTS,
            ),
        )
        self.id = self.extension.id
        self.register_outputs({"id": self.id})
