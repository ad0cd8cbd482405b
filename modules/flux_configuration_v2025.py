"""A Flux configuration at API 2025-04-01: OCI sources and git providers (workload identity, GitHub App).

pulumi-azure-native 3.x declares `fluxConfigurations` at API 2023-05-01, which has neither. `FluxConfigurationV2025` is
a Pulumi dynamic resource over azure-mgmt-kubernetesconfiguration-fluxconfigurations (API 2025-04-01): its inputs are
the ARM properties in wire format (as azure-native's are, so `plan`, the policy rules and drift read both alike) plus
the path to the configuration. Create and update PUT the whole body and delete deletes, each a long-running operation
polled through the SDK's poller; read maps what Azure returns onto what the program declares.

Secrets: protected settings (`configurationProtectedSettings`) and the body's secret fields (`ociRepository.tlsConfig`,
the verification keys) arrive as Pulumi secrets. A dynamic provider receives them in plain text (it does not accept
secrets), so the engine marks an output secret when its top-level input was: every output is a top-level input
returned as given, and the component lists those keys in `additional_secret_outputs` too. Errors quote Azure's words
with every secret value it was sent masked.

Which resource a configuration gets is `ConfigurationSpec.flux_api` (modules/spec): this one only for what 2023-05-01
cannot express, so every other configuration, and every existing stack, keeps azure-native's resource.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi.dynamic

from modules.clouds import DEFAULT_CLOUD, cloud as cloud_named
from modules.cluster_ref import ClusterRef
from modules.dynamic import provider_serialized
from modules.keyvault import Secrets
from modules.spec import (
    FLUX_API_LATEST,
    GITHUB_APP_KEYS,
    AzureBlobSource,
    BucketSource,
    ConfigurationSpec,
    GitSource,
    KustomizationSpec,
    OciSource,
    SecretSource,
)
from modules.spec.errors import Loc

API_VERSION = FLUX_API_LATEST
TYPE = "pulumi-python:dynamic/kubernetesconfiguration:FluxConfiguration"
OPERATION_TIMEOUT = 30 * 60  # seconds, as azure-native's Flux resources: ARM's own (PT48H) outlasts any update
POLL_SECONDS = 15  # between polls when Azure sends no Retry-After
MESSAGE_MAX = 300  # characters of Azure's own words in an error

# The inputs that address the configuration: a change is a new configuration (a replacement).
ADDRESS_KEYS = ("subscriptionId", "resourceGroupName", "clusterRp", "clusterResourceName", "clusterName")
NAME_KEY = "fluxConfigurationName"
# The ARM properties the program sends, in wire format. `scope` and `namespace` are create-only in ARM.
BODY_KEYS = (
    "scope",
    "namespace",
    "sourceKind",
    "suspend",
    "gitRepository",
    "bucket",
    "azureBlob",
    "ociRepository",
    "kustomizations",
    "configurationProtectedSettings",
    "waitForReconciliation",
    "reconciliationWaitDuration",
)
CREATE_ONLY_KEYS = ("scope", "namespace")
ADOPT_KEY = "adoptLiveConfiguration"  # not sent: whether create may take over a live configuration of this name
CLOUD_KEY = "cloud"  # not sent: the cluster's cloud (absent: AzureCloud, as for resources made before it was named)
# Inputs that hold secrets, top level (the engine marks outputs secret by top-level key) and below (ARM never returns
# these: read keeps what was sent).
SECRET_KEYS = ("configurationProtectedSettings", "ociRepository", "azureBlob")
WRITE_ONLY_PATHS = (
    ("configurationProtectedSettings",),
    ("ociRepository", "tlsConfig"),
    ("azureBlob", "accountKey"),
    ("azureBlob", "sasToken"),
)
VERIFICATION_KEYS = ("ociRepository", "verify", "verificationConfig")  # from Key Vault, secret in state too
MAP_KEYS = ("kustomizations",)  # maps whose entries Azure holds beyond the declared ones are drift, not noise


class FluxConfigurationError(Exception):
    """A create, read, update or delete that failed: one line naming the configuration and what to do."""


# --------------------------------------------------------------------------------------------- the provider


class FluxConfigurationProvider(pulumi.dynamic.ResourceProvider):
    """CRUD of one Flux configuration through the Azure SDK (API 2025-04-01), with `DefaultAzureCredential` unless
    given a credential. `client_options` are azure-core pipeline options (tests pass `transport=`); the provider that
    Pulumi serializes into state holds none."""

    def __init__(self, credential: Any = None, **client_options: Any):
        super().__init__()
        self._credential = credential
        self._client_options = client_options

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        client = self._client(props)
        if self._get(client, props, "read") is not None and not props.get(ADOPT_KEY):
            raise FluxConfigurationError(
                f"{_target(props)}: a Flux configuration of this name is already on the cluster (the azure-native "
                f"resource at API 2023-05-01 made it, or someone by hand): fluxfleet does not take over a live "
                f"configuration unless it says adoptLiveConfiguration: true. To move it to API {API_VERSION} without "
                "deleting what Flux applied: `pulumi state delete` the old resource (fluxfleet plan prints the "
                "command), set adoptLiveConfiguration: true, then update (README: Migrating a configuration)"
            )
        live = self._put(client, props, "create")
        return pulumi.dynamic.CreateResult(str(live.get("id") or _arm_id(props)), _outputs(props, live))

    def read(self, id_: str, props: dict[str, Any]) -> pulumi.dynamic.ReadResult:
        live = self._get(self._client(props), props, "read")
        if live is None:
            return pulumi.dynamic.ReadResult("", {})  # gone: the engine drops it from the state
        return pulumi.dynamic.ReadResult(id_, _outputs(props, live, refreshed=True))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.DiffResult:
        changed = [key for key in (*ADDRESS_KEYS, NAME_KEY, *BODY_KEYS) if olds.get(key) != news.get(key)]
        replaces = [key for key in changed if key in (*ADDRESS_KEYS, NAME_KEY, *CREATE_ONLY_KEYS)]
        # The name is fixed, so a replacement deletes first; with prune on, that deletes what Flux applied (plan
        # and rollout say so).
        return pulumi.dynamic.DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=True)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.UpdateResult:
        # A PUT of the whole body, as declared: what the stack no longer declares (a kustomization) goes.
        return pulumi.dynamic.UpdateResult(_outputs(news, self._put(self._client(news), news, "update")))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        client = self._client(props)
        with _failures(props, "delete"):
            try:
                poller = client.flux_configurations.begin_delete(*_path(props))
            except _not_found():
                return
            _finish(poller, props, "delete")

    # ------------------------------------------------------------------ Azure

    def _client(self, props: Mapping[str, Any]) -> Any:
        from azure.mgmt.kubernetesconfiguration.fluxconfigurations import (
            KubernetesConfigurationFluxConfigurationsMgmtClient as Client,
        )

        cloud = cloud_named(props.get(CLOUD_KEY) or DEFAULT_CLOUD)
        if self._credential is None:
            self._credential = cloud.default_credential()
        options = {
            "polling_interval": POLL_SECONDS,
            "logging_enable": False,
            **cloud.client_settings(),  # the cloud's ARM endpoint and audience
            **self._client_options,
        }
        return Client(self._credential, str(props["subscriptionId"]), api_version=API_VERSION, **options)

    def _get(self, client: Any, props: Mapping[str, Any], verb: str) -> dict[str, Any] | None:
        with _failures(props, verb):
            try:
                return dict(client.flux_configurations.get(*_path(props)).as_dict())
            except _not_found():
                return None

    def _put(self, client: Any, props: Mapping[str, Any], verb: str) -> dict[str, Any]:
        with _failures(props, verb):
            poller = client.flux_configurations.begin_create_or_update(*_path(props), body(props))
            live = dict(_finish(poller, props, verb).as_dict())
        state = str((live.get("properties") or {}).get("provisioningState") or "")
        if state.lower() == "failed":
            said = (live.get("properties") or {}).get("errorMessage") or "no detail from Azure"
            raise FluxConfigurationError(
                f"{_target(props)}: {verb} ended Failed: {_masked(str(said), props)}; fix the cause and update again"
            )
        return live


def body(props: Mapping[str, Any]) -> dict[str, Any]:
    """The PUT body: the declared ARM properties under `properties`."""
    return {"properties": {key: props[key] for key in BODY_KEYS if props.get(key) is not None}}


def _path(props: Mapping[str, Any]) -> tuple[str, ...]:
    """The path parameters of the SDK's operations, in their order."""
    keys = ("resourceGroupName", "clusterRp", "clusterResourceName", "clusterName", NAME_KEY)
    return tuple(str(props[key]) for key in keys)


def _arm_id(props: Mapping[str, Any]) -> str:
    group, rp, kind, cluster, name = _path(props)
    return (
        f"/subscriptions/{props['subscriptionId']}/resourceGroups/{group}/providers/{rp}/{kind}/{cluster}"
        f"/providers/Microsoft.KubernetesConfiguration/fluxConfigurations/{name}"
    )


def _target(props: Mapping[str, Any]) -> str:
    return f"Flux configuration {_arm_id(props)} (API {API_VERSION})"


def _not_found() -> type[Exception]:
    from azure.core.exceptions import ResourceNotFoundError

    return ResourceNotFoundError


def _finish(poller: Any, props: Mapping[str, Any], verb: str) -> Any:
    """The operation's result once it is done, or a FluxConfigurationError after OPERATION_TIMEOUT."""
    poller.wait(OPERATION_TIMEOUT)
    if not poller.done():
        raise FluxConfigurationError(
            f"{_target(props)}: {verb} still {poller.status()} after {OPERATION_TIMEOUT // 60}m; it goes on in Azure: "
            "run `pulumi refresh` once it ends, then update again"
        )
    return poller.result()


class _failures:
    """Turns the SDK's failures into one FluxConfigurationError line: the status, Azure's code and words (masked),
    what to do. Never the request, which holds the secrets."""

    def __init__(self, props: Mapping[str, Any], verb: str):
        self.props, self.verb = props, verb

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, error: Any, _traceback: Any) -> bool:
        from azure.core.exceptions import AzureError, HttpResponseError

        if error is None or isinstance(error, FluxConfigurationError) or not isinstance(error, AzureError):
            return False
        if isinstance(error, HttpResponseError) and error.status_code is not None:
            arm = error.error  # ARM's error body, when it sent one
            code = arm.code if arm is not None and arm.code else error.reason
            said = arm.message if arm is not None and arm.message else str(error)
            detail = f"{error.status_code} {code}: {_masked(said, self.props)}"
        elif isinstance(error, HttpResponseError):  # no status: the credential failed before any request
            detail = f"no Azure token ({_masked(str(error), self.props)}); sign in with `az login`"
        else:
            detail = f"{type(error).__name__}: {_masked(str(error), self.props)}"
        raise FluxConfigurationError(f"{_target(self.props)}: {self.verb} failed: {detail}") from None


def _masked(text: str, props: Mapping[str, Any]) -> str:
    """Azure's words, one line and bounded, with every secret value the configuration holds (and its base64) masked."""
    line = (text.strip().splitlines() or [""])[0]
    for secret in sorted(_secret_texts(props), key=len, reverse=True):
        line = line.replace(secret, "[secret]")
    return line if len(line) <= MESSAGE_MAX else line[: MESSAGE_MAX - 1] + "…"


def _secret_texts(props: Mapping[str, Any]) -> set[str]:
    found: set[str] = set()
    for value in _strings([_at(props, path) for path in (*WRITE_ONLY_PATHS, VERIFICATION_KEYS)]):
        found.add(value)
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            found.add(base64.b64decode(value, validate=True).decode("utf-8"))
    for text in list(found):  # a key's lines, each: a message may quote one
        found.update(line.strip() for line in text.splitlines())
    return {text for text in found if len(text) >= 4}  # shorter ones would mask words, not secrets


def _at(value: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


# --------------------------------------------------------------------------------------------- outputs


def _outputs(props: Mapping[str, Any], live: Mapping[str, Any], refreshed: bool = False) -> dict[str, Any]:
    """The state to keep: after a create or update the inputs as declared (secrets in the top-level keys they came in,
    so the engine keeps them secret); after a read what Azure holds for them (write-only secrets as they were sent,
    server defaults for what is not declared left out, a kustomization Azure holds beyond them kept: that is drift)."""
    declared = {key: value for key, value in props.items() if key != "__provider"}
    properties = live.get("properties") or {}
    outputs = dict(declared)
    if refreshed:
        for key in BODY_KEYS:
            if key in declared:
                outputs[key] = _declared_view(properties.get(key), declared[key], key)
        for path in WRITE_ONLY_PATHS:
            _keep(outputs, declared, path)
    outputs["provisioningState"] = properties.get("provisioningState")
    return outputs


def _declared_view(live: Any, declared: Any, key: str = "") -> Any:
    """What Azure holds for a declared value: a key Azure does not return counts as declared (write-only, or left out
    of its answer: no drift either way), a value it returns is compared, and in MAP_KEYS an entry it holds beyond the
    declared ones is kept (a kustomization added by hand is drift)."""
    if live is None:
        return declared
    if isinstance(live, Mapping) and isinstance(declared, Mapping):
        view = {k: _declared_view(live.get(k), v) for k, v in declared.items()}
        if key in MAP_KEYS:
            view.update({k: v for k, v in live.items() if k not in declared})
        return view
    return live


def _keep(outputs: dict[str, Any], declared: Mapping[str, Any], path: tuple[str, ...]) -> None:
    sent = _at(declared, path)
    if sent is None:
        return
    node = outputs
    for part in path[:-1]:
        if not isinstance(node.get(part), dict):
            return
        node = node[part]
    node[path[-1]] = sent


# --------------------------------------------------------------------------------------------- the resource


@dataclass(frozen=True)
class FluxConfigurationV2025Args:
    cluster: ClusterRef
    subscription_id: pulumi.Input[str]
    configuration: ConfigurationSpec
    secrets: Secrets
    cloud: str = DEFAULT_CLOUD  # the cluster's: the provider calls ARM there


class FluxConfigurationV2025(pulumi.dynamic.Resource, module="kubernetesconfiguration", name="FluxConfiguration"):
    """One Flux configuration through fluxfleet's dynamic provider, named after the configuration. `opts` should
    carry `additional_secret_outputs=secret_outputs(...)` (the component passes it)."""

    def __init__(self, name: str, inputs: Mapping[str, pulumi.Input[Any]], opts: pulumi.ResourceOptions | None = None):
        with provider_serialized():
            super().__init__(FluxConfigurationProvider(), name, dict(inputs), opts)


def resource_inputs(name: str, args: FluxConfigurationV2025Args) -> dict[str, pulumi.Input[Any]]:
    """The dynamic resource's inputs for a configuration: its path, its ARM properties in wire format, and whether
    create may adopt a live configuration of this name."""
    spec = args.configuration
    loc: Loc = ("flux", "configurations", name)
    protected: dict[str, pulumi.Output[str]] = {}
    inputs: dict[str, pulumi.Input[Any]] = {
        "subscriptionId": args.subscription_id,
        "resourceGroupName": args.cluster.resource_group,
        "clusterRp": args.cluster.rp,
        "clusterResourceName": args.cluster.resource_type,
        "clusterName": args.cluster.name,
        NAME_KEY: name,
        "scope": spec.scope,
        "namespace": spec.namespace,
        "sourceKind": spec.source_kind,
        "suspend": spec.suspend,
    }
    if spec.git:
        inputs["gitRepository"] = _git(spec.git, args.secrets, protected, (*loc, "git"))
    if spec.bucket:
        inputs["bucket"] = _bucket(spec.bucket, args.secrets, protected)
    if spec.azure_blob:
        inputs["azureBlob"] = _azure_blob(spec.azure_blob, args.secrets)
    if spec.oci:
        inputs["ociRepository"] = _oci(spec.oci, args.secrets, (*loc, "oci"))
    inputs["kustomizations"] = {key: kustomization(value) for key, value in spec.kustomizations.items()}
    if protected:
        inputs["configurationProtectedSettings"] = pulumi.Output.secret(protected)
    inputs.update(
        _present(
            waitForReconciliation=spec.wait_for_reconciliation,
            reconciliationWaitDuration=spec.reconciliation_wait_duration,
        )
    )
    inputs[ADOPT_KEY] = spec.adopt_live_configuration
    if args.cloud != DEFAULT_CLOUD:
        inputs[CLOUD_KEY] = args.cloud
    return inputs


def secret_outputs(configuration: ConfigurationSpec, inputs: Mapping[str, Any]) -> list[str]:
    """The top-level outputs to keep secret: protected settings, and a source whose body holds a secret."""
    oci, blob = configuration.oci, configuration.azure_blob
    oci_secret = oci is not None and (oci.tls_config is not None or bool(oci.verify and oci.verify.verification_config))
    holds = {
        "configurationProtectedSettings": "configurationProtectedSettings" in inputs,
        "ociRepository": oci_secret,
        "azureBlob": blob is not None and (blob.account_key is not None or blob.sas_token is not None),
    }
    return [key for key in SECRET_KEYS if holds[key]]


def _present(**values: Any) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _protect(protected: dict[str, pulumi.Output[str]], key: str, value: pulumi.Input[str] | None) -> None:
    # The API expects protected settings base64-encoded, exactly once.
    if value is not None:
        protected[key] = pulumi.Output.from_input(value).apply(_b64)


def _secret(secrets: Secrets, source: SecretSource | None, loc: Loc = ()) -> pulumi.Output[str] | None:
    return secrets.resolve(source, loc) if source is not None else None


def _git(git: GitSource, secrets: Secrets, protected: dict[str, pulumi.Output[str]], loc: Loc) -> dict[str, Any]:
    _protect(protected, "httpsKey", _secret(secrets, git.https_key))
    _protect(protected, "sshPrivateKey", _secret(secrets, git.ssh_private_key, (*loc, "sshPrivateKey")))
    if git.provider == "GitHub":
        # Flux's GitHub App secret keys; the 2025-04-01 API has no body fields for them.
        _protect(protected, GITHUB_APP_KEYS["github_app_id"], str(git.github_app_id))
        _protect(protected, GITHUB_APP_KEYS["github_app_installation_id"], str(git.github_app_installation_id))
        private_key = _secret(secrets, git.github_app_private_key, (*loc, "githubAppPrivateKey"))
        _protect(protected, GITHUB_APP_KEYS["github_app_private_key"], private_key)
    return _present(
        url=git.url,
        repositoryRef=_present(branch=git.branch, tag=git.tag, semver=git.semver, commit=git.commit),
        httpsUser=git.https_user,
        sshKnownHosts=_b64(git.ssh_known_hosts) if git.ssh_known_hosts else None,
        httpsCACert=_b64(git.https_ca_cert) if git.https_ca_cert else None,
        provider=git.provider,
        syncIntervalInSeconds=git.sync_interval,
        timeoutInSeconds=git.effective_timeout,
    )


def _bucket(bucket: BucketSource, secrets: Secrets, protected: dict[str, pulumi.Output[str]]) -> dict[str, Any]:
    _protect(protected, "bucketSecretKey", _secret(secrets, bucket.secret_key))
    return _present(
        url=bucket.url,
        bucketName=bucket.bucket_name,
        accessKey=bucket.access_key,
        insecure=bucket.insecure,  # always sent: the API's default is insecure
        syncIntervalInSeconds=bucket.sync_interval,
        timeoutInSeconds=bucket.effective_timeout,
    )


def _azure_blob(blob: AzureBlobSource, secrets: Secrets) -> dict[str, Any]:
    return _present(
        url=blob.url,
        containerName=blob.container_name,
        accountKey=_secret(secrets, blob.account_key),
        sasToken=_secret(secrets, blob.sas_token),
        managedIdentity={"clientId": blob.managed_identity.client_id} if blob.managed_identity else None,
        syncIntervalInSeconds=blob.sync_interval,
        timeoutInSeconds=blob.effective_timeout,
    )


def _oci(oci: OciSource, secrets: Secrets, loc: Loc) -> dict[str, Any]:
    verify = None
    if oci.verify is not None:
        verify = _present(
            provider=oci.verify.provider,
            # Trusted public keys and certificates, as files (cosign.pub, trustpolicy.json): sent as they are, the API
            # says no encoding for them. From Key Vault, so who may change them is Key Vault's access control.
            verificationConfig={
                key: secrets.resolve(source, (*loc, "verify", "verificationConfig", key))
                for key, source in oci.verify.verification_config.items()
            }
            or None,
            matchOidcIdentity=[
                {"issuer": identity.issuer, "subject": identity.subject} for identity in oci.verify.match_oidc_identity
            ]
            or None,
        )
    tls = None
    if oci.tls_config is not None:
        tls_loc = (*loc, "tlsConfig")
        tls = _present(  # base64-encoded, as the API says for each of the three
            clientCertificate=_encoded(secrets, oci.tls_config.client_certificate, (*tls_loc, "clientCertificate")),
            privateKey=_encoded(secrets, oci.tls_config.private_key, (*tls_loc, "privateKey")),
            caCertificate=_encoded(secrets, oci.tls_config.ca_certificate, (*tls_loc, "caCertificate")),
        )
    return _present(
        url=oci.url,
        repositoryRef=_present(tag=oci.tag, semver=oci.semver, digest=oci.digest),
        insecure=oci.insecure,  # always sent: plain HTTP only when the stack says so
        useWorkloadIdentity=True if oci.use_workload_identity else None,
        serviceAccountName=oci.service_account_name,
        verify=verify,
        tlsConfig=tls,
        syncIntervalInSeconds=oci.sync_interval,
        timeoutInSeconds=oci.effective_timeout,
    )


def _encoded(secrets: Secrets, source: SecretSource | None, loc: Loc) -> pulumi.Output[str] | None:
    value = _secret(secrets, source, loc)
    return value.apply(_b64) if value is not None else None


def kustomization(spec: KustomizationSpec) -> dict[str, Any]:
    """A kustomization in wire format, as azure-native sends it: unset keys left to the API."""
    post_build = None
    if spec.post_build:
        post_build = _present(
            substitute=dict(spec.post_build.substitute) or None,
            substituteFrom=[
                {"kind": item.kind, "name": item.name, "optional": item.optional}
                for item in spec.post_build.substitute_from
            ]
            or None,
        )
    return _present(
        path=spec.path,
        dependsOn=list(spec.depends_on) or None,
        prune=spec.prune,
        force=spec.force,
        wait=spec.wait,
        syncIntervalInSeconds=spec.sync_interval,
        timeoutInSeconds=spec.effective_timeout,
        retryIntervalInSeconds=spec.retry_interval,
        postBuild=post_build,
    )
