"""A Flux configuration: one source and kustomizations that depend on each other, credentials protected.

The configuration is declared through azure-native's resource (API 2023-05-01) while that API can express it, else
through fluxfleet's own (modules/flux_configuration_v2025.py, API 2025-04-01): `ConfigurationSpec.flux_api` decides.
Both are this component's child under the configuration's name; only their type differs.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import kubernetesconfiguration as kc

from modules.clouds import DEFAULT_CLOUD
from modules.cluster_ref import ClusterRef
from modules.keyvault import Secrets
from modules.flux_configuration_v2025 import (
    FluxConfigurationV2025,
    FluxConfigurationV2025Args,
    resource_inputs,
    secret_outputs,
)
from modules.options import child_options
from modules.spec import (
    FLUX_API_LATEST,
    AzureBlobSource,
    BucketSource,
    ConfigurationSpec,
    GitSource,
    KustomizationSpec,
    SecretSource,
)
from modules.spec.errors import Loc

TIMEOUTS = pulumi.CustomTimeouts(create="30m", update="30m", delete="30m")
ProtectedSettings = dict[str, pulumi.Output[str]]


@dataclass(frozen=True)
class FluxConfigurationArgs:
    cluster: ClusterRef
    configuration: ConfigurationSpec
    secrets: Secrets
    subscription_id: pulumi.Input[str] | None = None  # the cluster's: the 2025-04-01 resource addresses it by id
    cloud: str = DEFAULT_CLOUD  # the cluster's: the 2025-04-01 resource's provider calls ARM there


class FluxConfiguration(pulumi.ComponentResource):
    """`kubernetesconfiguration.FluxConfiguration` named after the configuration. Give it `depends_on` the
    cluster's Flux extension: ARM accepts one extension operation per cluster at a time."""

    def __init__(self, name: str, args: FluxConfigurationArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("fluxfleet:flux:Configuration", name, None, opts)
        spec = args.configuration
        if spec.flux_api == FLUX_API_LATEST:
            self.flux_configuration = self._v2025(name, args, opts)
            self.id = self.flux_configuration.id
            self.register_outputs({"id": self.id})
            return
        protected: ProtectedSettings = {}
        sources: dict[str, object] = {}  # exactly one, as modules.spec guarantees
        if spec.git:
            sources["git_repository"] = _git(spec.git, args.secrets, protected, ("flux", "configurations", name, "git"))
        if spec.bucket:
            sources["bucket"] = _bucket(spec.bucket, args.secrets, protected)
        if spec.azure_blob:
            sources["azure_blob"] = _azure_blob(spec.azure_blob, args.secrets)
        self.flux_configuration = kc.FluxConfiguration(
            name,
            flux_configuration_name=name,
            **args.cluster.arm_target(),
            namespace=spec.namespace,
            scope=spec.scope,
            suspend=spec.suspend,
            source_kind=spec.source_kind,
            **sources,
            kustomizations={key: _kustomization(kustomization) for key, kustomization in spec.kustomizations.items()},
            configuration_protected_settings=pulumi.Output.secret(protected) if protected else None,
            wait_for_reconciliation=spec.wait_for_reconciliation,
            reconciliation_wait_duration=spec.reconciliation_wait_duration,
            opts=child_options(
                self,
                opts,
                # pulumi-azure-native marks none of these secret; without this the key lands in state in plaintext.
                additional_secret_outputs=["configurationProtectedSettings", "azureBlob"],
                replace_on_changes=["scope", "namespace"],  # create-only in ARM
                delete_before_replace=True,  # the configuration's name is fixed
                custom_timeouts=TIMEOUTS,
            ),
        )
        self.id = self.flux_configuration.id
        self.register_outputs({"id": self.id})

    def _v2025(
        self, name: str, args: FluxConfigurationArgs, opts: pulumi.ResourceOptions | None
    ) -> FluxConfigurationV2025:
        """The configuration through fluxfleet's resource at API 2025-04-01, under the same name: what 2023-05-01
        cannot express (an OCI source, a git provider)."""
        if args.subscription_id is None:
            raise ValueError(f"Flux configuration {name}: the 2025-04-01 resource needs the cluster's subscription id")
        v2025 = FluxConfigurationV2025Args(
            args.cluster, args.subscription_id, args.configuration, args.secrets, args.cloud
        )
        inputs = resource_inputs(name, v2025)
        return FluxConfigurationV2025(
            name,
            inputs,
            child_options(
                self,
                opts,
                # The provider gets secrets in plain text: the engine keeps an output secret when its top-level input
                # was, and these keys make sure.
                additional_secret_outputs=secret_outputs(args.configuration, inputs),
                replace_on_changes=["scope", "namespace"],  # create-only in ARM
                delete_before_replace=True,  # the configuration's name is fixed
            ),
        )


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _protect(
    protected: ProtectedSettings, key: str, source: SecretSource | None, secrets: Secrets, loc: Loc = ()
) -> None:
    # The API expects protected settings base64-encoded, exactly once. `loc`: the field's key path in the spec.
    if source is not None:
        protected[key] = secrets.resolve(source, loc).apply(_b64)


def _git(git: GitSource, secrets: Secrets, protected: ProtectedSettings, loc: Loc) -> kc.GitRepositoryDefinitionArgs:
    _protect(protected, "httpsKey", git.https_key, secrets)
    _protect(protected, "sshPrivateKey", git.ssh_private_key, secrets, (*loc, "sshPrivateKey"))
    return kc.GitRepositoryDefinitionArgs(
        url=git.url,
        repository_ref=kc.RepositoryRefDefinitionArgs(
            branch=git.branch, tag=git.tag, semver=git.semver, commit=git.commit
        ),
        https_user=git.https_user,
        ssh_known_hosts=_b64(git.ssh_known_hosts) if git.ssh_known_hosts else None,
        https_ca_cert=_b64(git.https_ca_cert) if git.https_ca_cert else None,
        sync_interval_in_seconds=git.sync_interval,
        timeout_in_seconds=git.effective_timeout,
    )


def _bucket(bucket: BucketSource, secrets: Secrets, protected: ProtectedSettings) -> kc.BucketDefinitionArgs:
    _protect(protected, "bucketSecretKey", bucket.secret_key, secrets)
    return kc.BucketDefinitionArgs(
        url=bucket.url,
        bucket_name=bucket.bucket_name,
        access_key=bucket.access_key,
        insecure=bucket.insecure,  # always sent: the API's default is insecure
        sync_interval_in_seconds=bucket.sync_interval,
        timeout_in_seconds=bucket.effective_timeout,
    )


def _azure_blob(blob: AzureBlobSource, secrets: Secrets) -> kc.AzureBlobDefinitionArgs:
    # accountKey and sasToken are body fields the API never returns; secret outputs keep them out of state.
    return kc.AzureBlobDefinitionArgs(
        url=blob.url,
        container_name=blob.container_name,
        account_key=secrets.resolve(blob.account_key) if blob.account_key else None,
        sas_token=secrets.resolve(blob.sas_token) if blob.sas_token else None,
        managed_identity=kc.ManagedIdentityDefinitionArgs(client_id=blob.managed_identity.client_id)
        if blob.managed_identity
        else None,
        sync_interval_in_seconds=blob.sync_interval,
        timeout_in_seconds=blob.effective_timeout,
    )


def _kustomization(spec: KustomizationSpec) -> kc.KustomizationDefinitionArgs:
    post_build = None
    if spec.post_build:
        post_build = kc.PostBuildDefinitionArgs(
            substitute=dict(spec.post_build.substitute) or None,
            substitute_from=[
                kc.SubstituteFromDefinitionArgs(kind=item.kind, name=item.name, optional=item.optional)
                for item in spec.post_build.substitute_from
            ]
            or None,
        )
    return kc.KustomizationDefinitionArgs(
        path=spec.path,
        depends_on=list(spec.depends_on) or None,
        prune=spec.prune,
        force=spec.force,
        wait=spec.wait,
        sync_interval_in_seconds=spec.sync_interval,
        timeout_in_seconds=spec.effective_timeout,
        retry_interval_in_seconds=spec.retry_interval,
        post_build=post_build,
    )
