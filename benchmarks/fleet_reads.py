"""Benchmark: reading a fleet's Flux state through Azure Resource Graph (`FleetGraphReader`) against reading it cluster
by cluster through ARM (`ArmReader`: per cluster a cluster GET, an extensions list and a Flux configurations list).

1,000 and 5,000 simulated clusters (10% AKS, 90% Arc; each with the microsoft.flux extension and two Flux
configurations, bodies from the official examples and the project's fixtures), 1,000 clusters a subscription. The
real SDK clients run in the loop; one scripted transport plays both services on a simulated clock, and counts:
- ARM's read budget, a token bucket per subscription: 250 reads, refilled at 10 a second (250 per 25 s). An empty
  bucket answers 429 with `Retry-After` (whole seconds, as ARM sends it), which azure-core's RetryPolicy waits for.
- Resource Graph's quota: 15 queries per 5-second window, announced in `x-ms-user-quota-remaining` and
  `x-ms-user-quota-resets-after`; a query past it answers 429.
- Time a request takes: ARM_SECONDS (50 ms: a quick GET, which favours ARM) and GRAPH_SECONDS (1 s for a page of a
  fleet query with its join, which favours ARM again). No real time passes.
One gate poll of a 1,000-cluster stage, and one fleet status (every cluster), each read both ways; the answers are
checked equal. The last line is one JSON object for 1,000 clusters (the gate poll of a 1,000-cluster stage, which at
1,000 clusters is also the fleet status): clusters, graph_requests, arm_requests, graph_seconds, arm_seconds and
ratio = arm_seconds / graph_seconds (target: at most 5 Resource Graph requests and a ratio of at least 100).

    .venv/bin/python benchmarks/fleet_reads.py
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the simulated fleet and the transport live with the tests

from fluxfleet.azure.arm import ArmReader  # noqa: E402
from fluxfleet.azure.fleet_graph import ClusterSnapshot, ClusterTarget, FleetGraphReader  # noqa: E402
from fluxfleet.azure.resource_graph import ResourceGraphReader  # noqa: E402
from fluxfleet.simulation import FakeClock  # noqa: E402
from tests.azure_transport import FakeCredential, ScriptedTransport  # noqa: E402
from tests.fluxfleet.azure.test_fleet_graph import Fleet, arm_fixture, by_name, graph_fixture, listed  # noqa: E402

ARM_BUCKET, ARM_REFILL_PER_SECOND = 250, 10.0
GRAPH_QUOTA, GRAPH_WINDOW_SECONDS = 15, 5.0
ARM_SECONDS, GRAPH_SECONDS = 0.05, 1.0
CLUSTERS_PER_SUBSCRIPTION = 1000
STAGE = 1000
AKS_EVERY = 10
GRAPH_PATH = "/providers/microsoft.resourcegraph/resources"


def subscription(number: int) -> str:
    return f"{number:08x}-0000-4000-8000-{number:012x}"


def simulated_fleet(clusters: int) -> tuple[Fleet, list[ClusterTarget]]:
    flux = listed("extensions_failing")[0]
    flux["properties"].update(provisioningState="Succeeded", currentVersion="1.14.1")
    configurations = [graph_fixture("GetFluxConfiguration"), listed("flux_configurations_failing")[0]]
    aks_body, arc_body = graph_fixture("ManagedClustersGet"), arm_fixture("connected_cluster_offline")
    arc_body["properties"]["connectivityStatus"] = "Connected"
    fleet, targets = Fleet(), []
    for index in range(clusters):
        kind = "aks" if index % AKS_EVERY == 0 else "arc"
        sub = subscription(index // CLUSTERS_PER_SUBSCRIPTION)
        target = ClusterTarget(sub, f"rg-stores-{index % 7}", f"store-{index:05d}", kind)
        fleet.add(target, aks_body if kind == "aks" else arc_body, [flux], configurations)
        targets.append(target)
    return fleet, targets


class SimulatedAzure(ScriptedTransport):
    """ARM and Resource Graph with their limits, on a simulated clock. Counts what each service was sent."""

    def __init__(self, fleet: Fleet, clock: FakeClock):
        super().__init__(self._answer)
        self.fleet, self.clock = fleet, clock
        self.graph = fleet.server()
        self.buckets: dict[str, tuple[float, float]] = {}  # subscription → (tokens, when counted)
        self.window: tuple[float, int] | None = None  # Resource Graph: (window start, queries in it)
        self.sent = {"arm": 0, "arm_throttled": 0, "graph": 0, "graph_throttled": 0}

    def now(self) -> float:
        return self.clock.now().timestamp()

    def sleep(self, duration: float) -> None:  # azure-core's RetryPolicy waits here (Retry-After)
        self.clock.sleep(duration)

    def _answer(self, request: Any) -> tuple[int, Any, dict[str, str]]:
        path = urlsplit(request.url).path.lower()
        if path == GRAPH_PATH:
            self.clock.advance(GRAPH_SECONDS)
            return self._graph(request)
        self.clock.advance(ARM_SECONDS)
        return self._arm(request, path.split("/")[2])

    def _arm(self, request: Any, sub: str) -> tuple[int, Any, dict[str, str]]:
        self.sent["arm"] += 1
        now = self.now()
        tokens, counted = self.buckets.get(sub, (float(ARM_BUCKET), now))
        tokens = min(float(ARM_BUCKET), tokens + (now - counted) * ARM_REFILL_PER_SECOND)
        if tokens < 1:
            self.buckets[sub] = (tokens, now)
            self.sent["arm_throttled"] += 1
            wait = math.ceil((1 - tokens) / ARM_REFILL_PER_SECOND)
            error = {"code": "SubscriptionRequestsThrottled", "message": "Number of read requests exceeded the limit"}
            return 429, {"error": error}, {"Retry-After": str(wait)}
        self.buckets[sub] = (tokens - 1, now)
        status, body, headers = self.fleet.respond_arm(request)
        return status, body, {**headers, "x-ms-ratelimit-remaining-subscription-reads": str(int(tokens - 1))}

    def _graph(self, request: Any) -> tuple[int, Any, dict[str, str]]:
        self.sent["graph"] += 1
        now = self.now()
        if self.window is None or now >= self.window[0] + GRAPH_WINDOW_SECONDS:
            self.window = (now, 0)
        start, used = self.window
        resets = _hh_mm_ss(start + GRAPH_WINDOW_SECONDS - now)
        if used >= GRAPH_QUOTA:
            self.sent["graph_throttled"] += 1
            quota = {"x-ms-user-quota-remaining": "0", "x-ms-user-quota-resets-after": resets}
            return 429, {"error": {"code": "RateLimiting", "message": "Please try again later"}}, quota
        self.window = (start, used + 1)
        status, body, headers = self.graph.respond(request)
        quota = {"x-ms-user-quota-remaining": str(GRAPH_QUOTA - used - 1), "x-ms-user-quota-resets-after": resets}
        return status, body, {**headers, **quota}


def _hh_mm_ss(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    return f"{int(seconds // 3600):02d}:{int(seconds % 3600 // 60):02d}:{seconds % 60:06.3f}"


def arm_reads(arm: ArmReader, targets: Sequence[ClusterTarget]) -> dict[ClusterTarget, ClusterSnapshot]:
    """Today's way: per cluster a GET of the cluster, a list of its extensions and a list of its configurations."""
    read = {}
    for t in targets:
        sub, ref = t.subscription_id, t.cluster_ref
        managed = arm.managed_cluster(sub, t.resource_group, t.name) if t.kind == "aks" else None
        connected = arm.connected_cluster(sub, t.resource_group, t.name) if t.kind == "arc" else None
        # Resource Graph rows carry no systemData: last_modified_at is left out of the comparison
        extensions = by_name([replace(e, last_modified_at=None) for e in arm.extensions(sub, ref)])
        configurations = by_name(arm.flux_configurations(sub, ref))
        read[t] = ClusterSnapshot(t, True, "arm", managed, connected, extensions, configurations)
    return read


def measure(fleet: Fleet, targets: Sequence[ClusterTarget]) -> dict[str, Any]:
    """One read of `targets` each way, on fresh limits and a fresh clock each: requests and simulated seconds."""
    clock = FakeClock()
    azure = SimulatedAzure(fleet, clock)
    graph = ResourceGraphReader(FakeCredential(), clock=clock, transport=azure)
    arm = ArmReader(FakeCredential(), transport=azure)
    began = clock.now()
    snapshot = FleetGraphReader(graph, arm, clock).read(targets)
    graph_seconds = (clock.now() - began).total_seconds()
    graph_sent = dict(azure.sent)

    clock = FakeClock()
    azure = SimulatedAzure(fleet, clock)
    arm = ArmReader(FakeCredential(), transport=azure)
    began = clock.now()
    by_arm = arm_reads(arm, targets)
    arm_seconds = (clock.now() - began).total_seconds()

    same = all(replace(snapshot.clusters[t], source="arm") == by_arm[t] for t in targets)
    assert same and not snapshot.failed and not snapshot.denied, "the two reads disagree"
    return {
        "clusters": len(targets),
        "graph_requests": graph_sent["graph"],
        "graph_throttled": graph_sent["graph_throttled"],
        "arm_requests": azure.sent["arm"],
        "arm_throttled": azure.sent["arm_throttled"],
        "graph_seconds": graph_seconds,
        "arm_seconds": arm_seconds,
        "ratio": arm_seconds / graph_seconds,
    }


def main() -> None:
    results = {}
    for clusters in (1000, 5000):
        fleet, targets = simulated_fleet(clusters)
        for what, chosen in (("gate poll of a 1,000-cluster stage", targets[:STAGE]), ("fleet status", targets)):
            result = results[clusters, what] = measure(fleet, chosen)
            print(
                f"{clusters:>5,} clusters, {what:<35}: Resource Graph {result['graph_requests']:>2} requests "
                f"({result['graph_throttled']} throttled) {result['graph_seconds']:>5.1f} s | ARM "
                f"{result['arm_requests']:>6,} requests ({result['arm_throttled']:,} throttled) "
                f"{result['arm_seconds']:>7.1f} s | ratio {result['ratio']:,.0f}"
            )
    stage = results[1000, "gate poll of a 1,000-cluster stage"]
    last = {key: stage[key] for key in ("clusters", "graph_requests", "arm_requests")}
    last |= {key: round(stage[key], 2) for key in ("graph_seconds", "arm_seconds", "ratio")}
    print(json.dumps(last))


if __name__ == "__main__":
    main()
