"""The rollout's health gate: after a stack's update, wait until Flux on its cluster reports healthy.

An AKS cluster is first waited for until it and every node pool are provisioned again (Succeeded, not Upgrading:
a Kubernetes upgrade runs control plane first, then pool by pool; Failed fails the gate). Then Flux: healthy means
every Flux configuration the stack declares is provisioned, `Compliant`, reported after the update
ended (an older status says nothing about the new revision), and synced to the pinned tag or commit when one is
pinned. A fresh Non-Compliant or a Failed provisioning fails at once; anything else is waited for until the timeout.
An Arc cluster that is offline defers the gate instead of failing it: its update waits in Azure for the cluster.

With `FleetFluxReads`, the gates of a stage poll together: one Azure Resource Graph read per poll serves every stack
gating at the time, instead of a list call per stack. Resource Graph lags ARM, so the batch only decides what is
still to wait for: a verdict (passed, or failed) is confirmed by one ARM read of that cluster's configurations.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from fluxfleet.azure.fleet_graph import ClusterTarget, FleetReads, FleetSnapshot
from fluxfleet.azure.status import AzureError, AzureReader, FluxConfigurationStatus
from fluxfleet.flux_health import Assessment, Verdict, assess
from fluxfleet.clock import Clock
from modules.cluster_ref import ClusterRef
from modules.spec import StackSpec

TERMINAL_STATES = frozenset({"succeeded", "failed", "canceled"})  # ARM provisioning states no operation holds


@dataclass(frozen=True)
class GateResult:
    ok: bool
    message: str
    deferred: bool = False  # not healthy yet for a reason that is not the update's: an Arc cluster offline


class FleetFluxReads:
    """The Flux configurations of every cluster gating at the time, from one fleet read per poll.

    A gate's first look at its cluster is not batched (its stack has just been updated; nothing to share yet): it
    registers the cluster for the next read and is answered through ARM. After that, a read serves each gate once,
    and the first gate to come back for more after it has seen the latest read starts the next one, for every
    cluster still gating. Gates polling together (a stage's stacks) cost one read a poll, however many they are."""

    def __init__(self, fleet: FleetReads):
        self._fleet = fleet
        self._lock = threading.Lock()
        self._gating: set[ClusterTarget] = set()
        self._snapshot: FleetSnapshot | None = None
        self._read_for: frozenset[ClusterTarget] = frozenset()
        self._generation = 0
        self._seen: dict[ClusterTarget, int] = {}  # the read each gate was last answered from
        self.reads = 0

    def flux_configurations(self, target: ClusterTarget) -> tuple[FluxConfigurationStatus, ...] | None:
        """None on a gate's first look (read it through ARM); () when the cluster is not found yet. AzureError when
        the cluster's subscription or read failed."""
        with self._lock:  # a gate waits for a read another gate started: it wants the same read
            if target not in self._gating:
                self._gating.add(target)
                return None
            if target not in self._read_for or self._seen.get(target) == self._generation:
                self._snapshot = self._fleet.read(sorted(self._gating, key=ClusterTarget.order))
                self._read_for, self._generation = frozenset(self._gating), self._generation + 1
                self.reads += 1
            self._seen[target] = self._generation
            snapshot = self._snapshot
        assert snapshot is not None
        for denied in snapshot.denied:
            if denied.subscription_id.lower() == target.subscription_id:
                raise AzureError(f"subscription {target.subscription_id} cannot be read: {denied.reason}")
        if target in snapshot.failed:
            raise AzureError(snapshot.failed[target])
        read = snapshot.clusters.get(target)
        return read.flux_configurations if read is not None and read.found else ()

    def read_now(self, targets: Iterable[ClusterTarget]) -> FleetSnapshot:
        """One fleet read of these clusters, apart from the gates' (a soak's look at a stage's stacks)."""
        with self._lock:
            self.reads += 1
        return self._fleet.read(sorted(set(targets), key=ClusterTarget.order))

    def done(self, target: ClusterTarget) -> None:
        """The gate of `target` has ended: later reads leave its cluster out."""
        with self._lock:
            self._gating.discard(target)
            self._seen.pop(target, None)


class FluxHealthGate:
    """Polls a cluster's Flux configurations until healthy, unhealthy or timed out: through `fleet` (one read for all
    the stacks gating at once) when given, each verdict confirmed through `reader` (ARM); else through `reader`."""

    def __init__(
        self,
        reader: AzureReader,
        clock: Clock,
        timeout: float,
        poll_interval: float,
        fleet: FleetFluxReads | None = None,
    ):
        self.reader = reader
        self.clock = clock
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.fleet = fleet

    def wait(
        self, spec: StackSpec, subscription_id: str, since: datetime, stop: threading.Event | None = None
    ) -> GateResult:
        ref = ClusterRef.of(spec.cluster)
        if ref.is_arc:
            offline = self._offline(spec, subscription_id)
            if offline:
                return GateResult(False, offline, deferred=True)
        target = ClusterTarget(
            subscription_id.lower(), spec.cluster.resource_group, spec.cluster.name, spec.cluster.kind
        )
        try:
            return self._poll(spec, subscription_id, ref, target, since, stop)
        finally:
            if self.fleet is not None:
                self.fleet.done(target)

    def _poll(
        self,
        spec: StackSpec,
        subscription_id: str,
        ref: ClusterRef,
        target: ClusterTarget,
        since: datetime,
        stop: threading.Event | None,
    ) -> GateResult:
        started = self.clock.now()
        last = "no answer from Azure yet"
        settled = False  # the cluster and its pools provisioned: read until they are, then Flux alone
        while True:
            try:
                provisioned = Assessment(Verdict.healthy, "") if settled else self._provisioned(spec, subscription_id)
            except AzureError as error:  # transient until the timeout says otherwise
                provisioned = Assessment(Verdict.waiting, str(error))
            settled = provisioned.verdict is Verdict.healthy
            if provisioned.verdict is Verdict.unhealthy:
                return GateResult(False, provisioned.message)
            try:
                if provisioned.verdict is Verdict.waiting:  # an upgrade still runs: Flux is judged after it
                    assessment = provisioned
                elif self.fleet is None or (batched := self.fleet.flux_configurations(target)) is None:
                    assessment = assess(spec, self.reader.flux_configurations(subscription_id, ref), since)
                else:
                    assessment = assess(spec, list(batched), since)
                    if assessment.verdict is not Verdict.waiting:  # Resource Graph lags: ARM has the last word
                        assessment = assess(spec, self.reader.flux_configurations(subscription_id, ref), since)
            except AzureError as error:  # transient until the timeout says otherwise
                assessment = Assessment(Verdict.waiting, str(error))
            if assessment.verdict is not Verdict.waiting:
                return GateResult(assessment.verdict is Verdict.healthy, assessment.message)
            last = assessment.message
            waited = (self.clock.now() - started).total_seconds()
            if waited >= self.timeout:
                return GateResult(False, f"not healthy after {int(self.timeout)}s: {last}")
            if self.clock.sleep(min(self.poll_interval, self.timeout - waited), stop):
                return GateResult(False, f"stopped while waiting: {last}")

    def _provisioned(self, spec: StackSpec, subscription_id: str) -> Assessment:
        """An AKS cluster whose update changed its version (a kubernetes pin) is upgraded control plane first, then
        pool by pool: healthy once the cluster and every pool are Succeeded again, not Upgrading (an ARM read of the
        cluster, which lists every pool); a Failed one fails the gate. An Arc cluster's version is its own."""
        if not spec.cluster.is_aks:
            return Assessment(Verdict.healthy, "")
        cluster = self.reader.managed_cluster(subscription_id, spec.cluster.resource_group, spec.cluster.name)
        if cluster is None:
            return Assessment(Verdict.waiting, f"cluster {spec.cluster.name} not found yet")
        parts = [(f"cluster {spec.cluster.name}", cluster.provisioning_state)]
        parts += [(f"node pool {pool.name}", pool.provisioning_state) for pool in cluster.pools]
        parts = [(what, state) for what, state in parts if state.lower() != "unknown"]  # left out: not waited on
        for what, state in parts:
            if state.lower() in ("failed", "canceled"):
                return Assessment(Verdict.unhealthy, f"{what} provisioning {state} after the update")
        waiting = [f"{what} {state}" for what, state in parts if state.lower() != "succeeded"]
        if waiting:
            return Assessment(Verdict.waiting, ", ".join(waiting))
        return Assessment(Verdict.healthy, "")

    def look(self, stacks: Mapping[str, tuple[StackSpec, str, datetime]]) -> dict[str, Assessment]:
        """One look at the Flux of several stacks at once (stack -> its spec, subscription, and since when a status
        counts), as a soak watches a stage: one fleet read for them all when the gate has `fleet`, a verdict other
        than healthy confirmed through ARM (Resource Graph lags); else each read through ARM. A stack that cannot be
        read is `waiting`: a soak judges it at its next look."""
        targets = {
            name: ClusterTarget(subscription.lower(), spec.cluster.resource_group, spec.cluster.name, spec.cluster.kind)
            for name, (spec, subscription, _) in stacks.items()
        }
        snapshot = None
        if self.fleet is not None and targets:
            try:
                snapshot = self.fleet.read_now(targets.values())
            except AzureError:
                snapshot = None  # each through ARM instead
        looks = {}
        for name, (spec, subscription, since) in stacks.items():
            read = snapshot.clusters.get(targets[name]) if snapshot is not None else None
            if read is not None and read.found:
                assessment = assess(spec, list(read.flux_configurations), since)
                if assessment.verdict is not Verdict.unhealthy:
                    looks[name] = assessment
                    continue
            try:
                looks[name] = assess(
                    spec, self.reader.flux_configurations(subscription, ClusterRef.of(spec.cluster)), since
                )
            except AzureError as error:
                looks[name] = Assessment(Verdict.waiting, str(error))
        return looks

    def wait_until_idle(self, spec: StackSpec, subscription_id: str, stop: threading.Event | None = None) -> GateResult:
        """Before an update: wait until no operation runs on the cluster or its Flux extension. ARM answers a second
        mutating operation with 409 "another operation is in progress", which azure-native does not retry; waiting
        for a terminal state is what the API asks. Not ok after the gate's timeout."""
        ref = ClusterRef.of(spec.cluster)
        started = self.clock.now()
        while True:
            busy = self._running_operation(spec, subscription_id, ref)
            if busy is None:
                return GateResult(True, "no operation running")
            waited = (self.clock.now() - started).total_seconds()
            if waited >= self.timeout:
                return GateResult(False, f"{busy} after {int(self.timeout)}s: another operation is running")
            if self.clock.sleep(min(self.poll_interval, self.timeout - waited), stop):
                return GateResult(False, f"stopped while waiting: {busy}")

    def _running_operation(self, spec: StackSpec, subscription_id: str, ref: ClusterRef) -> str | None:
        """What is still running (`cluster aks-1 Updating`), or None. Unreadable counts as idle: the update
        itself will say what is wrong."""
        try:
            if not ref.is_arc:
                cluster = self.reader.managed_cluster(subscription_id, spec.cluster.resource_group, spec.cluster.name)
                if cluster is not None and cluster.provisioning_state.lower() not in TERMINAL_STATES:
                    return f"cluster {spec.cluster.name} {cluster.provisioning_state}"
            for extension in self.reader.extensions(subscription_id, ref):
                if extension.provisioning_state.lower() not in TERMINAL_STATES:
                    return f"extension {extension.name} {extension.provisioning_state}"
        except AzureError:
            return None
        return None

    def _offline(self, spec: StackSpec, subscription_id: str) -> str | None:
        """Why an Arc cluster cannot report Flux state now (offline, expired), or None. Stores lose their uplink for
        days; the update is in Azure and applies when the agents reconnect, so that is no failure of the update."""
        try:
            cluster = self.reader.connected_cluster(subscription_id, spec.cluster.resource_group, spec.cluster.name)
        except AzureError:
            return None  # the gate's own reads will say what is wrong
        if cluster is None or cluster.connected:
            return None
        seen = cluster.last_connectivity_time
        since = f" (last seen {seen.strftime('%Y-%m-%d %H:%M UTC')})" if seen else ""
        return f"Arc cluster {cluster.connectivity_status}{since}: Flux applies the update when it reconnects"
