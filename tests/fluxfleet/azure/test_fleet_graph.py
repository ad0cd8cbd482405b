"""FleetGraphReader over the real azure-mgmt-resourcegraph client (and ArmReader's SDK clients for the fallback),
served through azure-core's transport: Resource Graph rows built from the official examples' bodies and the
project's failing-state fixtures, as the fleet query would answer them.

`Fleet` holds clusters as ARM has them. Its Resource Graph computes what `fleet_graph.fleet_query` asks for: the
target clusters' rows (only the properties the query picks), each with its extensions and Flux configurations as
`kubernetesconfigurationresources` stores them (an extension's properties in PascalCase), paged with skip tokens by
the tests' simulated service. Bodies come from tests/fixtures/resourcegraph (SOURCE.md) and tests/fixtures/arm.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import pytest

from fluxfleet.azure import fleet_graph
from fluxfleet.azure.arm import ArmReader
from fluxfleet.azure.fleet_graph import (
    CLUSTER_PROPERTIES,
    EXTENSION_PROPERTIES,
    EXTENSION_TYPE,
    FLUX_CONFIGURATION_TYPE,
    FLUX_PROPERTIES,
    ClusterSnapshot,
    ClusterTarget,
    FleetGraphReader,
    FleetSnapshot,
    confirm_flux,
    fleet_query,
)
from fluxfleet.azure.resource_graph import PAGE_SIZE, ResourceGraphReader, kql_string
from fluxfleet.azure.status import AzureError
from fluxfleet.simulation import FakeClock
from tests.azure_transport import FakeCredential, ScriptedTransport, example
from tests.conftest import ROOT
from tests.fluxfleet.azure.test_resource_graph import RESET_AFTER_2S, ResourceGraphServer, read_kql_string

GRAPH_FIXTURES = ROOT / "tests" / "fixtures" / "resourcegraph"
ARM_FIXTURES = ROOT / "tests" / "fixtures" / "arm"
SUB = "11111111-2222-3333-4444-555555555555"
OTHER_SUB = "99999999-8888-7777-6666-555555555555"
CONFIGURATIONS = "/providers/microsoft.kubernetesconfiguration/"
Answer = tuple[int, Any, dict[str, str]]


def graph_fixture(name: str, status: str = "200") -> Any:
    return copy.deepcopy(example(GRAPH_FIXTURES / f"{name}.json", status))


def arm_fixture(name: str) -> Any:
    return copy.deepcopy(example(ARM_FIXTURES / f"{name}.json"))


def listed(name: str) -> list[dict[str, Any]]:
    return arm_fixture(name)["value"]


AKS_BODIES = {
    "ManagedClustersGet": lambda: graph_fixture("ManagedClustersGet"),
    "managed_cluster_workload_identity": lambda: arm_fixture("managed_cluster_workload_identity"),
    "managed_cluster_service_principal": lambda: arm_fixture("managed_cluster_service_principal"),
}
ARC_BODIES = {
    "GetClusterExample": lambda: graph_fixture("GetClusterExample"),
    "connected_cluster_offline": lambda: arm_fixture("connected_cluster_offline"),
}


def official_extensions() -> list[dict[str, Any]]:
    created = graph_fixture("CreateExtension")
    created["name"] = "monitoring"  # both examples name theirs ClusterMonitor
    return [graph_fixture("GetExtension"), created]


def official_configurations() -> list[dict[str, Any]]:
    return [graph_fixture("GetFluxConfiguration"), *graph_fixture("ListFluxConfigurations")["value"]]


def aks(name: str = "aks-dev-weu", group: str = "rg-fleet-dev", sub: str = SUB) -> ClusterTarget:
    return ClusterTarget(sub, group, name, "aks")


def arc(name: str = "edge-store-001", group: str = "rg-edge", sub: str = SUB) -> ClusterTarget:
    return ClusterTarget(sub, group, name, "arc")


def subscription(number: int) -> str:
    return f"{number:08x}-0000-4000-8000-{number:012x}"


def one_line(message: str) -> str:
    assert message and "\n" not in message, message
    return message


# --------------------------------------------------------------------------------------------- the simulated fleet


def pascal(value: Any) -> Any:
    """A body as Resource Graph stores an extension's: every key PascalCase."""
    if isinstance(value, dict):
        return {key[:1].upper() + key[1:]: pascal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [pascal(item) for item in value]
    return value


@dataclass
class Cluster:
    """A cluster as ARM has it: its body, its extensions and its Flux configurations (bodies, ids under it)."""

    body: dict[str, Any]
    extensions: list[dict[str, Any]] = field(default_factory=list)
    configurations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.body["id"].lower()


def placed(target: ClusterTarget, body: dict[str, Any], extensions=(), configurations=()) -> Cluster:
    """The bodies moved to where `target` is (ids and name), everything else as the example has it."""
    body = {**copy.deepcopy(body), "id": target.resource_id, "name": target.name}

    def child(item: dict[str, Any], collection: str) -> dict[str, Any]:
        item = copy.deepcopy(item)
        item["id"] = f"{body['id']}/providers/Microsoft.KubernetesConfiguration/{collection}/{item['name']}"
        return item

    return Cluster(
        body,
        [child(e, "extensions") for e in extensions],
        [child(c, "fluxConfigurations") for c in configurations],
    )


def picks(properties: Mapping[str, Any], names: Sequence[str], both_cases: bool) -> dict[str, Any]:
    """What the query's `pack(...)` makes of a resource's properties."""
    spellings = [s for n in names for s in ((n, n[:1].upper() + n[1:]) if both_cases else (n,))]
    return {spelling: properties.get(spelling) for spelling in spellings}


def graph_row(cluster: Cluster) -> dict[str, Any]:
    """The row the fleet query answers for a cluster, computed from ARM's bodies as Resource Graph would."""
    body = cluster.body
    parts = body["id"].split("/")
    children = [
        {
            "id": e["id"],
            "name": e["name"],
            "type": EXTENSION_TYPE,
            "properties": picks(pascal(e["properties"]), EXTENSION_PROPERTIES, True),
        }
        for e in cluster.extensions
    ] + [
        {
            "id": c["id"],
            "name": c["name"],
            "type": FLUX_CONFIGURATION_TYPE,
            "properties": picks(c["properties"], FLUX_PROPERTIES, True),
        }
        for c in cluster.configurations
    ]
    return {
        "id": body["id"],
        "name": body["name"],
        "type": body["type"].lower(),
        "subscriptionId": parts[2].lower(),
        "resourceGroup": parts[4].lower(),
        "identity": body.get("identity"),
        "properties": picks(body.get("properties") or {}, CLUSTER_PROPERTIES, False),
        "children": children or None,  # leftouter: no child joined
    }


def ids_in(query: str) -> list[str]:
    """The cluster ids a fleet query asks for, read as KQL reads its literals."""
    rest = query.split("| where clusterId in (", 1)[1]
    ids: list[str] = []
    while rest.startswith("'"):
        value, end = read_kql_string(rest)
        ids.append(value)
        rest = rest[end:].removeprefix(", ")
    assert rest.startswith(")\n"), rest[:80]
    return ids


class FleetGraphServer(ResourceGraphServer):
    """The tests' Resource Graph, answering fleet queries: the rows of the clusters a query names."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.asked: dict[str, frozenset[str]] = {}  # query → the ids it names, read once

    def _typed(self, query: str, row: Mapping[str, Any]) -> bool:  # type: ignore[override]
        if "| where clusterId in (" not in query:
            return ResourceGraphServer._typed(query, row)
        if query not in self.asked:
            ids = ids_in(query)
            assert query.count(kql_string(ids[0])) == 2  # the same ids on both sides of the join
            self.asked[query] = frozenset(ids)
        return row["id"].lower() in self.asked[query] and ResourceGraphServer._typed(query, row)


class Fleet:
    """Clusters in ARM and in Resource Graph (by default both; Resource Graph may lag or hold an older state)."""

    def __init__(self) -> None:
        self.arm: dict[str, Cluster] = {}
        self.graph: dict[str, Cluster] = {}
        self.arm_failures: dict[str, Answer] = {}  # a path ARM answers with an error
        self.arm_paths: list[str] = []

    def add(self, target: ClusterTarget, body, extensions=(), configurations=(), *, graph=True, arm=True) -> Cluster:
        cluster = placed(target, body, extensions, configurations)
        if arm:
            self.arm[cluster.key] = cluster
        if graph:
            self.graph[cluster.key] = cluster
        return cluster

    def rows(self) -> list[dict[str, Any]]:
        return [graph_row(cluster) for cluster in self.graph.values()]

    def server(self, **options: Any) -> FleetGraphServer:
        return FleetGraphServer(self.rows(), **options)

    def respond_arm(self, request: Any) -> Answer:
        path = urlsplit(request.url).path.lower()
        self.arm_paths.append(path)
        if path in self.arm_failures:
            return self.arm_failures[path]
        cluster_id, _, collection = path.partition(CONFIGURATIONS)
        cluster = self.arm.get(cluster_id)
        if collection:
            found = {"extensions": cluster.extensions, "fluxconfigurations": cluster.configurations} if cluster else {}
            items = found.get(collection, [])
            return 200, {"value": items, "nextLink": None}, {}
        if cluster is None:
            return 404, {"error": {"code": "ResourceNotFound", "message": f"{path} was not found."}}, {}
        return 200, cluster.body, {}

    def arm_reader(self) -> ArmReader:
        return ArmReader(FakeCredential(), transport=ScriptedTransport(self.respond_arm), retry_total=0)

    def reader(self, server: ResourceGraphServer | None = None, clock: FakeClock | None = None) -> FleetGraphReader:
        clock = clock or FakeClock()
        graph = ResourceGraphReader(FakeCredential(), clock=clock, transport=(server or self.server()).transport())
        return FleetGraphReader(graph, self.arm_reader(), clock)


def as_arm_reads(fleet: Fleet, target: ClusterTarget) -> ClusterSnapshot:
    """What ArmReader reads of the cluster (ordered by name, as the fleet reader orders): the reference."""
    arm = fleet.arm_reader()
    sub, group, name = target.subscription_id, target.resource_group, target.name
    managed = arm.managed_cluster(sub, group, name) if target.kind == "aks" else None
    connected = arm.connected_cluster(sub, group, name) if target.kind == "arc" else None
    extensions = by_name(arm.extensions(sub, target.cluster_ref))
    configurations = by_name(arm.flux_configurations(sub, target.cluster_ref))
    return ClusterSnapshot(target, True, "arm", managed, connected, extensions, configurations)


def by_name(items: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(sorted(items, key=lambda item: (item.name.lower(), item.name)))


def without_system_data(extensions: Iterable[Any]) -> tuple[Any, ...]:
    """The fleet query asks for no systemData: the one field a batch read does not give."""
    return tuple(replace(extension, last_modified_at=None) for extension in extensions)


# --------------------------------------------------------------------------------------------- same body, same result


@pytest.mark.parametrize("body", sorted(AKS_BODIES))
def test_an_aks_row_reads_as_arm_reads_the_same_bodies(body):
    fleet, target = Fleet(), aks()
    fleet.add(target, AKS_BODIES[body](), listed("extensions_failing"), listed("flux_configurations_failing"))
    snapshot = fleet.reader().read([target])
    assert snapshot.failed == {} and snapshot.denied == () and fleet.arm_paths == []  # no ARM read
    got, reference = snapshot.clusters[target], as_arm_reads(fleet, target)
    assert (got.found, got.source, got.target, got.connected) == (True, "graph", target, None)
    # the fleet query leaves the node pools out (the gate reads them through ARM, after an update)
    assert got.managed == replace(reference.managed, pools=()) and got.managed is not None
    assert got.extensions == without_system_data(reference.extensions)
    assert got.flux_configurations == reference.flux_configurations


@pytest.mark.parametrize("body", sorted(ARC_BODIES))
def test_an_arc_row_reads_as_arm_reads_the_same_bodies(body):
    fleet, target = Fleet(), arc()
    fleet.add(target, ARC_BODIES[body](), official_extensions(), official_configurations())
    got = fleet.reader().read([target]).clusters[target]
    reference = as_arm_reads(fleet, target)
    assert (got.found, got.source, got.managed) == (True, "graph", None)
    assert got.connected == reference.connected and got.connected is not None
    assert got.connected.agent_version == reference.connected.agent_version is not None
    assert got.extensions == without_system_data(reference.extensions)
    assert got.flux_configurations == reference.flux_configurations
    assert len(got.flux_configurations) == 3  # GetFluxConfiguration and both ListFluxConfigurations items


def test_what_a_cluster_row_carries_for_the_gate_and_status():
    fleet, target = Fleet(), aks()
    children = listed("extensions_failing"), listed("flux_configurations_failing")
    fleet.add(target, AKS_BODIES["ManagedClustersGet"](), *children)
    got = fleet.reader().read([target]).clusters[target]
    assert (got.managed.provisioning_state, got.managed.kubernetes_version) == ("Succeeded", "1.9.6")
    flux = got.flux_extension  # microsoft.flux among the extensions; the others are kept
    assert flux is not None and (flux.name, flux.provisioning_state) == ("flux", "Creating")
    assert [e.name for e in got.extensions] == ["dapr", "flux"]
    dapr = got.extensions[0]
    assert dapr.provisioning_state == "Failed" and "Helm install of release dapr timed out" in dapr.messages[0]
    apps = {c.name: c for c in got.flux_configurations}["apps"]
    assert (apps.provisioning_state, apps.compliance_state) == ("Succeeded", "Non-Compliant")
    assert apps.synced_sha and apps.source_updated_at and apps.status_updated_at
    failing = [o for o in apps.objects if o.compliance_state == "Non-Compliant"]
    assert failing and all(o.message for o in failing)  # the failing objects' messages


def test_an_arc_row_carries_connectivity_and_the_agents():
    fleet, target = Fleet(), arc()
    fleet.add(target, ARC_BODIES["connected_cluster_offline"]())
    got = fleet.reader().read([target]).clusters[target]
    assert got.connected.connectivity_status == "Offline" and got.connected.last_connectivity_time is not None
    assert (got.connected.agent_version, got.connected.agent_state) == ("1.15.3", "Succeeded")
    assert got.extensions == () and got.flux_configurations == () and got.flux_extension is None


def test_the_flux_extension_is_found_whatever_the_case_of_its_type():
    extension = listed("extensions_failing")[0]
    extension["properties"]["extensionType"] = "Microsoft.Flux"
    fleet, target = Fleet(), aks()
    fleet.add(target, AKS_BODIES["ManagedClustersGet"](), [*official_extensions(), extension])
    got = fleet.reader().read([target]).clusters[target]
    assert got.flux_extension is not None and got.flux_extension.name == "flux" and len(got.extensions) == 3


def test_a_row_only_carries_what_the_mapping_reads():
    """The query picks few properties (pages stay small): what it leaves out no mapping function reads."""
    fleet, target = Fleet(), aks()
    fleet.add(target, AKS_BODIES["ManagedClustersGet"](), official_extensions(), official_configurations())
    [row] = fleet.rows()
    assert "agentPoolProfiles" not in row["properties"]
    assert all("kustomizations" not in child["properties"] for child in row["children"])
    # and yet the typed results are ArmReader's (the tests above): nothing the mapping reads was left out


# --------------------------------------------------------------------------------------------- batching and paging


def test_many_clusters_in_many_subscriptions_cost_a_page_of_requests():
    fleet = Fleet()
    targets = []
    for index in range(1000):
        kind = aks if index % 2 else arc
        target = kind(f"cluster-{index:04d}", f"rg-fleet-{index % 7}", subscription(index % 20))
        body = AKS_BODIES["managed_cluster_workload_identity"]() if index % 2 else ARC_BODIES["GetClusterExample"]()
        fleet.add(target, body, listed("extensions_failing")[:1], listed("flux_configurations_failing"))
        targets.append(target)
    server = fleet.server()
    snapshot = fleet.reader(server).read(targets)
    assert len(snapshot.clusters) == 1000 and snapshot.failed == {} and snapshot.denied == ()
    assert all(s.source == "graph" and len(s.flux_configurations) == 2 for s in snapshot.clusters.values())
    assert snapshot.requests <= math.ceil(1000 / PAGE_SIZE) + 1  # the pages, and one check of the subscriptions
    [query] = server.queries()
    assert sorted(query["subscriptions"]) == sorted(subscription(n) for n in range(20))
    assert fleet.arm_paths == []  # nothing read cluster by cluster


def test_pages_are_followed_by_their_skip_tokens():
    fleet = Fleet()
    targets = [aks(f"aks-{n}") for n in range(5)]
    for target in targets:
        fleet.add(target, AKS_BODIES["ManagedClustersGet"](), configurations=listed("flux_configurations_failing"))
    server = fleet.server(page_size=2)
    snapshot = fleet.reader(server).read(targets)
    assert set(snapshot.clusters) == set(targets)
    tokens = [query["options"].get("$skipToken") for query in server.queries()]
    assert len(tokens) == 3 and tokens[0] is None and all(tokens[1:])
    assert len({query["query"] for query in server.queries()}) == 1  # the same query on every page
    assert snapshot.requests == 4


def test_targets_past_a_query_s_bounds_go_in_more_queries_with_one_subscription_check(monkeypatch):
    monkeypatch.setattr(fleet_graph, "TARGETS_PER_QUERY", 30)
    monkeypatch.setattr(fleet_graph, "QUERY_CHARS_MAX", len(fleet_query([])) + 2 * 20 * 160)
    fleet = Fleet()
    targets = [aks(f"aks-{n:03d}", sub=subscription(n % 3)) for n in range(100)]
    for target in targets:
        fleet.add(target, AKS_BODIES["ManagedClustersGet"]())
    server = fleet.server()
    snapshot = fleet.reader(server).read(targets)
    assert set(snapshot.clusters) == set(targets)
    queries = [q["query"] for q in server.queries()]
    asked = [ids_in(q) for q in queries]
    assert sorted(i for ids in asked for i in ids) == sorted(t.resource_id.lower() for t in targets)  # each once
    assert all(len(ids) <= 30 and len(q) <= fleet_graph.QUERY_CHARS_MAX for ids, q in zip(asked, queries, strict=True))
    assert len(queries) == 5 and snapshot.requests == len(queries) + 1


def test_the_same_cluster_named_in_another_case_is_one_cluster_read_once():
    fleet, target = Fleet(), aks()
    fleet.add(target, AKS_BODIES["ManagedClustersGet"](), configurations=listed("flux_configurations_failing"))
    shouting = ClusterTarget(SUB, "RG-FLEET-DEV", "AKS-DEV-WEU", "aks")
    server = fleet.server()
    snapshot = fleet.reader(server).read([target, shouting])
    assert ids_in(server.queries()[0]["query"]) == [target.resource_id.lower()]
    assert snapshot.clusters[shouting].target is shouting and snapshot.clusters[target].target is target
    assert snapshot.clusters[shouting].flux_configurations == snapshot.clusters[target].flux_configurations


def test_no_target_is_no_request():
    fleet = Fleet()
    server = fleet.server()
    snapshot = fleet.reader(server).read([])
    assert snapshot == FleetSnapshot({}, (), {}, 0, FakeClock().now()) and server.bodies == []


# --------------------------------------------------------------------------------------------- throttling, failures


def test_a_throttled_read_waits_for_the_quota_on_the_clock_then_answers():
    fleet, target = Fleet(), aks()
    fleet.add(target, AKS_BODIES["ManagedClustersGet"]())
    throttled = (429, graph_fixture("RateLimiting", "429"), RESET_AFTER_2S)
    clock = FakeClock()
    snapshot = fleet.reader(fleet.server(interruptions=[throttled]), clock).read([target])
    assert snapshot.clusters[target].found and clock.sleeps == [2.0]  # the quota header said 2 s: no real sleep
    assert snapshot.requests == 3 and snapshot.read_at == FakeClock().now()  # when the read began


def test_a_subscription_the_identity_cannot_read_is_denied_and_the_others_answered():
    fleet = Fleet()
    readable, hidden = aks(sub=SUB), aks(sub=OTHER_SUB)
    for target in (readable, hidden):
        fleet.add(target, AKS_BODIES["ManagedClustersGet"]())
    snapshot = fleet.reader(fleet.server(hidden=[OTHER_SUB])).read([readable, hidden])
    assert list(snapshot.clusters) == [readable] and snapshot.failed == {}
    assert [d.subscription_id for d in snapshot.denied] == [OTHER_SUB]
    assert fleet.arm_paths == []  # a denied cluster is not taken for a new one


def test_resource_graph_unreadable_is_one_line():
    fleet = Fleet()
    bad = {"error": {"code": "BadRequest", "message": "x", "details": [{"code": "InvalidQuery", "message": "no"}]}}
    with pytest.raises(AzureError) as error:
        fleet.reader(fleet.server(interruptions=[(400, bad, {})])).read([aks()])
    assert one_line(str(error.value)).startswith("cannot query Azure Resource Graph: 400 BadRequest")


def test_a_row_that_does_not_fit_fails_that_cluster_only():
    fleet, good, broken = Fleet(), aks("good"), aks("broken")
    for target in (good, broken):
        fleet.add(target, AKS_BODIES["ManagedClustersGet"]())
    rows = fleet.rows()
    rows[1]["children"] = [{"id": "x", "name": "flux", "type": EXTENSION_TYPE, "properties": "Succeeded"}]
    snapshot = fleet.reader(FleetGraphServer(rows)).read([good, broken])
    assert list(snapshot.clusters) == [good]
    assert "does not fit the API" in one_line(snapshot.failed[broken])


# --------------------------------------------------------------------------------------------- lag: ARM fallback


def test_a_cluster_resource_graph_does_not_know_yet_is_read_through_arm():
    fleet, known, new = Fleet(), aks("known"), arc("brand-new")
    fleet.add(known, AKS_BODIES["ManagedClustersGet"]())
    fleet.add(new, ARC_BODIES["GetClusterExample"](), official_extensions(), official_configurations(), graph=False)
    snapshot = fleet.reader().read([known, new])
    got = snapshot.clusters[new]
    assert (got.found, got.source) == (True, "arm") and snapshot.clusters[known].source == "graph"
    assert got == replace(as_arm_reads(fleet, new), source="arm")
    assert len(fleet.arm_paths) == 2 * 3  # the fallback's GET and two lists; the reference's the same


def test_without_arm_a_cluster_resource_graph_does_not_know_is_left_to_the_caller():
    """Preflight reads a cluster through ARM only once its resource provider is known to be registered."""
    fleet, known, new = Fleet(), aks("known"), arc("brand-new")
    fleet.add(known, AKS_BODIES["ManagedClustersGet"]())
    fleet.add(new, ARC_BODIES["GetClusterExample"](), graph=False)
    clock = FakeClock()
    graph = ResourceGraphReader(FakeCredential(), clock=clock, transport=fleet.server().transport())
    snapshot = FleetGraphReader(graph, None, clock).read([known, new])
    assert set(snapshot.clusters) == {known} and snapshot.failed == {} and fleet.arm_paths == []


def test_a_cluster_nowhere_is_not_found():
    fleet, gone = Fleet(), aks("gone")
    snapshot = fleet.reader().read([gone])
    assert snapshot.clusters[gone] == ClusterSnapshot(gone, found=False, source="arm")
    assert len(fleet.arm_paths) == 1  # no list calls under a cluster that is not there


def test_a_failed_arm_fallback_lands_in_failed_in_one_line():
    fleet, new = Fleet(), aks("brand-new")
    fleet.add(new, AKS_BODIES["ManagedClustersGet"](), graph=False)
    forbidden = {"error": {"code": "AuthorizationFailed", "message": "The client does not have authorization"}}
    fleet.arm_failures[new.resource_id.lower() + CONFIGURATIONS + "fluxconfigurations"] = (403, forbidden, {})
    snapshot = fleet.reader().read([new])
    assert new not in snapshot.clusters
    message = one_line(snapshot.failed[new])
    assert message.startswith("cannot read ") and "403 AuthorizationFailed" in message and "Reader role" in message


# --------------------------------------------------------------------------------------------- freshness


def test_a_stale_batch_verdict_is_confirmed_by_one_arm_read():
    """Resource Graph still holds yesterday's Non-Compliant; ARM already has the fix: the confirmation decides."""
    fleet, target = Fleet(), aks()
    compliant = graph_fixture("GetFluxConfiguration")
    compliant["name"] = "apps"
    fleet.add(target, AKS_BODIES["ManagedClustersGet"](), configurations=[compliant])
    fleet.graph[target.resource_id.lower()] = placed(
        target, AKS_BODIES["ManagedClustersGet"](), configurations=listed("flux_configurations_failing")[:1]
    )
    reader = fleet.reader()
    batch = {c.name: c for c in reader.read([target]).clusters[target].flux_configurations}
    assert batch["apps"].compliance_state == "Non-Compliant" and fleet.arm_paths == []
    confirmed = {c.name: c for c in confirm_flux(fleet.arm_reader(), target)}
    assert confirmed["apps"].compliant and len(fleet.arm_paths) == 1


# --------------------------------------------------------------------------------------------- the query is safe


@pytest.mark.parametrize(
    "group",
    ["rg-it's", "rg') | project secrets //", "rg\\", 'rg"x', "rg\\'); resources //"],
)
def test_names_cannot_break_out_of_the_query(group):
    target = aks(group=group)
    query = fleet_query([target.resource_id])
    assert ids_in(query) == [target.resource_id.lower()]  # read back whole, as one literal
    assert query.count("\n| ") == fleet_query(["x"]).count("\n| ") and query.endswith("| order by id asc")
    fleet = Fleet()
    fleet.add(target, AKS_BODIES["ManagedClustersGet"]())
    assert fleet.reader().read([target]).clusters[target].found


def test_a_name_no_literal_can_hold_fails_that_target_without_a_request():
    fleet, bad, good = Fleet(), aks(name="aks\x1b[2J"), aks()
    fleet.add(good, AKS_BODIES["ManagedClustersGet"]())
    server = fleet.server()
    snapshot = fleet.reader(server).read([bad, good])
    message = one_line(snapshot.failed[bad])
    assert list(snapshot.clusters) == [good] and "cannot be part of a KQL string" in message
    assert "\x1b" not in message and "aks\\x1b[2J" in message  # quoted, never sent to the terminal raw
    assert all(bad.name.lower() not in q["query"] for q in server.queries())


def test_a_target_of_no_known_kind_fails_in_one_line():
    fleet, odd = Fleet(), ClusterTarget(SUB, "rg", "eks-1", "eks")
    snapshot = fleet.reader().read([odd])
    assert snapshot.clusters == {} and "neither 'aks' nor 'arc'" in one_line(snapshot.failed[odd])


def test_the_query_joins_once_and_projects_the_id_for_paging():
    query = fleet_query([aks().resource_id, arc().resource_id])
    assert query.count("| join ") == 1 and "join kind=leftouter" in query  # one cross-table join
    assert "| project id, name, type, subscriptionId, resourceGroup, identity, properties, children" in query
    assert query.startswith("resources\n") and "kubernetesconfigurationresources" in query
    assert "let " not in query and "bag_pack" not in query  # neither is sure to exist in Resource Graph's KQL
