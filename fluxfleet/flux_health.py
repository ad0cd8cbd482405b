"""Whether Flux on a cluster is healthy for what a stack declares: every Flux configuration provisioned, `Compliant`,
and synced to the pinned tag or commit. The rollout gate, `status` and `drift` judge alike through this module."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from fluxfleet.azure.status import FluxConfigurationStatus, FluxObjectStatus, same_revision
from modules.spec import API_DEFAULT_INTERVAL, ConfigurationSpec, StackSpec

BRANCH_GRACE_INTERVALS = 3  # source sync intervals a branch's new head may take to reach the cluster


class Verdict(StrEnum):
    healthy = "healthy"
    waiting = "waiting"
    unhealthy = "unhealthy"


@dataclass(frozen=True)
class Assessment:
    verdict: Verdict
    message: str


def assess(spec: StackSpec, statuses: list[FluxConfigurationStatus], since: datetime) -> Assessment:
    """One look at the cluster's Flux configurations against what the stack declares."""
    by_name = {status.name: status for status in statuses}
    waiting = []
    for name, configuration in spec.flux.configurations.items():
        status = by_name.get(name)
        verdict, message = configuration_verdict(configuration, status, since)
        if verdict is Verdict.unhealthy:
            return Assessment(verdict, f"{name}: {message}")
        if verdict is Verdict.waiting:
            waiting.append(f"{name}: {message}")
    if waiting:
        return Assessment(Verdict.waiting, "; ".join(waiting))
    return Assessment(Verdict.healthy, f"{len(spec.flux.configurations)} Flux configuration(s) Compliant")


def configuration_verdict(
    configuration: ConfigurationSpec, status: FluxConfigurationStatus | None, since: datetime | None = None
) -> tuple[Verdict, str]:
    """One configuration as the stack declares it against what Azure reports. With `since`, a status reported
    before then says nothing yet (an update began since)."""
    if status is None:
        return Verdict.waiting, "not reported yet"
    state = status.provisioning_state.lower()
    if state == "failed":
        return Verdict.unhealthy, f"provisioning Failed: {status.error_message or 'no detail from Azure'}"
    if state != "succeeded":
        return Verdict.waiting, f"provisioning {status.provisioning_state}"
    if configuration.suspend:
        return Verdict.healthy, "suspended"
    if since is not None and status.status_updated_at is not None and status.status_updated_at < since:
        return Verdict.waiting, f"{status.compliance_state} as of before the update"
    if status.compliant:
        mismatch = pin_mismatch(configuration, status)
        return (Verdict.waiting, mismatch) if mismatch else (Verdict.healthy, "Compliant")
    if status.compliance_state.lower() == "non-compliant":
        return Verdict.unhealthy, "Non-Compliant: " + first_problem(status)
    return Verdict.waiting, status.compliance_state


def pin_mismatch(configuration: ConfigurationSpec, status: FluxConfigurationStatus) -> str | None:
    """Why the synced revision is not the pinned one yet, or None (branches and semver ranges pin nothing)."""
    git = configuration.git
    synced = status.source_synced_commit_id or "nothing"
    if configuration.oci is not None:
        return _oci_pin_mismatch(configuration, status)
    if git is None:
        return None
    if git.commit and not (status.synced_sha or "").startswith(git.commit):
        return f"synced {synced}, not commit {git.commit}"
    if git.tag and status.synced_ref != git.tag:
        return f"synced {synced}, not tag {git.tag}"
    return None


def _oci_pin_mismatch(configuration: ConfigurationSpec, status: FluxConfigurationStatus) -> str | None:
    """An OCI source pinned to a digest runs that digest; pinned to a tag, that tag when Azure names one (Flux writes
    an artifact's revision `TAG@sha256:DIGEST`; a bare digest says nothing of the tag)."""
    oci = configuration.oci
    assert oci is not None
    synced = status.source_synced_commit_id or "nothing"
    if oci.digest and not same_revision(synced, oci.digest):
        return f"synced {synced}, not digest {oci.digest}"
    if oci.tag and status.synced_ref is not None and status.synced_ref != oci.tag:
        return f"synced {synced}, not tag {oci.tag}"
    return None


@dataclass(frozen=True)
class BranchLag:
    """A configuration that tracks a branch and runs an older revision than the head its source has fetched."""

    branch: str
    running: str  # what the lagging Kustomization applied
    applied_at: datetime | None  # when (its Ready condition last changed)
    head: str  # what the source fetched last
    head_since: datetime | None  # when
    interval: int  # the source's sync interval, seconds
    default_interval: bool  # the stack leaves it to the API's default

    @property
    def grace(self) -> timedelta:
        return timedelta(seconds=BRANCH_GRACE_INTERVALS * self.interval)

    def stale(self, now: datetime) -> bool | None:
        """True once the head has waited longer than the grace period, None when Azure does not say since when."""
        return None if self.head_since is None else now - self.head_since > self.grace

    def describe(self, now: datetime) -> str:
        interval = span(self.interval) + (", the API's default" if self.default_interval else "")
        grace = span(self.grace.total_seconds())
        grace = f"the grace period {grace} ({BRANCH_GRACE_INTERVALS} × syncInterval {interval})"
        stale = self.stale(now)
        verdict = {True: f"past {grace}", False: f"within {grace}", None: f"whether past {grace} is unknown"}[stale]
        return (
            f"tracks branch {self.branch}; runs {short_revision(self.running)}, applied {_ago(now, self.applied_at)}; "
            f"the source fetched a newer revision ({short_revision(self.head)}) {_ago(now, self.head_since)}, {verdict}"
        )


def branch_lag(configuration: ConfigurationSpec, status: FluxConfigurationStatus) -> BranchLag | None:
    """How a configuration that tracks a branch lags the branch head, or None: it runs the head, it pins a tag,
    semver range or commit (`pin_mismatch` judges those), or Azure does not say what runs.

    The head is the revision the source fetched last: its GitRepository's Ready message ("stored artifact for
    revision 'main@sha1:...'"), else `sourceSyncedCommitId`; fetched at `sourceUpdatedAt` when that names the same
    revision, else when that Ready condition last changed. What runs is what each of the configuration's Kustomizations'
    Ready message says it applied ("Applied revision: main@sha1:..."), applied when that condition last changed (its
    message changes with the revision). An old `sourceUpdatedAt` alone is no lag: a quiet branch has no new commit,
    and a source that cannot fetch is Non-Compliant."""
    git = configuration.git
    if git is None or not git.branch or git.tag or git.semver or git.commit:
        return None
    source = _source_object(status)
    head = (source.revision if source else None) or status.source_synced_commit_id
    if head is None:
        return None
    lagging = [k for k in _kustomization_objects(status) if k.revision and not same_revision(k.revision, head)]
    if not lagging:
        return None
    oldest = min(lagging, key=lambda k: k.ready_since or datetime.max.replace(tzinfo=UTC))  # unknown times last
    synced = status.source_synced_commit_id
    if synced and same_revision(synced, head) and status.source_updated_at is not None:
        head_since = status.source_updated_at
    else:
        head_since = source.ready_since if source else None
    return BranchLag(
        branch=git.branch,
        running=oldest.revision or "",
        applied_at=oldest.ready_since,
        head=head,
        head_since=head_since,
        interval=git.sync_interval or API_DEFAULT_INTERVAL,
        default_interval=git.sync_interval is None,
    )


def _source_object(status: FluxConfigurationStatus) -> FluxObjectStatus | None:
    """The configuration's GitRepository (named as the configuration), else the first one reported."""
    sources = [item for item in status.objects if item.kind == "GitRepository"]
    return next((item for item in sources if item.name == status.name), sources[0] if sources else None)


def _kustomization_objects(status: FluxConfigurationStatus) -> list[FluxObjectStatus]:
    """The configuration's own Kustomizations (Azure names them `<configuration>-<kustomization>`), else every one."""
    kustomizations = [item for item in status.objects if item.kind == "Kustomization"]
    own = [item for item in kustomizations if item.name.startswith(f"{status.name}-")]
    return own or kustomizations


def short_revision(revision: str) -> str:
    """`main@sha1:0ba6f0d` for `main@sha1:0ba6f0d30760d5...`: a commit SHA cut to 7 characters, the rest kept."""
    return re.sub(r"\b([0-9a-f]{7})[0-9a-f]{5,}\b", r"\1", revision)


def span(seconds: float) -> str:
    """`3h12m`, `10m`, `1m30s`, `2d4h`: the two largest units of a duration."""
    rest = max(int(seconds), 0)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts[:2]) or "0s"


def _ago(now: datetime, moment: datetime | None) -> str:
    return "at an unknown time" if moment is None else f"{span((now - moment).total_seconds())} ago"


def first_problem(status: FluxConfigurationStatus) -> str:
    for item in status.objects:
        if item.compliance_state.lower() != "compliant":
            return f"{item.kind} {item.name}: {item.message or item.compliance_state}"
    return status.error_message or "no detail from Azure"
