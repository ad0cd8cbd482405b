"""The journeys' simulated Azure answers as Azure does: read through fluxfleet's real readers (ArmReader,
ResourceGraphReader, FleetGraphReader, the inventory's query), its ARM and Resource Graph answers agree, what is gone
is not found, what may not be read is denied, and the inventory's selection is evaluated as KQL would."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from fluxfleet.azure.arm import ArmReader
from fluxfleet.azure.fleet_graph import ClusterTarget, FleetGraphReader
from fluxfleet.azure.resource_graph import ResourceGraphReader
from fluxfleet.azure.status import AccessDenied
from fluxfleet.inventory import cluster_query
from modules.cluster_ref import ClusterRef
from modules.spec.selection import parse_selection
from tests.azure_transport import FakeCredential, ScriptedTransport
from tests.journeys.world import World, responder

SUB = "8f5b2a4c-6d1e-4f3a-9b7c-2e8d0a1f3c5b"
DENIED_SUB = "2c9d7e1f-4a6b-4c8d-9e0f-1a2b3c4d5e6f"
GITOPS_DEMO = {
    "namespace": "gitops-demo",
    "scope": "cluster",
    "url": "https://github.com/fluxcd/flux2-kustomize-helm-example",
    "ref": {"tag": "v2.0.0"},
    "kustomizations": {"apps": "./apps/staging", "infra": "./infrastructure"},
    "compliance": "Non-Compliant",
    "message": "kustomize build failed at v2.0.0: accumulating resources",
}


@pytest.fixture
def world(tmp_path: Path) -> World:
    world = World(tmp_path / "azure.json")
    flux = {"extension": {"version": "1.23.0"}, "configurations": {"gitops-demo": GITOPS_DEMO}}
    world.write(
        {
            "subscriptions": {
                SUB: {
                    "clusters": {
                        "rg-stores/store-1": {
                            "kind": "arc",
                            "location": "westeurope",
                            "tags": {"fleet": "stores"},
                            "connected": True,
                            "flux": flux,
                        },
                        "rg-stores/store-2": {
                            "kind": "arc",
                            "location": "eastus",
                            "tags": {"fleet": "labs"},
                            "connected": True,
                            "flux": None,
                            "readable": False,
                        },
                        "rg-fleet-dev/aks-dev": {
                            "kind": "aks",
                            "location": "westeurope",
                            "tags": {"fleet": "stores"},
                            "flux": flux,
                        },
                    }
                },
                DENIED_SUB: {"readable": False, "clusters": {}},
            }
        }
    )
    return world


def readers(world: World) -> tuple[ArmReader, ResourceGraphReader]:
    options = {"transport": ScriptedTransport(responder(world)), "retry_total": 0}
    return ArmReader(FakeCredential(), **options), ResourceGraphReader(FakeCredential(), **options)


def test_arm_and_resource_graph_read_a_cluster_and_its_flux_alike(world):
    arm, graph = readers(world)
    targets = [ClusterTarget(SUB, "rg-stores", "store-1", "arc"), ClusterTarget(SUB, "rg-fleet-dev", "aks-dev", "aks")]

    snapshot = FleetGraphReader(graph, None).read(targets)

    for target in targets:
        batch = snapshot.clusters[target]
        ref = target.cluster_ref
        [configuration] = arm.flux_configurations(SUB, ref)
        [extension] = arm.extensions(SUB, ref)
        assert batch.source == "graph"
        # what differs between two reads is the time of each (the Flux agent reports continuously), and what
        # Resource Graph rows do not carry (systemData)
        assert [replace(c, status_updated_at=None) for c in batch.flux_configurations] == [
            replace(configuration, status_updated_at=None)
        ]
        assert batch.extensions == (replace(extension, last_modified_at=None),)
        assert configuration.compliance_state == "Non-Compliant" and configuration.synced_ref == "v2.0.0"
        assert extension.extension_type == "microsoft.flux" and extension.version == "1.23.0"
    # what the fleet query leaves out, when it answers: the node pools (the gate reads them through ARM)
    assert replace(snapshot.clusters[targets[1]].managed, pools=()) == replace(
        arm.managed_cluster(SUB, "rg-fleet-dev", "aks-dev"), pools=()
    )
    connected = arm.connected_cluster(SUB, "rg-stores", "store-1")
    assert replace(snapshot.clusters[targets[0]].connected, last_connectivity_time=None) == replace(
        connected, last_connectivity_time=None
    )


def test_what_is_gone_is_not_found_and_what_may_not_be_read_is_denied(world):
    arm, graph = readers(world)

    assert arm.connected_cluster(SUB, "rg-stores", "store-9") is None  # ARM's 404
    assert arm.managed_cluster(SUB, "rg-stores", "store-1") is None  # another kind of resource by that name
    with pytest.raises(AccessDenied, match="403 AuthorizationFailed"):
        arm.connected_cluster(SUB, "rg-stores", "store-2")
    with pytest.raises(AccessDenied, match="403 AuthorizationFailed"):
        arm.flux_configurations(DENIED_SUB, ClusterRef.arc("store-3", "rg-stores"))

    result = graph.query(cluster_query(parse_selection("kind:arc")), [SUB, DENIED_SUB])
    assert [row["name"] for row in result.rows] == ["store-1"]  # a cluster it may not read is left out
    assert [denied.subscription_id for denied in result.denied] == [DENIED_SUB]  # and so is a subscription


@pytest.mark.parametrize(
    ("selection", "selected"),
    [
        ("kind:arc", {"store-1", "store-2"}),
        ("tag:fleet=stores", {"store-1", "aks-dev"}),
        ("tag:fleet=stores kind:aks", {"aks-dev"}),
        ("rg:RG-STORES location:westeurope", {"store-1"}),
        ("rg:rg-* tag:fleet=st*", {"store-1", "aks-dev"}),
        ("location:eastus location:westeurope tag:fleet=labs", {"store-2"}),
        ("tag:fleet=none", set()),
    ],
)
def test_the_inventory_query_selects_as_kql_would(world, selection, selected):
    with world.changing() as state:
        state["subscriptions"][SUB]["clusters"]["rg-stores/store-2"]["readable"] = True
    _, graph = readers(world)
    parsed = parse_selection(selection)

    rows = graph.query(cluster_query(parsed), [SUB]).rows

    assert {row["name"] for row in rows if row["selected"]} == selected
    kinds = {"arc": "microsoft.kubernetes/connectedclusters", "aks": "microsoft.containerservice/managedclusters"}
    assert {row["type"] for row in rows} == {kinds[kind] for kind in parsed.selected_kinds}
