"""The rollout's health gate: after a stack's update, wait until Flux on its cluster reports healthy.

Healthy means every Flux configuration the stack declares is provisioned, `Compliant`, reported after the update
ended (an older status says nothing about the new revision), and synced to the pinned tag or commit when one is
pinned. A fresh Non-Compliant or a Failed provisioning fails at once; anything else is waited for until the timeout.
An Arc cluster that is offline defers the gate instead of failing it: its update waits in Azure for the cluster.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

from fluxfleet.azure.status import AzureError, AzureReader
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


class FluxHealthGate:
    """Polls a cluster's Flux configurations through the Azure layer until healthy, unhealthy or timed out."""

    def __init__(self, reader: AzureReader, clock: Clock, timeout: float, poll_interval: float):
        self.reader = reader
        self.clock = clock
        self.timeout = timeout
        self.poll_interval = poll_interval

    def wait(
        self, spec: StackSpec, subscription_id: str, since: datetime, stop: threading.Event | None = None
    ) -> GateResult:
        ref = ClusterRef.of(spec.cluster)
        if ref.is_arc:
            offline = self._offline(spec, subscription_id)
            if offline:
                return GateResult(False, offline, deferred=True)
        started = self.clock.now()
        last = "no answer from Azure yet"
        while True:
            try:
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
