"""A Flux configuration: one source and kustomizations that depend on each other, credentials protected."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import kubernetesconfiguration as kc

from modules.cluster_ref import ClusterRef
from modules.options import child_options
from modules.keyvault import Secrets
from modules.spec import ConfigurationSpec, KustomizationSpec, SecretSource

TIMEOUTS = pulumi.CustomTimeouts(create="30m", update="30m", delete="30m")


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


@dataclass(frozen=True)
class FluxConfigurationArgs:
    cluster: ClusterRef
    configuration: ConfigurationSpec
    secrets: Secrets


class FluxConfiguration(pulumi.ComponentResource):
    """`kubernetesconfiguration.FluxConfiguration` named after the configuration. Give it `depends_on` the
    cluster's Flux extension: ARM accepts one extension operation per cluster at a time."""

    def __init__(self, name: str, args: FluxConfigurationArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("fluxfleet:flux:Configuration", name, None, opts)
        spec = args.configuration
        protected: dict[str, pulumi.Output[str]] = {}

        def protect(key: str, source: SecretSource | None) -> None:
            # The API expects protected settings base64-encoded, exactly once.
            if source is not None:
                protected[key] = args.secrets.resolve(source).apply(_b64)

        git = bucket = blob = None
        if spec.git:
            protect("httpsKey", spec.git.https_key)
            protect("sshPrivateKey", spec.git.ssh_private_key)
            git = kc.GitRepositoryDefinitionArgs(
                url=spec.git.url,
                repository_ref=kc.RepositoryRefDefinitionArgs(
                    branch=spec.git.branch, tag=spec.git.tag, semver=spec.git.semver, commit=spec.git.commit
                ),
                https_user=spec.git.https_user,
                ssh_known_hosts=_b64(spec.git.ssh_known_hosts) if spec.git.ssh_known_hosts else None,
                https_ca_cert=_b64(spec.git.https_ca_cert) if spec.git.https_ca_cert else None,
                sync_interval_in_seconds=spec.git.sync_interval,
                timeout_in_seconds=spec.git.timeout,
            )
            source_kind = "GitRepository"
        elif spec.bucket:
            protect("bucketSecretKey", spec.bucket.secret_key)
            bucket = kc.BucketDefinitionArgs(
                url=spec.bucket.url,
                bucket_name=spec.bucket.bucket_name,
                access_key=spec.bucket.access_key,
                insecure=spec.bucket.insecure,  # always sent: the API's default is insecure
                sync_interval_in_seconds=spec.bucket.sync_interval,
                timeout_in_seconds=spec.bucket.timeout,
            )
            source_kind = "Bucket"
        else:
            source = spec.azure_blob
            assert source is not None  # modules.spec guarantees exactly one source
            blob = kc.AzureBlobDefinitionArgs(
                url=source.url,
                container_name=source.container_name,
                account_key=args.secrets.resolve(source.account_key) if source.account_key else None,
                sas_token=args.secrets.resolve(source.sas_token) if source.sas_token else None,
                managed_identity=kc.ManagedIdentityDefinitionArgs(client_id=source.managed_identity.client_id)
                if source.managed_identity else None,
                sync_interval_in_seconds=source.sync_interval,
                timeout_in_seconds=source.timeout,
            )
            source_kind = "AzureBlob"

        self.flux_configuration = kc.FluxConfiguration(
            name,
            flux_configuration_name=name,
            cluster_rp=args.cluster.rp,
            cluster_resource_name=args.cluster.resource_type,
            cluster_name=args.cluster.name,
            resource_group_name=args.cluster.resource_group,
            namespace=spec.namespace,
            scope=spec.scope,
            suspend=spec.suspend,
            source_kind=source_kind,
            git_repository=git,
            bucket=bucket,
            azure_blob=blob,
            kustomizations={
                kustomization_name: _kustomization(kustomization)
                for kustomization_name, kustomization in spec.kustomizations.items()
            },
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


def _kustomization(spec: KustomizationSpec) -> kc.KustomizationDefinitionArgs:
    post_build = None
    if spec.post_build:
        post_build = kc.PostBuildDefinitionArgs(
            substitute=dict(spec.post_build.substitute) or None,
            substitute_from=[
                kc.SubstituteFromDefinitionArgs(kind=item.kind, name=item.name, optional=item.optional)
                for item in spec.post_build.substitute_from
            ] or None,
        )
    return kc.KustomizationDefinitionArgs(
        path=spec.path,
        depends_on=list(spec.depends_on) or None,
        prune=spec.prune,
        force=spec.force,
        wait=spec.wait,
        sync_interval_in_seconds=spec.sync_interval,
        timeout_in_seconds=spec.timeout,
        retry_interval_in_seconds=spec.retry_interval,
        post_build=post_build,
    )
