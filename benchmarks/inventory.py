"""Benchmark: `fluxfleet inventory` over 5,000 simulated clusters in 20 subscriptions, against 5,000 stack files.

The clusters are served through azure-core's transport by the simulated Resource Graph of the tests (pages of
1,000 rows, skip tokens), so the real azure-mgmt-resourcegraph client and its pipeline run in the loop. The stack
files are generated into a temporary directory: most name their cluster where it is, some a cluster that moved to
another resource group, some a cluster that is gone (each of those confirmed by a GET through the real ArmReader,
which ARM answers 404); some clusters have no stack (new members). Prints the figures; the last line is one JSON
object with clusters, subscriptions, requests, seconds (target: ≤ 10 Resource Graph requests).

    .venv/bin/python benchmarks/inventory.py [CLUSTERS] [SUBSCRIPTIONS]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the simulated service and the transport live with the tests

from fluxfleet.azure.arm import ArmReader  # noqa: E402
from fluxfleet.azure.resource_graph import ResourceGraphReader  # noqa: E402
from fluxfleet.inventory import load_stacks, take_inventory  # noqa: E402
from fluxfleet.inventory_report import render  # noqa: E402
from fluxfleet.simulation import FakeClock  # noqa: E402
from modules.spec.selection import parse_selection  # noqa: E402
from tests.azure_transport import FakeCredential, ScriptedTransport  # noqa: E402
from tests.fluxfleet.azure.test_resource_graph import ResourceGraphServer  # noqa: E402

SELECTION = "tag:fleet=stores"
NEW_EVERY, MOVED_EVERY, AKS_EVERY = 50, 50, 10  # 2% new members, 2% moved, 10% AKS
ARC_TYPE, AKS_TYPE = "Microsoft.Kubernetes/connectedClusters", "Microsoft.ContainerService/managedClusters"


def subscription(number: int) -> str:
    return f"{number:08x}-0000-4000-8000-{number:012x}"


def row(index: int, subscriptions: int) -> dict:
    sub = subscription(index % subscriptions)
    aks = index % AKS_EVERY == 0
    name, group = f"store-{index:05d}", f"rg-stores-{index % 7}"
    provider = AKS_TYPE if aks else ARC_TYPE
    return {
        "id": f"/subscriptions/{sub}/resourceGroups/{group}/providers/{provider}/{name}",
        "name": name,
        "type": provider.lower(),
        "subscriptionId": sub,
        "resourceGroup": group,
        "location": "westeurope",
        "tags": {"fleet": "stores", "store": str(index)},
        "selected": True,
    }


def stack_file(index: int, subscriptions: int, moved: bool) -> str:
    sub = subscription(index % subscriptions)
    group = f"rg-stores-{(index + (1 if moved else 0)) % 7}"
    lines = [
        "config:",
        "  fluxfleet:cluster:",
        f"    kind: {'aks' if index % AKS_EVERY == 0 else 'arc'}",
        f"    name: store-{index:05d}",
        f"    resourceGroup: {group}",
        f"    subscriptionId: {sub}",
    ]
    if index % AKS_EVERY == 0:
        lines += [
            "    location: westeurope",
            "    nodePools: [{name: system, vmSize: Standard_D4s_v5, count: 1, mode: System}]",
        ]
    return "\n".join(lines) + "\n"


def generate(directory: Path, clusters: int, subscriptions: int) -> dict[str, int]:
    """As many stack files as clusters: one per cluster but the new members', plus as many for clusters that are
    gone; every MOVED_EVERY-th names the wrong resource group."""
    counts = {"new": 0, "moved": 0, "gone": 0}
    for index in range(clusters):
        if index % NEW_EVERY == 1:
            counts["new"] += 1
            continue
        moved = index % MOVED_EVERY == 2
        counts["moved"] += moved
        (directory / f"Pulumi.store-{index:05d}.yaml").write_text(stack_file(index, subscriptions, moved))
    for index in range(clusters, clusters + counts["new"]):  # clusters deleted since their stack was written
        counts["gone"] += 1
        (directory / f"Pulumi.store-{index:05d}.yaml").write_text(stack_file(index, subscriptions, False))
    return counts


def main() -> None:
    clusters = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    subscriptions = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    server = ResourceGraphServer(row(index, subscriptions) for index in range(clusters))
    reader = ResourceGraphReader(FakeCredential(), clock=FakeClock(), transport=server.transport())
    arm = ScriptedTransport(lambda request: (404, {"error": {"code": "ResourceNotFound", "message": "not found"}}, {}))
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        expected = generate(directory, clusters, subscriptions)
        stack_count = len(list(directory.glob("Pulumi.*.yaml")))
        start = time.perf_counter()
        stacks = load_stacks(directory, None, lambda path: path.name)
        loaded = time.perf_counter()
        scope = tuple(sorted({stack.subscription_id for stack in stacks}))
        selection = parse_selection(SELECTION)
        result = take_inventory(
            reader,
            selection,
            stacks,
            scope,
            lambda path: path.name,
            directory,
            ArmReader(FakeCredential(), transport=arm),
        )
        compared = time.perf_counter()
        report = render(result, "json")
        seconds = time.perf_counter() - start
    found = {"new": len(result.new), "moved": len(result.moved), "gone": len(result.gone)}
    if found != expected or len(result.in_step) != stack_count - expected["moved"] - expected["gone"]:
        raise SystemExit(f"the inventory found {found}, expected {expected}")
    pages = server.queries()
    print(f"{clusters} clusters in {subscriptions} subscriptions; {stack_count} stack files")
    print(
        f"{result.requests} Resource Graph requests ({len(server.bodies) - len(pages)} visibility check, "
        f"{len(pages)} pages of up to 1,000 rows, {max(len(b['subscriptions']) for b in pages)} subscriptions each)"
    )
    print(f"{len(arm.requests)} ARM GETs, one per gone or moved stack, to confirm it")
    print(
        f"found {len(result.in_step)} in step, {found['new']} new, {found['moved']} moved, {found['gone']} gone; "
        f"JSON report {len(report):,} bytes"
    )
    print(
        f"{seconds:.2f} s: reading the stack files {loaded - start:.2f} s, querying and comparing "
        f"{compared - loaded:.2f} s, the report {seconds - (compared - start):.2f} s"
    )
    print(
        json.dumps(
            {
                "clusters": clusters,
                "subscriptions": subscriptions,
                "requests": result.requests,
                "seconds": round(seconds, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
