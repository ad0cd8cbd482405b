"""The Flux health gate: Compliant, Non-Compliant, Pending then Compliant, commit and tag mismatch, timeout."""

from __future__ import annotations

import copy
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fluxfleet.azure.status import (
    AzureError,
    ConnectedClusterStatus,
    ExtensionStatus,
    FluxConfigurationStatus,
    FluxObjectStatus,
    ManagedClusterStatus,
    PoolStatus,
)
from fluxfleet.flux_health import Verdict, assess
from fluxfleet.rollout.gate import FluxHealthGate
from fluxfleet.simulation import FakeClock
from modules.cluster_ref import ClusterRef
from modules.spec import StackSpec, parse_spec
from tests.conftest import BASE_STACK

UPDATED = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def compliant(state: str = "Compliant", when: datetime = UPDATED, commit: str = "main/0ba6f0d2e7ac41c1", **changes):
    values = dict(
        name="demo",
        namespace="flux-system",
        scope="cluster",
        source_kind="GitRepository",
        suspend=False,
        provisioning_state="Succeeded",
        compliance_state=state,
        error_message=None,
        source_synced_commit_id=commit,
        source_updated_at=when,
        status_updated_at=when,
        objects=(
            FluxObjectStatus("GitRepository", "demo", "flux-system", "Compliant", None),
            FluxObjectStatus(
                "Kustomization",
                "demo-apps",
                "flux-system",
                state,
                "kustomize build failed: accumulating resources" if state == "Non-Compliant" else None,
            ),
        ),
    )
    values.update(changes)
    return FluxConfigurationStatus(**values)


class FakeFlux:
    """The Azure layer's Flux configuration reader, answering from a function of the cluster name."""

    def __init__(self, answer: Callable[[str], list[FluxConfigurationStatus]], connectivity: str = "Connected"):
        self.answer = answer
        self.connectivity = connectivity  # of Arc clusters
        self.cluster_states = []
        self.reads = 0
        self.installed: dict[str, str | AzureError] = {}  # cluster name -> its microsoft.flux version (or the error)

    # the AKS cluster's provisioning state, read by read (or per cluster name: a list each); then Succeeded
    cluster_states: list[str] | dict[str, list[str]] = []

    def managed_cluster(self, subscription_id: str, resource_group: str, name: str) -> ManagedClusterStatus:
        states = self.cluster_states.get(name, []) if isinstance(self.cluster_states, dict) else self.cluster_states
        state = states.pop(0) if states else "Succeeded"
        return ManagedClusterStatus(name, state, "SystemAssigned", "1.31", "1.31.2", True, True)

    def extensions(self, subscription_id: str, cluster: ClusterRef) -> list[ExtensionStatus]:
        installed = self.installed.get(cluster.name)
        if isinstance(installed, AzureError):
            raise installed
        if installed is None:
            return []
        return [ExtensionStatus("flux", "microsoft.flux", "Succeeded", installed, installed, None, False, None, ())]

    def connected_cluster(self, subscription_id: str, resource_group: str, name: str) -> ConnectedClusterStatus:
        seen = datetime(2026, 1, 1, 9, 30, tzinfo=UTC)
        return ConnectedClusterStatus(name, "Succeeded", self.connectivity, seen, "1.30.4", "Succeeded", ())

    def flux_configurations(self, subscription_id: str, cluster: ClusterRef) -> list[FluxConfigurationStatus]:
        self.reads += 1
        result = self.answer(cluster.name)
        if isinstance(result, AzureError):
            raise result
        return result


def stack(**git) -> StackSpec:
    raw = copy.deepcopy(BASE_STACK)
    if git:
        source = raw["flux"]["configurations"]["demo"]["git"]
        source.pop("branch")
        source.update(git)
    return parse_spec(raw, file="Pulumi.test.yaml")


def test_compliant_after_the_update_is_healthy():
    assert assess(stack(), [compliant(when=UPDATED + timedelta(minutes=1))], UPDATED).verdict is Verdict.healthy


def test_fresh_non_compliant_is_unhealthy_at_once_with_the_failing_object():
    result = assess(stack(), [compliant("Non-Compliant", UPDATED + timedelta(seconds=5))], UPDATED)
    assert result.verdict is Verdict.unhealthy
    assert (
        result.message == "demo: Non-Compliant: Kustomization demo-apps: kustomize build failed: accumulating resources"
    )


def test_a_status_from_before_the_update_is_waited_on_not_judged():
    for state in ("Compliant", "Non-Compliant"):
        result = assess(stack(), [compliant(state, UPDATED - timedelta(minutes=5))], UPDATED)
        assert result.verdict is Verdict.waiting and "before the update" in result.message


def test_pending_missing_and_provisioning_are_waited_on():
    assert assess(stack(), [], UPDATED).message == "demo: not reported yet"
    assert assess(stack(), [compliant("Pending")], UPDATED).verdict is Verdict.waiting
    assert assess(stack(), [compliant(provisioning_state="Creating")], UPDATED).message == "demo: provisioning Creating"


def test_failed_provisioning_is_unhealthy_with_azure_message():
    failed = compliant(provisioning_state="Failed", error_message="Error: extension is not installed")
    result = assess(stack(), [failed], UPDATED)
    assert result.verdict is Verdict.unhealthy
    assert result.message == "demo: provisioning Failed: Error: extension is not installed"


def test_pinned_commit_must_be_the_synced_one():
    pinned = stack(branch="main", commit="1a2b3c4d")
    assert assess(pinned, [compliant(commit="main/1a2b3c4d5e6f")], UPDATED).verdict is Verdict.healthy
    assert assess(pinned, [compliant(commit="main@sha1:1a2b3c4d5e6f")], UPDATED).verdict is Verdict.healthy
    stale = assess(pinned, [compliant(commit="main/0ba6f0d2e7ac41c1")], UPDATED)
    assert stale.verdict is Verdict.waiting
    assert stale.message == "demo: synced main/0ba6f0d2e7ac41c1, not commit 1a2b3c4d"


def test_pinned_tag_must_be_the_synced_one():
    tagged = stack(tag="v1.0.0")
    assert assess(tagged, [compliant(commit="v1.0.0@sha1:0ba6f0d")], UPDATED).verdict is Verdict.healthy
    assert assess(tagged, [compliant(commit="v0.9.0/0ba6f0d")], UPDATED).verdict is Verdict.waiting


def test_gate_polls_pending_then_compliant():
    clock = FakeClock(UPDATED)
    answers = iter([[compliant("Pending")], AzureError("503 after 6 retries"), [compliant("Pending")]])
    flux = FakeFlux(lambda name: next(answers, [compliant(when=clock.now())]))
    result = FluxHealthGate(flux, clock, timeout=600, poll_interval=30).wait(stack(), "sub", UPDATED)
    assert result.ok and result.message == "1 Flux configuration(s) Compliant"
    assert flux.reads == 4 and clock.sleeps == [30, 30, 30]


def test_gate_times_out_with_the_last_reason():
    clock = FakeClock(UPDATED)
    pinned = stack(branch="main", commit="1a2b3c4d")
    flux = FakeFlux(lambda name: [compliant(when=clock.now())])  # compliant, but at the old commit
    result = FluxHealthGate(flux, clock, timeout=100, poll_interval=30).wait(pinned, "sub", UPDATED)
    assert not result.ok
    assert result.message == "not healthy after 100s: demo: synced main/0ba6f0d2e7ac41c1, not commit 1a2b3c4d"
    assert clock.sleeps == [30, 30, 30, 10]


def test_gate_non_compliant_fails_without_waiting_for_the_timeout():
    clock = FakeClock(UPDATED)
    flux = FakeFlux(lambda name: [compliant("Non-Compliant", clock.now())])
    result = FluxHealthGate(flux, clock, timeout=600, poll_interval=30).wait(stack(), "sub", UPDATED)
    assert not result.ok and clock.sleeps == []


def arc_stack() -> StackSpec:
    raw = copy.deepcopy(BASE_STACK)
    raw["cluster"] = {"kind": "arc", "name": "edge-store-001", "resourceGroup": "rg-edge"}
    return parse_spec(raw, file="Pulumi.edge-store-001.yaml")


def test_an_offline_arc_cluster_defers_the_gate_instead_of_failing_it():
    clock = FakeClock(UPDATED)
    flux = FakeFlux(lambda name: [compliant("Pending")], connectivity="Offline")
    result = FluxHealthGate(flux, clock, timeout=600, poll_interval=30).wait(arc_stack(), "sub", UPDATED)
    assert not result.ok and result.deferred
    assert result.message == (
        "Arc cluster Offline (last seen 2026-01-01 09:30 UTC): Flux applies the update when it reconnects"
    )
    assert flux.reads == 0 and clock.sleeps == []


def test_a_connected_arc_cluster_is_gated_like_any_other():
    clock = FakeClock(UPDATED)
    flux = FakeFlux(lambda name: [compliant(when=clock.now())])
    result = FluxHealthGate(flux, clock, timeout=600, poll_interval=30).wait(arc_stack(), "sub", UPDATED)
    assert result.ok and not result.deferred


def test_before_an_update_the_gate_waits_for_the_running_operation_to_end():
    clock = FakeClock(UPDATED)
    flux = FakeFlux(lambda name: [])
    flux.cluster_states = ["Updating", "Upgrading"]
    result = FluxHealthGate(flux, clock, timeout=600, poll_interval=30).wait_until_idle(stack(), "sub")
    assert result.ok and clock.sleeps == [30, 30]


def test_a_cluster_busy_past_the_timeout_is_not_updated():
    clock = FakeClock(UPDATED)
    flux = FakeFlux(lambda name: [])
    flux.cluster_states = ["Updating"] * 10
    result = FluxHealthGate(flux, clock, timeout=60, poll_interval=30).wait_until_idle(stack(), "sub")
    assert not result.ok
    assert result.message == "cluster aks-test Updating after 60s: another operation is running"


class UpgradingCluster(FakeFlux):
    """An AKS cluster whose Kubernetes upgrade runs: control plane, then its pools, one state per read of it."""

    def __init__(self, answer, reads: list[tuple[str, dict[str, str]]]):
        super().__init__(answer)
        self.cluster_reads = reads  # (the cluster's state, each pool's state), read by read; then the last again

    def managed_cluster(self, subscription_id: str, resource_group: str, name: str) -> ManagedClusterStatus:
        state, pools = self.cluster_reads.pop(0) if len(self.cluster_reads) > 1 else self.cluster_reads[0]
        listed = tuple(PoolStatus(pool, pool_state, "1.36.2") for pool, pool_state in pools.items())
        return ManagedClusterStatus(name, state, "SystemAssigned", "1.36", "1.36.2", True, True, pools=listed)


def test_after_a_kubernetes_upgrade_the_gate_waits_for_the_cluster_and_every_pool_then_judges_flux():
    clock = FakeClock(UPDATED)
    cluster = UpgradingCluster(
        lambda name: [compliant(when=clock.now())],
        [
            ("Upgrading", {"system": "Upgrading", "apps": "Succeeded"}),  # the control plane
            ("Succeeded", {"system": "Succeeded", "apps": "Upgrading"}),  # then pool by pool
            ("Succeeded", {"system": "Succeeded", "apps": "Succeeded"}),
        ],
    )
    result = FluxHealthGate(cluster, clock, timeout=600, poll_interval=30).wait(stack(), "sub", UPDATED)
    assert result.ok, result.message
    assert clock.sleeps == [30, 30] and cluster.reads == 1  # Flux read once, after the upgrade ended


def test_an_upgrade_that_fails_a_pool_fails_the_gate_at_once_and_one_still_running_times_out_saying_so():
    clock = FakeClock(UPDATED)
    failed = UpgradingCluster(lambda name: [compliant(when=clock.now())], [("Succeeded", {"apps": "Failed"})])
    result = FluxHealthGate(failed, clock, timeout=600, poll_interval=30).wait(stack(), "sub", UPDATED)
    assert (result.ok, result.message) == (False, "node pool apps provisioning Failed after the update")
    running = UpgradingCluster(lambda name: [compliant(when=clock.now())], [("Upgrading", {"system": "Upgrading"})])
    result = FluxHealthGate(running, clock, timeout=60, poll_interval=30).wait(stack(), "sub", UPDATED)
    assert (result.ok, result.message) == (
        False,
        "not healthy after 60s: cluster aks-test Upgrading, node pool system Upgrading",
    )
    assert running.reads == 0  # Flux is not judged mid-upgrade


# ---------------------------------------------------------------------------------------------- a stage's gates together


class FakeGraph:
    """FleetGraphReader's stand-in: Pending for the first reads, then Compliant (lagging ARM by one read)."""

    def __init__(self, clock: FakeClock, pending_reads: int):
        self.clock, self.pending_reads, self.reads, self.sizes = clock, pending_reads, 0, []

    def read(self, targets):
        from fluxfleet.azure.fleet_graph import ClusterSnapshot, FleetSnapshot

        self.reads += 1
        self.sizes.append(len(targets))
        state = "Pending" if self.reads <= self.pending_reads else "Compliant"
        clusters = {
            t: ClusterSnapshot(t, True, "graph", flux_configurations=(compliant(state, when=self.clock.now()),))
            for t in targets
        }
        return FleetSnapshot(clusters, (), {}, 1, self.clock.now())


class LockstepClock(FakeClock):
    """Gates that poll together, as a stage's do on a real clock: each sleep waits for every gate's, then the time
    moves on once."""

    def __init__(self, start: datetime, parties: int, step: float):
        super().__init__(start)
        self.barrier = threading.Barrier(parties, action=lambda: self.advance(step))

    def sleep(self, seconds: float, stop=None) -> bool:
        self.sleeps.append(seconds)
        self.barrier.wait(timeout=30)
        return False


def stage_specs(count: int) -> list[StackSpec]:
    specs = []
    for index in range(count):
        raw = copy.deepcopy(BASE_STACK)
        raw["cluster"]["name"] = f"aks-{index:03d}"
        specs.append(parse_spec(raw, file=f"Pulumi.s{index}.yaml"))
    return specs


def test_the_gates_of_a_stage_share_one_fleet_read_a_poll_and_arm_confirms_each_verdict():
    from fluxfleet.rollout.gate import FleetFluxReads

    specs = stage_specs(50)
    clock = LockstepClock(UPDATED, len(specs), 30)
    graph = FakeGraph(clock, pending_reads=3)
    looked: Counter[str] = Counter()

    def arm_answer(name: str) -> list[FluxConfigurationStatus]:  # a gate's first look: Pending; then Compliant
        looked[name] += 1
        return [compliant("Pending" if looked[name] == 1 else "Compliant", when=clock.now())]

    arm = FakeFlux(arm_answer)
    gate = FluxHealthGate(arm, clock, timeout=3600, poll_interval=30, fleet=FleetFluxReads(graph))
    results: dict[int, object] = {}
    ready = threading.Barrier(len(specs))

    def run(index: int) -> None:
        ready.wait()
        results[index] = gate.wait(specs[index], "SUB", UPDATED)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(specs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(result.ok for result in results.values()), results
    # 50 stacks, 5 looks each: per-stack list calls would be 250; batched, one read a poll after the first looks
    assert graph.reads == 4 and len(clock.sleeps) == 4 * 50
    assert max(graph.sizes) == 50
    assert arm.reads == 100  # per stack: its first look (its update just ended), and the confirmation of its verdict


def test_a_graph_verdict_that_arm_does_not_confirm_is_waited_on():
    from fluxfleet.rollout.gate import FleetFluxReads

    clock = FakeClock(UPDATED)
    graph = FakeGraph(clock, pending_reads=0)  # Resource Graph says Compliant at once
    # ARM: the first look, then more current than Resource Graph: not yet
    answers = iter([[compliant("Pending", when=clock.now())], [compliant("Pending", when=clock.now())]])
    arm = FakeFlux(lambda name: next(answers, [compliant(when=clock.now())]))
    result = FluxHealthGate(arm, clock, timeout=600, poll_interval=30, fleet=FleetFluxReads(graph)).wait(
        stack(), "SUB", UPDATED
    )
    # first look (ARM), then Resource Graph says Compliant, ARM does not yet; then both do
    assert result.ok and graph.reads == 2 and arm.reads == 3 and clock.sleeps == [30, 30]


def test_a_denied_subscription_in_the_fleet_read_is_waited_on_then_times_out():
    from fluxfleet.azure.fleet_graph import FleetSnapshot
    from fluxfleet.azure.resource_graph import DeniedSubscription
    from fluxfleet.rollout.gate import FleetFluxReads

    clock = FakeClock(UPDATED)

    class Denied:
        def read(self, targets):
            return FleetSnapshot({}, (DeniedSubscription("sub", "AuthorizationFailed"),), {}, 1, clock.now())

    arm = FakeFlux(lambda name: [compliant("Pending", when=clock.now())])  # the first look
    result = FluxHealthGate(arm, clock, timeout=60, poll_interval=30, fleet=FleetFluxReads(Denied())).wait(
        stack(), "SUB", UPDATED
    )
    assert not result.ok
    assert result.message == "not healthy after 60s: subscription sub cannot be read: AuthorizationFailed"
