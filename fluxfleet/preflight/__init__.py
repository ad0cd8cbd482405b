"""`fluxfleet preflight`: before any deploy, is each stack's subscription, cluster, Flux extension and Key Vault
ready? In the spirit of `flux check --pre`: one check a line, and for each failure what to do.

Every Azure read goes through the `AzureReader` interface (`fluxfleet.azure.arm.ArmReader` for real); the stack
files are validated by `modules.spec` exactly as `plan` validates them.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from rich.console import Console
from rich.text import Text

from fluxfleet.azure.access import subscription_ways
from fluxfleet.azure.account import default_subscription
from fluxfleet.azure.status import (
    AzureError,
    AzureReader,
    ConnectedClusterStatus,
    ExtensionStatus,
    ManagedClusterStatus,
)
from fluxfleet.upgrade_path import installed_flux, upgrade_path_problem
from modules.cluster_ref import ClusterRef
from modules.flux_extension import EXTENSION_NAME, EXTENSION_TYPE
from modules.flux_extension_versions import RELEASE_NOTES
from modules.spec import (
    KeyVaultRef,
    SpecError,
    SpecIssue,
    Stack,
    extension_workload_identity,
    identity_sources,
    key_vault_refs,
    load_stack_file,
    printable,
    report_name,
    shared_clusters,
)
from modules.spec.cluster import is_version
from policies.rules import FLUX_EXTENSION_MIN_VERSION, FLUX_MIN_KUBERNETES, minor_version

CONFIGURATION_PROVIDER = "Microsoft.KubernetesConfiguration"  # extensions and Flux configurations
LEGACY_FEATURES = {"microsoft.containerservice/aks-extensionmanager"}  # microsoft.flux no longer needs them
EXTENSION_STUCK_AFTER = timedelta(minutes=30)  # the component's create timeout: longer than this is stuck
REGISTER_TIMEOUT_SECONDS = 15 * 60
# Who fetches a Flux source with the extension's workload identity: the source-controller's service account, which
# the federated credential's subject names (learn.microsoft.com/azure/azure-arc/kubernetes/tutorial-use-gitops-flux2,
# "Workload identity in AKS clusters"), for the audience every Entra federated credential of a workload takes.
SOURCE_CONTROLLER_SUBJECT = "system:serviceaccount:flux-system:source-controller"
FEDERATED_AUDIENCE = "api://AzureADTokenExchange"


class Outcome(StrEnum):
    passed = "pass"
    failed = "fail"
    warning = "warn"  # worth knowing, not a failure


@dataclass(frozen=True)
class Check:
    id: str  # what kind of check: providers, cluster, flux-extension, key-vault, ...
    subject: str  # what was checked: a provider namespace, a cluster, a Key Vault reference
    outcome: Outcome
    message: str
    remedy: str | None = None


@dataclass
class StackPreflight:
    stack: str
    file: str
    subscription_id: str | None = None
    errors: list[SpecIssue] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and all(check.outcome is not Outcome.failed for check in self.checks)


@dataclass
class FleetPreflight:
    stacks: list[StackPreflight]

    @property
    def exit_code(self) -> int:
        """2 for invalid input, else 1 when a check failed, else 0."""
        if any(stack.errors for stack in self.stacks):
            return 2
        return 0 if all(stack.ok for stack in self.stacks) else 1


def preflight_fleet(
    paths: Iterable[Path],
    reader: AzureReader,
    *,
    subscription_id: str | None = None,
    fix: bool = False,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    display: Callable[[Path], str] = str,
) -> FleetPreflight:
    paths = list(paths)
    shared = shared_clusters(paths, display)  # such a stack is invalid input: nothing checked, nothing fixed
    return FleetPreflight(
        [
            StackPreflight(report_name(path), display(path), errors=[shared[report_name(path)]])
            if report_name(path) in shared
            else preflight_stack(path, reader, subscription_id=subscription_id, fix=fix, now=now, display=display(path))
            for path in paths
        ]
    )


def preflight_stack(
    path: Path,
    reader: AzureReader,
    *,
    subscription_id: str | None = None,
    fix: bool = False,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    display: str | None = None,
) -> StackPreflight:
    """Validate one stack file, then run every check against Azure; a failed read fails its check, not the run."""
    file = display or str(path)
    result = StackPreflight(report_name(path), file)
    try:
        stack = load_stack_file(path, file)
    except SpecError as error:
        result.errors = error.issues
        return result
    result.checks.append(Check("spec", file, Outcome.passed, "the stack spec is valid"))
    cluster = stack.spec.cluster
    result.subscription_id = cluster.subscription_id or subscription_id or default_subscription(cloud=cluster.cloud)
    if result.subscription_id is None:
        result.checks.append(
            Check(
                "subscription",
                stack.name,
                Outcome.failed,
                "no Azure subscription",
                subscription_ways(option=True),
            )
        )
        return result
    checks = _Checks(stack, result.subscription_id, reader, fix, now())
    result.checks.extend(checks.run())
    return result


class _Checks:
    """The checks of one valid stack against one subscription, in the order a deploy needs them."""

    def __init__(self, stack: Stack, subscription_id: str, reader: AzureReader, fix: bool, now: datetime):
        self.spec = stack.spec
        self.subscription_id = subscription_id
        self.reader = reader
        self.fix = fix
        self.now = now
        self.cluster = ClusterRef.of(stack.spec.cluster)
        self.cluster_status: ManagedClusterStatus | ConnectedClusterStatus | None = None  # once read

    def run(self) -> Iterator[Check]:
        try:  # once: without a token every other read fails the same slow way
            who = self.reader.signed_in_identity()
        except AzureError as error:
            yield Check("credentials", "DefaultAzureCredential", Outcome.failed, str(error))
            return
        yield Check("credentials", "DefaultAzureCredential", Outcome.passed, f"signed in as {who}")
        providers = list(self.providers())
        yield from providers
        unregistered = {check.subject for check in providers if check.outcome is not Outcome.passed}
        yield from self.features()
        # Reading a resource of an unregistered provider makes the Azure SDK register it (azure-mgmt-core's
        # auto-registration policy), and a doctor changes nothing: those reads wait until the provider is registered.
        cluster_exists = False
        if self.cluster.rp in unregistered:
            yield self._not_read("cluster", self.cluster.rp)
        else:
            cluster_exists = yield from (self.aks_cluster() if not self.cluster.is_arc else self.arc_cluster())
            yield from self.source_identity()
        if cluster_exists and CONFIGURATION_PROVIDER in unregistered:
            yield self._not_read("flux-extension", CONFIGURATION_PROVIDER)
        elif cluster_exists:
            yield from self.flux_extension()
            yield from self.flux_v1()
        yield from self.key_vault_secrets()

    def _not_read(self, check_id: str, provider: str) -> Check:
        return Check(
            check_id,
            self.spec.cluster.name,
            Outcome.warning,
            f"not read: {provider} is not confirmed Registered (reading would register it)",
            "register the provider (see above), then run preflight again",
        )

    # ------------------------------------------------------------------ subscription

    def providers(self) -> Iterator[Check]:
        for namespace in self.spec.providers:
            yield self._guarded("providers", namespace, lambda namespace=namespace: self._provider(namespace))

    def _provider(self, namespace: str) -> Check:
        state = self.reader.provider(self.subscription_id, namespace)
        if state.registered:
            return Check("providers", namespace, Outcome.passed, "Registered")
        if self.fix:
            state = self.reader.register_provider(self.subscription_id, namespace, REGISTER_TIMEOUT_SECONDS)
            if state.registered:
                return Check("providers", namespace, Outcome.passed, "Registered (by --fix)")
        return Check(
            "providers",
            namespace,
            Outcome.failed,
            f"{state.registration_state} on subscription {self.subscription_id}",
            f"`fluxfleet preflight --fix`, or `az provider register --namespace {namespace} --wait`",
        )

    def features(self) -> Iterator[Check]:
        for feature in self.spec.features:
            yield self._guarded("features", feature, lambda feature=feature: self._feature(feature))

    def _feature(self, feature: str) -> Check:
        state = self.reader.feature(self.subscription_id, feature)
        if feature.lower() in LEGACY_FEATURES:
            return Check(
                "features",
                feature,
                Outcome.warning,
                f"{state.state}: a legacy preview feature the Flux extension no longer needs",
                "drop it from fluxfleet:features",
            )
        if state.registered:
            return Check("features", feature, Outcome.passed, "Registered")
        namespace, name = feature.split("/", 1)
        return Check(
            "features",
            feature,
            Outcome.failed,
            f"{state.state} on subscription {self.subscription_id}",
            f"`az feature register --namespace {namespace} --name {name}`, then "
            f"`az provider register --namespace {namespace}` once it is Registered",
        )

    # ------------------------------------------------------------------ cluster

    def aks_cluster(self) -> Iterator[Check]:
        spec = self.spec.cluster
        subject = f"{spec.resource_group}/{spec.name}"
        try:
            cluster = self.reader.managed_cluster(self.subscription_id, spec.resource_group, spec.name)
        except AzureError as error:
            yield Check("cluster", subject, Outcome.failed, str(error))
            return False
        self.cluster_status = cluster
        if cluster is None:
            yield self._resource_group(subject)
            if spec.kubernetes_version:
                yield self._kubernetes_version(subject, spec.kubernetes_version)
            return False
        if cluster.succeeded:
            yield Check("cluster", subject, Outcome.passed, "AKS cluster, provisioning Succeeded")
        else:
            yield Check(
                "cluster",
                subject,
                Outcome.failed,
                f"provisioning state {cluster.provisioning_state}",
                f"wait for the running operation to end (`az aks show -g {spec.resource_group} -n {spec.name}`); "
                "a Failed cluster needs `az aks update` or a support case before Flux can be installed",
            )
        if cluster.identity_type:
            yield Check("cluster-identity", subject, Outcome.passed, f"{cluster.identity_type} managed identity")
        else:
            yield Check(
                "cluster-identity",
                subject,
                Outcome.failed,
                "uses a service principal: the Flux extension needs a managed identity",
                f"`az aks update -g {spec.resource_group} -n {spec.name} --enable-managed-identity`",
            )
        version = cluster.current_kubernetes_version or cluster.kubernetes_version
        if version:
            yield self._kubernetes_version(subject, version)
        if spec.kubernetes_version:  # the stack's own, its profile's or its stage's pin
            yield self._guarded("kubernetes-offered", subject, lambda: self._offered(subject, spec.kubernetes_version))
        return True

    def _resource_group(self, subject: str) -> Check:
        """A cluster `pulumi up` will create needs its resource group: fluxfleet does not create resource groups."""
        group = self.spec.cluster.resource_group
        try:
            exists = self.reader.resource_group_exists(self.subscription_id, group)
        except AzureError as error:
            return Check("cluster", subject, Outcome.failed, str(error))
        if exists:
            return Check("cluster", subject, Outcome.passed, "does not exist yet: `pulumi up` creates it")
        return Check(
            "cluster",
            subject,
            Outcome.failed,
            f"neither the cluster nor its resource group {group} exists in subscription {self.subscription_id}",
            f"create the group first (`az group create -n {group} -l {self.spec.cluster.location}`): "
            "fluxfleet creates clusters, not resource groups",
        )

    def arc_cluster(self) -> Iterator[Check]:
        spec = self.spec.cluster
        subject = f"{spec.resource_group}/{spec.name}"
        try:
            cluster = self.reader.connected_cluster(self.subscription_id, spec.resource_group, spec.name)
        except AzureError as error:
            yield Check("cluster", subject, Outcome.failed, str(error))
            return False
        self.cluster_status = cluster
        if cluster is None:
            yield Check(
                "cluster",
                subject,
                Outcome.failed,
                f"no Azure Arc-connected cluster {spec.name} in {spec.resource_group}",
                f"connect it first: `az connectedk8s connect -g {spec.resource_group} -n {spec.name}`",
            )
            return False
        if cluster.connected:
            yield Check("cluster", subject, Outcome.passed, "Arc-connected cluster, Connected")
        else:
            seen = f", last seen {_when(cluster.last_connectivity_time)}" if cluster.last_connectivity_time else ""
            yield Check(
                "cluster",
                subject,
                Outcome.failed,
                f"connectivity {cluster.connectivity_status}{seen}",
                "check that the cluster's Arc agents (namespace azure-arc) can reach Azure; "
                "`az connectedk8s troubleshoot` collects their logs",
            )
        if (cluster.agent_state or "").lower() == "failed":
            errors = "; ".join(e.message for e in cluster.agent_errors) or "no error detail"
            yield Check(
                "arc-agents",
                subject,
                Outcome.failed,
                f"Arc agents Failed: {errors}",
                f"`az connectedk8s upgrade -g {spec.resource_group} -n {spec.name}`, or `az connectedk8s troubleshoot`",
            )
        if cluster.kubernetes_version:
            yield self._kubernetes_version(subject, cluster.kubernetes_version)
        return True

    def source_identity(self) -> Iterator[Check]:
        """For sources that authenticate as the Flux extension's workload identity (git provider Azure, an OCI source
        with useWorkloadIdentity): the cluster's OIDC issuer and workload identity are on, and the federated credential
        the user creates once on the extension's managed identity, printed whole (preflight cannot read it: Azure
        finds an identity by its resource id, and the stack has only its client id)."""
        sources = identity_sources(self.spec)
        if not sources:
            return
        spec = self.spec.cluster
        subject = f"{spec.resource_group}/{spec.name}"
        names = ", ".join(name for name, _ in sources)
        status = self.cluster_status
        if status is None:
            if spec.is_aks:
                yield Check(
                    "federated-credential",
                    subject,
                    Outcome.warning,
                    f"{names} authenticate(s) as the Flux extension's workload identity; the cluster does not exist "
                    "yet, so its OIDC issuer is not known",
                    "after `pulumi up` creates it (OIDC issuer and workload identity on), run preflight again: it "
                    "prints the federated credential to create before Flux can fetch",
                )
            return
        if not (status.oidc_issuer_enabled and status.workload_identity_enabled and status.oidc_issuer_url):
            command = "az aks update" if spec.is_aks else "az connectedk8s update"
            yield Check(
                "federated-credential",
                subject,
                Outcome.failed,
                f"{names} authenticate(s) as the Flux extension's workload identity, but the cluster's OIDC issuer "
                "or workload identity is off",
                f"`{command} -g {spec.resource_group} -n {spec.name} --enable-oidc-issuer --enable-workload-identity`",
            )
            return
        client_id = extension_workload_identity(self.spec.flux.extension) or "CLIENT_ID"
        yield Check(
            "federated-credential",
            subject,
            Outcome.warning,
            f"{names} authenticate(s) as managed identity {client_id} (the Flux extension's workload identity): it "
            f"needs a federated credential with issuer {status.oidc_issuer_url}, subject {SOURCE_CONTROLLER_SUBJECT}, "
            f"audience {FEDERATED_AUDIENCE}",
            "once, if it does not exist yet: `az identity federated-credential create --name flux-source-controller "
            "--identity-name IDENTITY --resource-group IDENTITY_GROUP "
            f"--issuer {status.oidc_issuer_url} --subject {SOURCE_CONTROLLER_SUBJECT} --audience {FEDERATED_AUDIENCE}`"
            " (IDENTITY: the managed identity whose client ID that is)",
        )

    def _offered(self, subject: str, version: str) -> Check:
        """The version the stack asks for is one AKS offers this cluster now, in its region: the one it runs, or an
        upgrade of its upgrade profile (`managedClusters/upgradeProfiles/default`, controlPlaneProfile)."""
        spec = self.spec.cluster
        profile = self.reader.upgrade_profile(self.subscription_id, spec.resource_group, spec.name)
        if profile is None:  # deleted since it was read: its creation takes any version AKS supports
            return Check("kubernetes-offered", subject, Outcome.passed, "no upgrade profile: the cluster is new")
        runs = f"runs {profile.current or 'an unknown version'}"
        offered = ", ".join(profile.upgrades) or "no upgrade"
        if not profile.offers(version):
            return Check(
                "kubernetes-offered",
                subject,
                Outcome.failed,
                f"Kubernetes {version} is not offered to this cluster ({runs}; AKS offers it: {offered})",
                f"pin a version it offers (`az aks get-upgrades -g {spec.resource_group} -n {spec.name}`), or wait "
                "until the release reaches its region",
            )
        if is_version(profile.current, version):
            return Check("kubernetes-offered", subject, Outcome.passed, f"Kubernetes {version}: {runs}")
        preview = " (a preview version)" if any(is_version(v, version) for v in profile.preview) else ""
        return Check("kubernetes-offered", subject, Outcome.passed, f"Kubernetes {version} offered{preview} ({runs})")

    def _kubernetes_version(self, subject: str, version: str) -> Check:
        floor = ".".join(map(str, FLUX_MIN_KUBERNETES))
        parsed = minor_version(version)
        if parsed is not None and parsed >= FLUX_MIN_KUBERNETES:
            return Check("kubernetes-version", subject, Outcome.passed, f"Kubernetes {version} (Flux needs {floor}+)")
        return Check(
            "kubernetes-version",
            subject,
            Outcome.failed,
            f"Kubernetes {version}: the Flux extension needs {floor} or newer",
            "upgrade the cluster first",
        )

    # ------------------------------------------------------------------ Flux

    def flux_extension(self) -> Iterator[Check]:
        subject = f"{self.spec.cluster.name}/{EXTENSION_NAME}"
        try:
            extensions = self.reader.extensions(self.subscription_id, self.cluster)
        except AzureError as error:
            yield Check("flux-extension", subject, Outcome.failed, str(error))
            return
        flux = [e for e in extensions if e.extension_type.lower() == EXTENSION_TYPE]
        if not flux:
            yield Check("flux-extension", subject, Outcome.warning, "not installed yet: `pulumi up` installs it")
            return
        for extension in flux:
            yield from self._extension(extension)
        yield from self._upgrade_path(flux)

    def _extension(self, extension: ExtensionStatus) -> Iterator[Check]:
        subject = f"{self.spec.cluster.name}/{extension.name}"
        if extension.name != EXTENSION_NAME:
            yield Check(
                "flux-extension",
                subject,
                Outcome.failed,
                f"{EXTENSION_TYPE} is installed as {extension.name!r}; fluxfleet manages it as {EXTENSION_NAME!r} "
                "and a cluster takes one",
                f"`pulumi import` it as {EXTENSION_NAME!r}, or delete it: "
                f"`az k8s-extension delete -g {self.spec.cluster.resource_group} -c {self.spec.cluster.name} "
                f"-t {self.cluster.resource_type} -n {extension.name}`",
            )
        state = extension.provisioning_state
        if extension.succeeded:
            yield Check("flux-extension", subject, Outcome.passed, f"{state}, version {extension.current_version}")
        elif state.lower() in ("creating", "updating", "deleting"):
            since = extension.last_modified_at
            if since is not None and self.now - since > EXTENSION_STUCK_AFTER:
                yield Check(
                    "flux-extension",
                    subject,
                    Outcome.failed,
                    f"stuck {state} since {_when(since)} ({_age(self.now - since)})",
                    "read `az k8s-extension show` statuses; delete the extension and let `pulumi up` recreate it",
                )
            else:
                yield Check("flux-extension", subject, Outcome.warning, f"{state} (an operation is running)")
        else:
            detail = "; ".join(extension.messages) or "no detail from Azure"
            yield Check(
                "flux-extension",
                subject,
                Outcome.failed,
                f"{state}: {detail}",
                "no Flux configuration can be applied until it is fixed: read `az k8s-extension show`, "
                "then delete the extension and let `pulumi up` recreate it",
            )
        version = minor_version(extension.current_version)
        if version is not None and version < FLUX_EXTENSION_MIN_VERSION:
            oldest = ".".join(map(str, FLUX_EXTENSION_MIN_VERSION))
            yield Check(
                "flux-extension-version",
                subject,
                Outcome.failed,
                f"version {extension.current_version} is older than {oldest}, the supported window",
                "turn on autoUpgradeMinorVersion, or pin a supported version in fluxfleet:flux.extension.version",
            )

    def _upgrade_path(self, flux: list[ExtensionStatus]) -> Iterator[Check]:
        """A pinned version must not skip a hop the release notes require from the version installed."""
        installed = installed_flux(flux)
        pinned = self.spec.flux.extension.version
        if installed is None or pinned is None or installed.current_version is None:
            return
        subject = f"{self.spec.cluster.name}/{installed.name}"
        if problem := upgrade_path_problem(flux, self.spec):
            remedy = f"upgrade path: {RELEASE_NOTES}"
            yield Check("flux-extension-upgrade", subject, Outcome.failed, problem, remedy)
        else:
            message = f"installed {installed.current_version}; pinned {pinned}: no required upgrade skipped"
            yield Check("flux-extension-upgrade", subject, Outcome.passed, message)

    def flux_v1(self) -> Iterator[Check]:
        subject = self.spec.cluster.name
        try:
            legacy = self.reader.source_control_configurations(self.subscription_id, self.cluster)
        except AzureError as error:
            yield Check("flux-v1", subject, Outcome.failed, str(error))
            return
        if not legacy:
            yield Check("flux-v1", subject, Outcome.passed, "no Flux v1 sourceControlConfigurations")
            return
        yield Check(
            "flux-v1",
            subject,
            Outcome.failed,
            f"Flux v1 configurations {', '.join(sorted(legacy))} cannot coexist with the Flux extension",
            "migrate them to Flux configurations, then "
            f"`az k8s-configuration delete -g {self.spec.cluster.resource_group} -c {self.spec.cluster.name} "
            f"-t {self.cluster.resource_type} -n NAME`",
        )

    # ------------------------------------------------------------------ Key Vault

    def key_vault_secrets(self) -> Iterator[Check]:
        for path, ref in key_vault_refs(self.spec):
            yield self._guarded("key-vault", str(ref), lambda path=path, ref=ref: self._secret(path, ref))

    def _secret(self, path: str, ref: KeyVaultRef) -> Check:
        metadata = self.reader.secret_metadata(ref)
        where = f"for {path}"
        if not metadata.enabled:
            return Check(
                "key-vault", str(ref), Outcome.failed, f"disabled {where}", "enable the secret or point at another"
            )
        if metadata.expires is not None and metadata.expires <= self.now:
            return Check(
                "key-vault",
                str(ref),
                Outcome.failed,
                f"expired {_when(metadata.expires)} {where}",
                "rotate it: set a new version in Key Vault",
            )
        updated = f", updated {_when(metadata.updated)}" if metadata.updated else ""
        return Check("key-vault", str(ref), Outcome.passed, f"readable {where} (version {metadata.version}{updated})")

    def _guarded(self, check_id: str, subject: str, check: Callable[[], Check]) -> Check:
        """A check whose Azure read fails is a failed check with the layer's one-line reason."""
        try:
            return check()
        except AzureError as error:
            return Check(check_id, subject, Outcome.failed, str(error))


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _age(delta: timedelta) -> str:
    hours, rest = divmod(int(delta.total_seconds()), 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m"


# --------------------------------------------------------------------------------------------- reports

MARKS = {Outcome.passed: ("✔", "green"), Outcome.failed: ("✗", "red"), Outcome.warning: ("!", "yellow")}


def to_json(fleet: FleetPreflight) -> dict:
    return {
        "ok": fleet.exit_code == 0,
        "stacks": [
            {
                "stack": stack.stack,
                "file": stack.file,
                "subscriptionId": stack.subscription_id,
                "ok": stack.ok,
                "errors": [{"file": e.file, "path": e.path, "message": e.message} for e in stack.errors],
                "checks": [
                    {
                        "id": c.id,
                        "subject": c.subject,
                        "outcome": c.outcome.value,
                        "message": c.message,
                        "remedy": c.remedy,
                    }
                    for c in stack.checks
                ],
            }
            for stack in fleet.stacks
        ],
    }


def to_text(fleet: FleetPreflight, color: bool = False, width: int = 120) -> str:
    """One line a check, never wrapped (people grep and copy them), each failure followed by what to do. What Azure
    said and the names in a stack file are escaped: a terminal escape or a newline in them cannot forge a line."""
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=color, no_color=not color, width=width, highlight=False)
    for stack in fleet.stacks:
        subscription = f"  subscription {stack.subscription_id}" if stack.subscription_id else ""
        console.print(Text(printable(f"{stack.stack}  {stack.file}{subscription}"), style="bold"), soft_wrap=True)
        for error in stack.errors:
            console.print(Text(f"  ✗ {printable(str(error))}", style="red"), soft_wrap=True)
        for check in stack.checks:
            mark, style = MARKS[check.outcome]
            line = Text.assemble(("  " + mark, style), printable(f" {check.id:<22} {check.subject}: {check.message}"))
            console.print(line, soft_wrap=True)
            if check.remedy and check.outcome is not Outcome.passed:
                console.print(Text(f"      → {printable(check.remedy)}"), soft_wrap=True)
    ready = sum(stack.ok for stack in fleet.stacks)
    console.print(f"{len(fleet.stacks)} stack(s) checked: {ready} ready, {len(fleet.stacks) - ready} not ready")
    return buffer.getvalue()
