"""`fluxfleet inventory`: clusters from Resource Graph against stack files. The comparison on its own (in step, new,
moved, gone, unchecked, unconfirmed), the names new members get, the stack files --write creates and --prune deletes,
and the command line end to end over the real Resource Graph client and a simulated service whose rows are built
from the official ARM bodies of an AKS and an Arc cluster (tests/fixtures/resourcegraph/), the real ArmReader that
confirms a gone or moved stack (ARM's error bodies as tests/fluxfleet/azure/test_arm.py has them), and the scripted
`pulumi` that says what a pruned stack left behind."""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
from azure.core.exceptions import ServiceRequestError
from typer.testing import CliRunner

import fluxfleet.azure.arm as arm
import fluxfleet.azure.resource_graph as resource_graph
import fluxfleet.clock as clock_module
import fluxfleet.inventory as inventory_module
from fluxfleet.azure.access import no_subscription
from fluxfleet.azure.arm import ArmReader
from fluxfleet.azure.resource_graph import DeniedSubscription, ResourceGraphReader
from fluxfleet.cli import app
from fluxfleet.inventory import (
    Cluster,
    StackCluster,
    cluster_query,
    clusters_from_rows,
    compare,
    confirm_gone,
    load_stacks,
    prune_gone,
    stack_file_text,
    stack_name_of,
    write_members,
)
from fluxfleet.inventory_report import render
from fluxfleet.plan import plan_fleet
from fluxfleet.simulation import FakeClock
from modules.spec import load_stack_file
from modules.spec.selection import parse_selection
from tests.azure_transport import FakeCredential, example
from tests.conftest import ROOT
from tests.fluxfleet.azure.test_arm import AUTHORIZATION_FAILED, NOT_FOUND, JwtCredential, RecordingTransport
from tests.fluxfleet.azure.test_resource_graph import FIXTURES, ResourceGraphServer

SUB_A = "00000000-0000-0000-0000-00000000000a"
SUB_B = "00000000-0000-0000-0000-00000000000b"
SUB_DENIED = "00000000-0000-0000-0000-0000000000dd"
SCHEMA = json.loads((ROOT / "schemas" / "inventory.schema.json").read_text())
ARC_BODY = example(FIXTURES / "GetClusterExample.json")
AKS_BODY = example(FIXTURES / "ManagedClustersGet.json")
STORES = {"fleet": "stores"}
TODAY = datetime(2026, 11, 29, 9, 30, tzinfo=UTC)


# --------------------------------------------------------------------------------------------- Azure's side


def row(
    kind: str, name: str, resource_group: str, subscription: str = SUB_A, tags: dict | None = None, selected=True
) -> dict[str, Any]:
    """A row of the inventory's query as Resource Graph answers it: the official ARM body of a cluster of that
    kind (id, type, location, tags as ARM has them) at another name and place, with Resource Graph's columns."""
    body = ARC_BODY if kind == "arc" else AKS_BODY
    provider = body["id"].split("/providers/", 1)[1].rsplit("/", 1)[0]
    return {
        "id": f"/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/{provider}/{name}",
        "name": name,
        "type": body["type"],  # as ARM spells it; Resource Graph answers it in lower case (both are read)
        "subscriptionId": subscription,
        "resourceGroup": resource_group.lower(),  # Resource Graph's column is lower case; the id keeps the case
        "location": body["location"],  # the Arc example says "East US", the AKS one "location1"
        "tags": body.get("tags") if tags is None else tags,
        "selected": selected,
    }


def cluster_id(kind: str, name: str, resource_group: str, subscription: str = SUB_A) -> str:
    provider = (
        "Microsoft.Kubernetes/connectedClusters" if kind == "arc" else "Microsoft.ContainerService/managedClusters"
    )
    return f"/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/{provider}/{name}"


def cluster(kind: str, name: str, resource_group: str, subscription: str = SUB_A, selected=True) -> Cluster:
    [found] = clusters_from_rows([row(kind, name, resource_group, subscription, selected=selected)])
    return found


# --------------------------------------------------------------------------------------------- the stacks' side


def write(directory: Path, relative: str, text: str) -> Path:
    path = directory / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def arc_stack(directory: Path, stack: str, name: str, resource_group: str, subscription: str | None = SUB_A) -> Path:
    line = f"\n    subscriptionId: {subscription}" if subscription else ""
    return write(
        directory,
        f"Pulumi.{stack}.yaml",
        f"config:\n  fluxfleet:cluster:\n    kind: arc\n    name: {name}\n    resourceGroup: {resource_group}{line}\n",
    )


def aks_stack(directory: Path, stack: str, name: str, resource_group: str, tags: dict | None = None) -> Path:
    tag_line = f"\n    tags: {json.dumps(tags)}" if tags is not None else ""
    return write(
        directory,
        f"Pulumi.{stack}.yaml",
        f"""\
config:
  fluxfleet:cluster:
    kind: aks
    name: {name}
    resourceGroup: {resource_group}
    location: westeurope
    subscriptionId: {SUB_A}
    nodePools: [{{name: system, vmSize: Standard_D4s_v5, count: 1, mode: System}}]{tag_line}
""",
    )


def stack(
    name: str,
    kind: str = "arc",
    resource_group: str = "rg-stores-weu",
    subscription: str = SUB_A,
    cluster_name: str | None = None,
    location: str | None = None,
    tags: dict | None = None,
) -> StackCluster:
    path = Path(f"stacks/Pulumi.{name}.yaml")
    return StackCluster(name, str(path), path, kind, cluster_name or name, resource_group, subscription, location, tags)


def inventory_of(selection: str, clusters, stacks, subscriptions=(SUB_A, SUB_B), denied=()):
    return compare(parse_selection(selection), clusters, stacks, subscriptions, denied)


# --------------------------------------------------------------------------------------------- comparison


def test_in_step_new_moved_and_gone():
    clusters = [
        cluster("arc", "store-0001", "rg-stores-weu"),  # in step
        cluster("arc", "store-0002", "rg-stores-neu"),  # moved: another resource group
        cluster("arc", "store-0003", "rg-stores-weu", SUB_B),  # moved: another subscription
        cluster("arc", "store-0042", "rg-stores-weu"),  # new
    ]
    stacks = [stack("store-0001"), stack("store-0002"), stack("store-0003"), stack("store-0004")]
    result = inventory_of("kind:arc tag:fleet=stores", clusters, stacks)
    assert [s.stack for s in result.in_step] == ["store-0001"]
    assert [(m.stack.stack, m.cluster.resource_group, m.cluster.subscription_id) for m in result.moved] == [
        ("store-0002", "rg-stores-neu", SUB_A),
        ("store-0003", "rg-stores-weu", SUB_B),
    ]
    assert [s.stack for s in result.gone] == ["store-0004"]
    assert [(m.cluster.name, m.stack) for m in result.new] == [("store-0042", "store-0042")]
    assert result.exit_code == 3 and result.differences


def test_in_step_is_exit_0_and_names_compare_without_case():
    clusters = [cluster("arc", "Store-0001", "RG-Stores-WEU")]
    result = inventory_of("kind:arc", clusters, [stack("store-0001", resource_group="rg-stores-weu")])
    assert len(result.in_step) == 1 and not result.differences and result.exit_code == 0


def test_a_cluster_moved_out_of_an_rg_term_is_moved_not_gone():
    # The query reads every cluster of the kind: the one that left rg-stores-* is found, unselected, elsewhere.
    clusters = [cluster("arc", "store-0001", "rg-legacy", selected=False)]
    result = inventory_of("kind:arc rg:rg-stores-*", clusters, [stack("store-0001")])
    assert [m.cluster.resource_group for m in result.moved] == ["rg-legacy"] and result.gone == ()


def test_a_cluster_that_lost_its_tag_is_outside_the_selection_not_gone():
    clusters = [cluster("arc", "store-0001", "rg-stores-weu", selected=False)]
    result = inventory_of("kind:arc tag:fleet=stores", clusters, [stack("store-0001")])
    assert (result.in_step, result.gone, result.moved, result.new) == ((), (), (), ())
    assert result.exit_code == 0


def test_a_stack_whose_file_is_outside_the_selection_is_never_gone():
    stacks = [
        stack("elsewhere", resource_group="rg-factories"),  # rg outside rg:rg-stores-*
        stack("aks-one", kind="aks", location="westeurope", tags={"fleet": "factories"}),  # tag outside
        stack("aks-untagged", kind="aks", location="westeurope", tags={"owner": "platform"}),  # declares no fleet
        stack("aks-north", kind="aks", location="northeurope"),  # location outside
        stack("store-0009"),  # an Arc stack cannot declare tags: nothing of it is outside
    ]
    result = inventory_of("rg:rg-stores-* tag:fleet=stores location:westeurope", [], stacks)
    assert [s.stack for s in result.gone] == ["store-0009"]


def test_stacks_of_another_kind_or_subscription_are_not_this_inventory_s():
    stacks = [stack("aks-one", kind="aks"), stack("far", subscription="00000000-0000-0000-0000-0000000000ff")]
    result = inventory_of("kind:arc", [], stacks)
    assert (result.gone, result.unchecked) == ((), ())


def test_a_stack_in_a_denied_subscription_is_unchecked_and_the_rest_still_compared():
    denied = [DeniedSubscription(SUB_DENIED, "AccessDenied: Access is denied to the requested resource.")]
    clusters = [cluster("arc", "store-0042", "rg-stores-weu")]
    stacks = [stack("store-0100", subscription=SUB_DENIED), stack("store-0004")]
    result = inventory_of("kind:arc", clusters, stacks, (SUB_A, SUB_DENIED), denied)
    assert [u.stack.stack for u in result.unchecked] == ["store-0100"]
    assert [s.stack for s in result.gone] == ["store-0004"] and len(result.new) == 1
    assert result.exit_code == 1  # the picture is incomplete: 1 wins over 3


def test_a_moved_stack_takes_the_cluster_in_its_own_subscription_first():
    clusters = [cluster("arc", "store-0001", "rg-a", SUB_B), cluster("arc", "store-0001", "rg-b", SUB_A)]
    result = inventory_of("kind:arc", clusters, [stack("store-0001", resource_group="rg-old")])
    [moved] = result.moved
    assert moved.cluster.place == (SUB_A, "rg-b")
    assert [m.cluster.place for m in result.new] == [(SUB_B, "rg-a")]  # the other one is a new member


def test_the_same_inputs_in_any_order_give_the_same_inventory():
    clusters = [cluster("arc", f"store-{n:04d}", f"rg-{n % 3}", (SUB_A, SUB_B)[n % 2]) for n in range(30)]
    stacks = [stack(f"store-{n:04d}", resource_group=f"rg-{n % 5}") for n in range(0, 40, 2)]
    first = render(inventory_of("kind:arc", clusters, stacks), "json")
    second = render(inventory_of("kind:arc", clusters[::-1], stacks[::-1]), "json")
    assert first == second


def test_rows_as_resource_graph_answers_them():
    arc, aks = clusters_from_rows([row("arc", "store-0001", "RG-Stores"), row("aks", "aks-1", "rg1", tags={"a": "b"})])
    assert (arc.kind, arc.resource_group, arc.location, arc.tags) == ("arc", "RG-Stores", "eastus", ())
    assert (aks.kind, aks.location, aks.tags) == ("aks", "location1", (("a", "b"),))


@pytest.mark.parametrize(
    "broken",
    [
        {"type": "microsoft.compute/virtualmachines"},
        {"name": None},
        {"selected": "yes"},
        {"selected": None},
        {"tags": ["not", "a", "map"]},
    ],
)
def test_a_row_that_does_not_fit_the_query_is_an_azure_error(broken):
    with pytest.raises(inventory_module.AzureError) as error:
        clusters_from_rows([row("arc", "store-0001", "rg") | broken])
    assert str(error.value).startswith("cannot read Azure Resource Graph's answer: a row does not fit the query")


def test_the_query_reads_every_cluster_of_the_kinds_and_marks_the_selection():
    query = cluster_query(parse_selection("kind:arc rg:rg-stores-* location:westeurope tag:fleet=stores"))
    assert query.splitlines() == [
        "resources",
        "| where type in~ ('microsoft.kubernetes/connectedclusters')",
        "| extend selected = (resourceGroup matches regex '(?is)^rg-stores-.*$') and (location =~ 'westeurope') "
        "and (tostring(tags['fleet']) == 'stores')",
        "| project id, name, type, subscriptionId, resourceGroup, location, tags, selected",
        "| order by id asc",
    ]
    both = cluster_query(parse_selection("tag:fleet=stores tag:fleet=kiosks"))
    assert "'microsoft.containerservice/managedclusters', 'microsoft.kubernetes/connectedclusters'" in both
    assert "(tostring(tags['fleet']) == 'kiosks' or tostring(tags['fleet']) == 'stores')" in both


def test_a_hostile_tag_stays_inside_its_kql_strings():
    query = cluster_query(parse_selection("""tag:"o'k"="x' or 1==1 | project secret //\\\\" """))
    assert "tostring(tags['o\\'k']) == 'x\\' or 1==1 | project secret //\\\\'" in query
    assert query.count("\n") == 4  # no line of its own


# --------------------------------------------------------------------------------------------- new members' names


def test_stack_names_derive_from_the_cluster():
    assert stack_name_of("Store-0042") == "store-0042"
    assert stack_name_of("edge_store.7") == "edge_store.7"
    assert stack_name_of("weird name!") == "weird-name"
    assert len(stack_name_of("x" * 300)) <= 94


def test_names_taken_by_a_stack_or_another_new_member_get_a_suffix():
    clusters = [
        cluster("arc", "store-0001", "rg-a", SUB_A),  # same name as a stack of another cluster
        cluster("arc", "Store-0042", "rg-a", SUB_A),  # two new clusters of one name
        cluster("arc", "store-0042", "rg-b", SUB_B),
    ]
    result = inventory_of("kind:arc", clusters, [stack("Store-0001", cluster_name="other", resource_group="rg-x")])
    named = [(m.cluster.name, m.stack, m.collision) for m in result.new]
    assert named == [
        ("store-0001", "store-0001-2", "store-0001 is taken by stacks/Pulumi.Store-0001.yaml"),
        ("Store-0042", "store-0042", None),
        ("store-0042", "store-0042-2", "store-0042 is taken by the new member Store-0042 in rg-a"),
    ]


def test_a_cluster_no_stack_can_name_is_reported_and_never_written(tmp_path):
    odd = cluster("arc", "store.with.dots", "rg-a")
    [member] = inventory_of("kind:arc", [odd], []).new
    assert member.problem.startswith("no stack can name it: cluster.name:")
    written = write_members(inventory_of("kind:arc", [odd], []), "edge-store", TODAY.date(), tmp_path, str)
    assert written.written == () and list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------- the command line


@pytest.fixture
def stacks_dir(tmp_path, monkeypatch) -> Path:
    """An empty stacks directory with the edge-store profile; az's default subscription is SUB_A; today is TODAY."""
    directory = tmp_path / "stacks"
    write(directory, "profiles/edge-store.yaml", "config:\n  fluxfleet:flux:\n    configurations: {}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", SUB_A)
    monkeypatch.setattr(clock_module, "SystemClock", lambda: FakeClock(TODAY))
    return directory


class Azure:
    """The service the command line reads, through the real ResourceGraphReader and ArmReader. ARM answers a GET of
    a cluster with what `answer_arm` set for its id, else 404 ResourceNotFound, as for a cluster that is gone."""

    def __init__(self, monkeypatch):
        self.server = ResourceGraphServer()
        self.clock = FakeClock()
        self.arm_answers: dict[str, tuple[int, Any, dict[str, str]] | Exception] = {}
        self.arm = RecordingTransport(self._arm_answer)
        monkeypatch.setattr(resource_graph, "ResourceGraphReader", self.reader)
        monkeypatch.setattr(arm, "ArmReader", self.arm_reader)

    def reader(self, **options: Any) -> ResourceGraphReader:  # the class imported above, before any test replaced it
        return ResourceGraphReader(FakeCredential(), clock=self.clock, transport=self.server.transport(), **options)

    def arm_reader(self, **options: Any) -> ArmReader:
        credential = JwtCredential(upn="alice@contoso.com", oid="0a1b2c3d-0000-4000-8000-000000000001")
        return ArmReader(credential, transport=self.arm, **options)

    def answer_arm(self, kind: str, name: str, resource_group: str, answer, subscription: str = SUB_A) -> None:
        self.arm_answers[cluster_id(kind, name, resource_group, subscription).lower()] = answer

    def _arm_answer(self, request: Any) -> tuple[int, Any, dict[str, str]]:
        assert request.method == "GET"
        answer = self.arm_answers.get(urlsplit(request.url).path.lower(), (404, NOT_FOUND, {}))
        if isinstance(answer, Exception):
            raise answer
        return answer

    def arm_reads(self) -> list[str]:
        return [urlsplit(request.url).path for request in self.arm.requests]

    def holds(self, *rows: dict[str, Any]) -> None:
        self.server.rows = list(rows)


@pytest.fixture
def azure(monkeypatch) -> Azure:
    return Azure(monkeypatch)


def inventory(*args: str):
    return CliRunner().invoke(app, ["inventory", *args])


def stores_fleet(stacks_dir: Path, azure: Azure) -> None:
    """Four store stacks and five store clusters: 0001 in step, 0002 moved, 0003 gone, 0042 and 0043 new."""
    arc_stack(stacks_dir, "store-0001", "store-0001", "rg-stores-weu")
    arc_stack(stacks_dir, "store-0002", "store-0002", "rg-stores-weu")
    arc_stack(stacks_dir, "store-0003", "store-0003", "rg-stores-weu")
    arc_stack(stacks_dir, "factory-01", "factory-01", "rg-factories")  # outside the selection, cluster missing
    aks_stack(stacks_dir, "aks-prod", "aks-prod", "rg-prod")  # another kind
    azure.holds(
        row("arc", "store-0001", "rg-stores-weu", tags=STORES),
        row("arc", "store-0002", "rg-stores-neu", tags=STORES),
        row("arc", "store-0042", "rg-stores-weu", tags=STORES),
        row("arc", "store-0043", "rg-stores-weu", SUB_B, tags=STORES),
        row("arc", "kiosk-01", "rg-kiosks", tags={"fleet": "kiosks"}, selected=False),
        row("aks", "aks-prod", "rg-prod"),
    )


SELECT = ("--select", "kind:arc rg:rg-stores-* tag:fleet=stores")


def test_differences_are_exit_3_and_reported_in_every_format(stacks_dir, azure):
    stores_fleet(stacks_dir, azure)
    result = inventory(*SELECT, "--subscription", SUB_A, "--subscription", SUB_B, "--format", "json")
    assert result.exit_code == 3, result.output
    document = json.loads(result.stdout)
    jsonschema.validate(document, SCHEMA)
    assert document["summary"] == {"inStep": 1, "new": 2, "moved": 1, "gone": 1, "unchecked": 0, "unconfirmed": 0}
    assert [(n["stack"], n["file"], n["written"]) for n in document["new"]] == [
        ("store-0042", "stacks/Pulumi.store-0042.yaml", False),
        ("store-0043", "stacks/Pulumi.store-0043.yaml", False),
    ]
    assert document["moved"][0]["to"] == {
        "name": "store-0002",
        "resourceGroup": "rg-stores-neu",
        "subscriptionId": SUB_A,
        "location": "eastus",
    }
    assert [g["stack"] for g in document["gone"]] == ["store-0003"]  # not factory-01: outside the selection
    assert document["selection"] == "kind:arc rg:rg-stores-* tag:fleet=stores"
    assert azure.server.queries()[0]["subscriptions"] == [SUB_A, SUB_B]  # both in one query

    text = inventory(*SELECT, "--subscription", SUB_A, "--subscription", SUB_B)
    assert text.exit_code == 3
    lines = text.stdout.splitlines()
    assert lines[0] == "fluxfleet inventory kind:arc rg:rg-stores-* tag:fleet=stores"
    assert f"+ new: arc store-0042 (rg-stores-weu in {SUB_A}) → stacks/Pulumi.store-0042.yaml" in lines
    assert any(line.startswith("~ moved: store-0002 (stacks/Pulumi.store-0002.yaml)") for line in lines)
    assert (
        "- gone: store-0003 (stacks/Pulumi.store-0003.yaml): no arc cluster store-0003 in the subscriptions looked in, "
        "and ARM answers 404" in lines
    )
    assert lines[-1] == (
        "✗ 1 stack(s) in step, 2 new, 1 moved, 1 gone, 0 unchecked, 0 unconfirmed; 2 subscription(s) looked in "
        "(2 Resource Graph request(s))"
    )

    markdown = inventory(*SELECT, "--subscription", SUB_A, "--subscription", SUB_B, "--format", "markdown")
    assert markdown.exit_code == 3
    assert f"| store-0042 | arc | store-0042 | rg-stores-weu | {SUB_A} |  |" in markdown.stdout
    assert "| store-0003 | arc | store-0003 | rg-stores-weu | " in markdown.stdout


def test_in_step_is_exit_0(stacks_dir, azure):
    arc_stack(stacks_dir, "store-0001", "store-0001", "rg-stores-weu", subscription=None)  # the default subscription
    azure.holds(row("arc", "store-0001", "rg-stores-weu", tags=STORES))
    result = inventory("--select", "kind:arc", "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    jsonschema.validate(document, SCHEMA)
    assert document["ok"] and document["subscriptions"] == [SUB_A] and document["summary"]["inStep"] == 1


def test_json_is_byte_identical_across_runs(stacks_dir, azure):
    stores_fleet(stacks_dir, azure)
    args = (*SELECT, "--subscription", SUB_B, "--subscription", SUB_A, "--format", "json")
    first = inventory(*args).stdout
    azure.server.rows.reverse()  # Resource Graph promises no order across subscriptions
    second = inventory(*args).stdout
    assert first == second and first.endswith("}\n")


def test_write_creates_minimal_stack_files_that_plan_cleanly(stacks_dir, azure):
    stores_fleet(stacks_dir, azure)
    result = inventory(*SELECT, "--subscription", SUB_A, "--subscription", SUB_B, "--profile", "edge-store", "--write")
    assert result.exit_code == 3, result.output  # differences were found (and acted on)
    written = stacks_dir / "Pulumi.store-0043.yaml"
    assert written.read_text() == textwrap.dedent(
        f"""\
        # store-0043: written by `fluxfleet inventory --write` from Azure Resource Graph (2026-11-29).
        config:
          fluxfleet:profiles: [edge-store]
          fluxfleet:cluster:
            kind: arc
            name: store-0043
            resourceGroup: rg-stores-weu
            subscriptionId: {SUB_B}
        """
    )
    assert "→ stacks/Pulumi.store-0042.yaml (written)" in result.stdout
    stack = load_stack_file(written)  # as `plan` reads it, with its profile
    assert (stack.spec.cluster.kind, stack.spec.cluster.subscription_id) == ("arc", SUB_B)
    planned = plan_fleet([written])  # and the program runs on it under the mock engine
    assert planned.exit_code == 0 and planned.stacks[0].errors == [] and planned.stacks[0].violations == []
    again = inventory(*SELECT, "--subscription", SUB_A, "--subscription", SUB_B, "--format", "json")
    assert json.loads(again.stdout)["summary"] == {
        "inStep": 3,
        "new": 0,
        "moved": 1,
        "gone": 1,
        "unchecked": 0,
        "unconfirmed": 0,
    }


def test_write_writes_nothing_when_a_new_file_would_not_be_a_valid_stack(stacks_dir, azure):
    stores_fleet(stacks_dir, azure)
    aks_cluster = row("aks", "aks-edge-7", "rg-stores-weu", tags=STORES) | {"location": "westeurope"}
    azure.holds(*azure.server.rows, aks_cluster)
    result = inventory(
        "--select", "rg:rg-stores-* tag:fleet=stores", "--subscription", SUB_A, "--subscription", SUB_B,
        "--profile", "edge-store", "--write", "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    [error] = json.loads(result.stdout)["errors"]
    # An AKS stack needs node pools, which this (Arc) profile does not give: not even the Arc members are written.
    assert error.startswith("the new stack files would not be valid with profile edge-store: ")
    assert "nodePools" in error and error.endswith(": no stack file written")
    assert sorted(p.name for p in stacks_dir.glob("Pulumi.*")) == sorted(
        [
            "Pulumi.store-0001.yaml",
            "Pulumi.store-0002.yaml",
            "Pulumi.store-0003.yaml",
            "Pulumi.factory-01.yaml",
            "Pulumi.aks-prod.yaml",
        ]
    )
    assert f"fluxfleet inventory: {error}" in result.stderr


def test_write_names_an_aks_member_s_location_and_quotes_what_yaml_would_misread():
    [member] = inventory_of("kind:aks", [cluster("aks", "0042", "rg-edge")], []).new
    text = stack_file_text(member, "edge-aks", date(2026, 11, 29))
    assert "    name: '0042'\n    resourceGroup: rg-edge\n    location: location1\n" in text  # not the number 42


def test_names_from_azure_cannot_forge_report_lines(stacks_dir, azure):
    azure.holds(row("arc", "store\x1b[2J\nfake: line", "rg-stores-weu", tags=STORES))
    result = inventory(*SELECT, "--subscription", SUB_A)
    assert result.exit_code == 3
    assert "\x1b" not in result.stdout and "store\\x1b[2J\\nfake: line" in result.stdout
    assert "no stack can name it" in result.stdout


def test_write_reports_collisions(stacks_dir, azure):
    arc_stack(stacks_dir, "store-0042", "store-0042", "rg-stores-weu")  # a person's stack for this cluster
    azure.holds(
        row("arc", "store-0042", "rg-stores-weu", tags=STORES),
        row("arc", "store-0042", "rg-stores-weu", SUB_B, tags=STORES),  # the same name in another subscription
    )
    result = inventory(
        *SELECT,
        "--subscription",
        SUB_A,
        "--subscription",
        SUB_B,
        "--profile",
        "edge-store",
        "--write",
        "--format",
        "json",
    )
    assert result.exit_code == 3
    [new] = json.loads(result.stdout)["new"]
    assert (new["stack"], new["collision"], new["written"]) == (
        "store-0042-2",
        "store-0042 is taken by stacks/Pulumi.store-0042.yaml",
        True,
    )
    assert "subscriptionId: " + SUB_B in (stacks_dir / "Pulumi.store-0042-2.yaml").read_text()


def test_write_is_all_or_nothing(stacks_dir, azure, monkeypatch):
    azure.holds(*(row("arc", f"store-{n:04d}", "rg-stores-weu", tags=STORES) for n in range(3)))
    real_link = os.link
    calls = []

    def link_failing_on_the_third(source, target):
        calls.append(target)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real_link(source, target)

    monkeypatch.setattr(inventory_module.os, "link", link_failing_on_the_third)
    result = inventory(*SELECT, "--subscription", SUB_A, "--profile", "edge-store", "--write")
    assert result.exit_code == 1
    assert sorted(p.name for p in stacks_dir.iterdir()) == ["profiles"]  # no stack file, no temporary file
    assert (
        "error: cannot write stacks/Pulumi.store-0002.yaml: No space left on device: no stack file written"
        in result.stdout
    )


def test_write_never_overwrites_a_file_that_appeared_meanwhile(tmp_path):
    clusters = [cluster("arc", "store-0001", "rg"), cluster("arc", "store-0002", "rg")]
    result = compare(parse_selection("kind:arc"), clusters, [], [SUB_A], stacks_dir=tmp_path)
    (tmp_path / "Pulumi.store-0002.yaml").write_text("# a person's\n")
    written = write_members(result, "edge-store", TODAY.date(), tmp_path, str)
    assert written.written == () and "a file of that name appeared meanwhile" in written.errors[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Pulumi.store-0002.yaml"]
    assert (tmp_path / "Pulumi.store-0002.yaml").read_text() == "# a person's\n"


def test_prune_deletes_only_gone_stacks_in_the_selection(stacks_dir, azure):
    stores_fleet(stacks_dir, azure)
    aks_stack(stacks_dir, "aks-stores", "aks-stores", "rg-stores-weu", tags={"fleet": "factories"})
    before = {p.name for p in stacks_dir.glob("Pulumi.*.yaml")}
    result = inventory(
        "--select", "rg:rg-stores-* tag:fleet=stores", "--subscription", SUB_A, "--subscription", SUB_B, "--prune",
        "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 3, result.output
    document = json.loads(result.stdout)
    assert [(g["stack"], g["pruned"]) for g in document["gone"]] == [("store-0003", True)]
    after = {p.name for p in stacks_dir.glob("Pulumi.*.yaml")}
    # Kept: in step, moved, outside the selection's rg (factory-01), outside its tags (aks-stores), another kind.
    assert before - after == {"Pulumi.store-0003.yaml"}


def test_without_prune_nothing_is_deleted(stacks_dir, azure):
    stores_fleet(stacks_dir, azure)
    before = sorted(p.name for p in stacks_dir.iterdir())
    assert inventory(*SELECT, "--subscription", SUB_A).exit_code == 3
    assert sorted(p.name for p in stacks_dir.iterdir()) == before


def test_a_denied_subscription_is_reported_in_every_format_and_the_others_listed(stacks_dir, azure):
    stores_fleet(stacks_dir, azure)
    arc_stack(stacks_dir, "store-0100", "store-0100", "rg-stores-weu", subscription=SUB_DENIED)
    azure.server.forbidden = {SUB_DENIED}
    args = (*SELECT, "--subscription", SUB_A, "--subscription", SUB_DENIED, "--subscription", SUB_B)
    result = inventory(*args, "--format", "json", "--write", "--prune", "--profile", "edge-store")
    assert result.exit_code == 1, result.output  # incomplete: 1 wins over the differences' 3
    document = json.loads(result.stdout)
    jsonschema.validate(document, SCHEMA)
    assert [d["subscriptionId"] for d in document["denied"]] == [SUB_DENIED]
    assert document["denied"][0]["reason"].startswith("AccessDenied: Access is denied to the requested resource")
    assert [u["stack"] for u in document["unchecked"]] == ["store-0100"]
    assert [n["stack"] for n in document["new"]] == ["store-0042", "store-0043"]  # the others still listed
    assert document["heldBack"].startswith(
        f"nothing written or deleted: subscription(s) {SUB_DENIED} could not be read"
    )
    assert (stacks_dir / "Pulumi.store-0003.yaml").exists() and not (stacks_dir / "Pulumi.store-0042.yaml").exists()
    assert f"fluxfleet inventory: subscription {SUB_DENIED} could not be read" in result.stderr

    text = inventory(*args)
    assert text.exit_code == 1
    assert f"! subscription {SUB_DENIED} could not be read (AccessDenied: " in text.stdout
    assert f"Reader role on /subscriptions/{SUB_DENIED}" in text.stdout
    markdown = inventory(*args, "--format", "markdown")
    assert "## Subscriptions that could not be read" in markdown.stdout and SUB_DENIED in markdown.stdout


def test_azure_unreadable_is_exit_1_in_one_line(stacks_dir, azure):
    azure.server.interruptions = [(401, {"error": {"code": "InvalidAuthenticationToken", "message": "bad"}}, {})]
    result = inventory(*SELECT)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("fluxfleet inventory: cannot query Azure Resource Graph: 401")
    assert len(result.stderr.strip().splitlines()) == 1


def test_throttling_is_waited_out_on_the_clock(stacks_dir, azure):
    stores_fleet(stacks_dir, azure)
    throttled = (429, example(FIXTURES / "RateLimiting.json", "429"), example_headers())
    azure.server.interruptions = [throttled]
    result = inventory(*SELECT, "--format", "json")
    assert result.exit_code == 3 and azure.clock.sleeps == [2.0]


def example_headers() -> dict[str, str]:
    return json.loads((FIXTURES / "RateLimiting.json").read_text())["responses"]["429"]["headers"]


# --------------------------------------------------------------------------------------------- user mistakes


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--select", "kind:foo"), "fluxfleet inventory: --select: 'kind:foo': kind is aks or arc, not 'foo'"),
        (("--select", "rg:"), "fluxfleet inventory: --select: 'rg:': empty value: rg:VALUE"),
        (
            ("--select", "resourcegroup:rg-1"),
            "fluxfleet inventory: --select: 'resourcegroup:rg-1': not a term: use kind:, rg:, location: or "
            "tag:KEY=VALUE (did you mean rg:?)",
        ),
        (("--select", "tag:fleet"), "fluxfleet inventory: --select: 'tag:fleet': a tag term is tag:KEY=VALUE"),
        (("--select", "kind:arc\x1b[2J"), "fluxfleet inventory: --select: 'kind:arc\\x1b[2J': contains \\x1b"),
        (("--select", "tag:a='b"), 'fluxfleet inventory: --select: "tag:a=\'b": cannot be read: no closing quotation'),
        (
            ("--select", "kind:arc", "--subscription", "not-a-guid"),
            "fluxfleet inventory: --subscription: 'not-a-guid': not a subscription id",
        ),
        (
            ("--select", "kind:arc", "--profile", "missing"),
            "fluxfleet inventory: --profile: 'missing': no profile stacks/profiles/missing.yaml (profiles: edge-store)",
        ),
        (
            ("--select", "kind:arc", "--profile", "../etc"),
            "fluxfleet inventory: --profile: '../etc': not a profile name",
        ),
        (("--select", "kind:arc", "--write"), "fluxfleet inventory: --write needs --profile NAME"),
        (("--select", "kind:arc", "--stacks-dir", "nowhere"), "fluxfleet inventory: nowhere: no such directory"),
        (
            ("--select", "kind:arc", "--output", "no/such/dir/report.json"),
            "fluxfleet inventory: --output no/such/dir/report.json:",
        ),
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(stacks_dir, azure, args, said):
    result = inventory(*args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(said), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert azure.server.bodies == []  # nothing asked of Azure


def test_an_invalid_stack_file_is_exit_2_with_its_errors(stacks_dir, azure):
    write(stacks_dir, "Pulumi.broken.yaml", "config:\n  fluxfleet:cluster: {kind: arc, name: x}\n")
    arc_stack(stacks_dir, "store-0001", "store-0001", "rg-stores-weu")
    result = inventory(*SELECT)
    assert result.exit_code == 2
    assert (
        result.stderr.strip() == "stacks/Pulumi.broken.yaml: fluxfleet:cluster.resourceGroup: required key is missing"
    )


def test_a_stack_without_a_subscription_and_no_default_is_unconfirmed_never_in_the_one_subscription_given(
    stacks_dir, azure, monkeypatch, tmp_path
):
    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID")
    monkeypatch.delenv("ARM_SUBSCRIPTION_ID", raising=False)
    monkeypatch.setenv("AZURE_CONFIG_DIR", str(tmp_path / "no-az"))
    arc_stack(stacks_dir, "store-0001", "store-0001", "rg-stores-weu", subscription=None)
    nowhere = inventory(*SELECT)
    assert nowhere.exit_code == 1  # what every command answers when it has no subscription to read
    assert nowhere.stderr == f"fluxfleet inventory: {no_subscription(['store-0001'], option=True)}\n"
    assert azure.server.bodies == []  # nothing asked of Azure
    # One --subscription is where to look, not where `pulumi up` would put the stack's cluster: that is unknown.
    result = inventory(*SELECT, "--subscription", SUB_A, "--prune", "--format", "json")
    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    jsonschema.validate(document, SCHEMA)
    assert document["gone"] == [] and document["summary"]["inStep"] == 0
    [unconfirmed] = document["unconfirmed"]
    assert unconfirmed["stack"] == "store-0001"
    assert unconfirmed["reason"].startswith(
        "names no subscriptionId, and there is no default subscription (AZURE_SUBSCRIPTION_ID, ARM_SUBSCRIPTION_ID "
        "or `az account set`): where its cluster is, is unknown"
    )
    assert (stacks_dir / "Pulumi.store-0001.yaml").exists() and azure.arm_reads() == []
    assert "fluxfleet inventory: unconfirmed: store-0001 (stacks/Pulumi.store-0001.yaml): names no" in result.stderr


def test_load_stacks_reports_every_invalid_file_at_once(tmp_path):
    write(tmp_path, "Pulumi.a.yaml", "config:\n  fluxfleet:cluster: {kind: arc}\n")
    write(tmp_path, "Pulumi.b.yaml", "config:\n  fluxfleet:cluster: {kind: arc, name: b, resourceGroup: 'rg!'}\n")
    with pytest.raises(inventory_module.SpecError) as error:
        load_stacks(tmp_path, SUB_A, lambda path: path.name)
    assert sorted({issue.file for issue in error.value.issues}) == ["Pulumi.a.yaml", "Pulumi.b.yaml"]


def test_cloud_looks_in_that_cloud_and_writes_stacks_of_it(stacks_dir, azure):
    """`--cloud AzureChinaCloud`: Resource Graph of the China cloud; only the stacks of that cloud count (a public
    stack is no China cluster's, so not gone); a new member's file names the cloud and azure-native's environment."""
    from fluxfleet.cli.inventory import Cloud
    from modules.clouds import CLOUDS

    assert list(Cloud) == list(CLOUDS)
    hosts = []
    served = azure.server.respond
    azure.server.respond = lambda request: hosts.append(request.url.split("/")[2]) or served(request)
    arc_stack(stacks_dir, "store-0001", "store-0001", "rg-stores-weu")  # public, in SUB_A: not looked at
    write(
        stacks_dir,
        "Pulumi.store-cn-01.yaml",
        f"""\
        config:
          azure-native:environment: china
          fluxfleet:cluster: {{kind: arc, name: store-cn-01, resourceGroup: rg-stores-sha, subscriptionId: {SUB_B},
            cloud: AzureChinaCloud}}
        """,
    )
    azure.holds(
        row("arc", "store-cn-01", "rg-stores-sha", SUB_B, tags=STORES),
        row("arc", "store-cn-02", "rg-stores-sha", SUB_B, tags=STORES),
    )
    result = inventory(*SELECT, "--cloud", "AzureChinaCloud", "--profile", "edge-store", "--write", "--format", "json")
    assert result.exit_code == 3, result.output
    assert json.loads(result.stdout)["summary"] == {
        "inStep": 1,
        "new": 1,
        "moved": 0,
        "gone": 0,
        "unchecked": 0,
        "unconfirmed": 0,
    }
    assert set(hosts) == {"management.chinacloudapi.cn"}
    written = stacks_dir / "Pulumi.store-cn-02.yaml"
    assert written.read_text().splitlines()[1:] == [
        "config:",
        "  azure-native:environment: china",
        "  fluxfleet:profiles: [edge-store]",
        "  fluxfleet:cluster:",
        "    kind: arc",
        "    name: store-cn-02",
        "    resourceGroup: rg-stores-sha",
        f"    subscriptionId: {SUB_B}",
        "    cloud: AzureChinaCloud",
    ]
    assert load_stack_file(written).spec.cluster.cloud == "AzureChinaCloud"  # a valid stack, as plan reads it


# --------------------------------------------------------------------------------------------- gone, only when confirmed

EXAMPLES = {  # the example stacks of the repository: stack -> (kind, cluster, resource group); none names a subscription
    "dev": ("aks", "aks-dev-weu", "rg-fleet-dev"),
    "edge-store-001": ("arc", "flux-demo-arc", "flux-demo-rg"),
    "prod-weu": ("aks", "aks-prod-weu", "rg-fleet-prod-weu"),
    "staging": ("aks", "aks-staging-weu", "rg-fleet-staging"),
}


@pytest.fixture
def examples(stacks_dir, azure) -> Path:
    """The repository's example stacks, their clusters in SUB_A, the default subscription (AZURE_SUBSCRIPTION_ID)."""
    shutil.rmtree(stacks_dir)
    shutil.copytree(ROOT / "stacks", stacks_dir)
    azure.holds(*(row(kind, name, group) for kind, name, group in EXAMPLES.values()))
    return stacks_dir


def test_one_subscription_given_is_not_where_stacks_without_one_are(examples, azure):
    """The issue's run: clusters in A (AZURE_SUBSCRIPTION_ID, as `pulumi up` uses it), `--subscription B --prune`.
    The stacks name no subscription: they are in A, which was not looked in; not gone, nothing deleted."""
    before = sorted(p.name for p in examples.iterdir())
    args = ("--select", "kind:aks kind:arc", "--subscription", SUB_B, "--prune")
    result = inventory(*args, "--format", "json")
    assert result.exit_code == 1, result.output  # not in step: the picture is incomplete
    document = json.loads(result.stdout)
    jsonschema.validate(document, SCHEMA)
    assert document["gone"] == [] and not document["ok"]
    assert [u["stack"] for u in document["unconfirmed"]] == sorted(EXAMPLES)
    assert {u["reason"] for u in document["unconfirmed"]} == {
        f"names no subscriptionId, so its cluster is in the default subscription {SUB_A} (as for `pulumi up`: "
        f"AZURE_SUBSCRIPTION_ID, ARM_SUBSCRIPTION_ID or `az account set`), which was not looked in; add "
        f"--subscription {SUB_A}, or set fluxfleet:cluster.subscriptionId"
    }
    assert sorted(p.name for p in examples.iterdir()) == before and azure.arm_reads() == []

    text = inventory(*args)
    assert text.exit_code == 1
    assert (
        f"? unconfirmed: dev (stacks/Pulumi.dev.yaml): names no subscriptionId, so its cluster is in the default "
        f"subscription {SUB_A}" in text.stdout
    )
    assert "(pruned)" not in text.stdout
    assert text.stdout.splitlines()[-1].startswith(
        "✗ 0 stack(s) in step, 0 new, 0 moved, 0 gone, 0 unchecked, 4 unconfirmed"
    )
    markdown = inventory(*args, "--format", "markdown").stdout
    assert (
        "## Unconfirmed" in markdown and "- staging (stacks/Pulumi.staging.yaml): names no subscriptionId" in markdown
    )

    # Looking in A, where they are: in step.
    assert inventory("--select", "kind:aks kind:arc", "--subscription", SUB_A, "--prune").exit_code == 0
    assert sorted(p.name for p in examples.iterdir()) == before


def test_a_cluster_resource_graph_does_not_show_but_arm_has_is_kept(examples, azure):
    azure.holds()  # not indexed yet, or in a resource group Resource Graph does not show this identity
    for kind, name, group in EXAMPLES.values():
        azure.answer_arm(kind, name, group, (200, AKS_BODY if kind == "aks" else ARC_BODY, {}))
    result = inventory("--select", "kind:aks kind:arc", "--prune", "--format", "json")
    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    assert document["gone"] == [] and [u["stack"] for u in document["unconfirmed"]] == sorted(EXAMPLES)
    assert document["unconfirmed"][0]["reason"] == (
        f"not in Resource Graph, but ARM has aks cluster aks-dev-weu in rg-fleet-dev in {SUB_A}, where its file says "
        "(not indexed yet, or hidden from Resource Graph): neither gone nor moved; run again later"
    )
    assert len(list(examples.glob("Pulumi.*.yaml"))) == 4
    assert sorted(azure.arm_reads()) == sorted(cluster_id(*cluster) for cluster in EXAMPLES.values())


def test_arm_404_is_gone_and_pruned(examples, azure):
    azure.holds(row("aks", "aks-prod-weu", "rg-fleet-prod-weu"))  # the others are gone: ARM answers 404
    azure.answer_arm(
        "arc", "flux-demo-arc", "flux-demo-rg",
        (404, {"error": {"code": "ResourceGroupNotFound", "message": "Resource group 'flux-demo-rg' could not be found."}}, {}),
    )  # fmt: skip
    result = inventory("--select", "kind:aks kind:arc", "--prune", "--format", "json")
    assert result.exit_code == 3, result.output
    document = json.loads(result.stdout)
    jsonschema.validate(document, SCHEMA)
    assert [(g["stack"], g["pruned"]) for g in document["gone"]] == [
        ("dev", True), ("edge-store-001", True), ("staging", True)
    ]  # fmt: skip
    assert sorted(p.name for p in examples.glob("Pulumi.*.yaml")) == ["Pulumi.prod-weu.yaml"]


def test_arm_403_is_unconfirmed_naming_the_identity_and_role(examples, azure):
    azure.holds(*(row(kind, name, group) for stack, (kind, name, group) in EXAMPLES.items() if stack != "dev"))
    azure.answer_arm("aks", "aks-dev-weu", "rg-fleet-dev", (403, AUTHORIZATION_FAILED, {}))
    result = inventory("--select", "kind:aks kind:arc", "--prune", "--format", "json")
    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    jsonschema.validate(document, SCHEMA)
    assert document["gone"] == []
    [unconfirmed] = document["unconfirmed"]
    dev = cluster_id("aks", "aks-dev-weu", "rg-fleet-dev")
    assert unconfirmed == {
        "stack": "dev",
        "file": "stacks/Pulumi.dev.yaml",
        "reason": f"not in Resource Graph where its file says, and ARM cannot confirm it is not there: cannot read {dev}: 403 "
        "AuthorizationFailed: alice@contoso.com (object id 0a1b2c3d-0000-4000-8000-000000000001) lacks the Reader "
        f"role on {dev}; ask an owner of that scope to assign it",
    }
    assert (examples / "Pulumi.dev.yaml").exists()
    assert "fluxfleet inventory: unconfirmed: dev (stacks/Pulumi.dev.yaml): not in Resource Graph" in result.stderr


def test_a_transport_error_is_unconfirmed(examples, azure):
    azure.holds(
        *(row(kind, name, group) for stack, (kind, name, group) in EXAMPLES.items() if stack != "edge-store-001")
    )
    azure.answer_arm("arc", "flux-demo-arc", "flux-demo-rg", ServiceRequestError("Connection refused"))
    result = inventory("--select", "kind:aks kind:arc", "--prune")
    assert result.exit_code == 1, result.output
    assert (
        "? unconfirmed: edge-store-001 (stacks/Pulumi.edge-store-001.yaml): not in Resource Graph where its file "
        "says, and ARM cannot confirm it is not there: cannot read "
        + cluster_id("arc", "flux-demo-arc", "flux-demo-rg")
        + ": cannot connect to "
        "Azure (Connection refused); check the network, proxy and DNS, then run again"
    ) in result.stdout
    assert (examples / "Pulumi.edge-store-001.yaml").exists()


def test_confirm_gone_keeps_only_what_arm_answers_404_for():
    """The comparison alone is no proof: each gone stack is read from ARM, and only a 404 keeps it gone."""
    stacks = [stack("store-0001"), stack("store-0002"), stack("store-0003", kind="aks", location="westeurope")]
    compared = inventory_of("kind:arc kind:aks", [], stacks)
    assert [s.stack for s in compared.gone] == ["store-0001", "store-0002", "store-0003"]

    class Arm:
        def connected_cluster(self, subscription, resource_group, name):
            if name == "store-0002":
                raise inventory_module.AzureError("cannot read it: 403 AuthorizationFailed")
            return None

        def managed_cluster(self, subscription, resource_group, name):
            return object()  # it exists

    confirmed = confirm_gone(compared, Arm())
    assert [s.stack for s in confirmed.gone] == ["store-0001"]
    assert [u.stack.stack for u in confirmed.unconfirmed] == ["store-0002", "store-0003"]
    assert confirmed.unconfirmed[0].reason == (
        "not in Resource Graph where its file says, and ARM cannot confirm it is not there: cannot read it: 403 AuthorizationFailed"
    )
    assert confirmed.unconfirmed[1].reason.startswith("not in Resource Graph, but ARM has aks cluster store-0003 in ")
    assert confirmed.exit_code == 1  # unconfirmed is not in step, and wins over the gone stack's 3


# --------------------------------------------------------------------------------------------- left in Pulumi


def exported_state(events_file: str) -> dict[str, Any]:
    """A `pulumi stack export` of a stack whose state holds what a recorded preview of it found (each resource's
    `old` state, as the engine had it), the stack itself and its default provider."""
    events = [json.loads(line) for line in (ROOT / "tests" / "fixtures" / "pulumi" / events_file).open()]
    metadata = [event["resourcePreEvent"]["metadata"] for event in events if "resourcePreEvent" in event]
    stack_urn = next(m["urn"] for m in metadata if m["type"] == "pulumi:pulumi:Stack")
    provider = metadata[0]["provider"].rsplit("::", 1)[0]
    resources = [
        {"urn": stack_urn, "custom": False, "type": "pulumi:pulumi:Stack"},
        {"urn": provider, "custom": True, "type": "pulumi:providers:azure-native", "id": "04da6b54"},
        *(m["old"] for m in metadata if m.get("old")),
    ]
    return {"version": 3, "deployment": {"manifest": {"time": "2026-11-01T00:00:00Z"}, "resources": resources}}


def prune_all_but_prod(examples: Path, azure: Azure, *args: str):
    shutil.rmtree(examples)
    shutil.copytree(ROOT / "stacks", examples)
    azure.holds(row("aks", "aks-prod-weu", "rg-fleet-prod-weu"))  # dev, edge-store-001, staging: ARM answers 404
    return inventory("--select", "kind:aks kind:arc", "--prune", *args)


def test_prune_says_what_each_gone_stack_leaves_in_pulumi_and_proposes_decommission_for_one_holding_state(
    examples, azure, fake
):
    dev_state = exported_state("preview_in_sync.jsonl")
    fake.scenario_path.write_text(
        json.dumps(
            {
                "stacks": {
                    "dev": {"export": dev_state},
                    "staging": {"export": {"version": 3, "deployment": {"resources": []}}},
                    "prod-weu": {"export": dev_state},
                }
            }
        )
    )  # edge-store-001: the backend has no such stack
    result = prune_all_but_prod(examples, azure, "--format", "json")
    assert result.exit_code == 3, result.output
    document = json.loads(result.stdout)
    jsonschema.validate(document, SCHEMA)
    states = {g["stack"]: g["pulumiState"] for g in document["gone"]}
    managed = [r["urn"] for r in dev_state["deployment"]["resources"][2:]]
    assert len(managed) == 4 and all(urn.startswith("urn:pulumi:dev::fluxfleet::") for urn in managed)
    assert states["dev"]["remains"] is True and states["dev"]["resources"] == managed
    # dev's state still lists its cluster and Flux: its file is kept for the decommission proposed.
    assert states["dev"]["command"] == "fluxfleet decommission dev"
    assert states["dev"]["note"].startswith(
        "Pulumi stack dev still holds state, 4 resource(s) (1 azure-native:containerservice:ManagedCluster, "
    )
    assert states["dev"]["note"].endswith(
        "propose `fluxfleet decommission dev`, which takes them out of the state, removes the stack, then its file "
        "(kept for it) and its name in fleet.yaml"
    )
    gone = {g["stack"]: g for g in document["gone"]}
    assert (gone["dev"]["pruned"], gone["dev"]["proposal"]) == (False, "fluxfleet decommission dev")
    assert (gone["staging"]["pruned"], gone["staging"]["proposal"]) == (True, None)
    assert sorted(p.name for p in examples.glob("Pulumi.*.yaml")) == ["Pulumi.dev.yaml", "Pulumi.prod-weu.yaml"]
    assert states["staging"] == {
        "remains": True,
        "resources": [],
        "command": "pulumi stack rm --yes --stack staging",
        "note": "Pulumi stack staging remains, with no resources: `pulumi stack rm --yes --stack staging` removes it",
    }
    assert states["edge-store-001"]["remains"] is False and states["edge-store-001"]["command"] is None
    # Asked about the pruned stacks only, by name, with a plain export (no --show-secrets); nothing removed.
    exports = [[a for a in argv if a != "--non-interactive"] for argv in fake.argv("stack", "export")]
    assert sorted(exports) == [["stack", "export", "--stack", s] for s in ("dev", "edge-store-001", "staging")]
    assert fake.argv("stack", "rm") == []
    assert "fluxfleet inventory: Pulumi stack dev still holds state, 4 resource(s)" in result.stderr

    text = prune_all_but_prod(examples, azure).stdout.splitlines()
    assert text[
        text.index(
            "- gone: dev (stacks/Pulumi.dev.yaml): no aks cluster aks-dev-weu in the subscriptions "
            "looked in, and ARM answers 404 (kept: its Pulumi stack still holds state)"
        )
        + 1
    ].startswith("!   Pulumi stack dev still holds state, 4 resource(s)")
    assert "    Pulumi stack edge-store-001: none in the backend, nothing left behind" in text
    markdown = prune_all_but_prod(examples, azure, "--format", "markdown").stdout
    assert "## Left in Pulumi by the gone stacks" in markdown
    assert "propose \\`fluxfleet decommission dev\\`" in markdown


def test_when_pulumi_cannot_be_asked_the_prune_stands_and_the_state_may_remain(examples, azure, fake, monkeypatch):
    fake.scenario_path.write_text(json.dumps({"stacks": {"dev": {"export": "not a stack export"}}}))
    result = prune_all_but_prod(examples, azure, "--format", "json")
    assert result.exit_code == 3, result.output
    states = {g["stack"]: g["pulumiState"] for g in json.loads(result.stdout)["gone"]}
    assert states["dev"] == {
        "remains": None,
        "resources": [],
        "command": "pulumi stack rm --force --yes --stack dev",
        "note": "Pulumi stack dev: Pulumi could not be asked (dev: unreadable stack export (AttributeError)), so its "
        "state may remain: `pulumi stack export --stack dev` shows it, `pulumi stack rm --force --yes --stack dev` "
        "removes it",
    }
    assert sorted(p.name for p in examples.glob("Pulumi.*.yaml")) == ["Pulumi.prod-weu.yaml"]

    monkeypatch.setenv("PATH", str(examples))  # no `pulumi` at all
    text = prune_all_but_prod(examples, azure)
    assert text.exit_code == 3, text.output
    assert (
        "!   Pulumi stack staging: Pulumi could not be asked (no `pulumi` CLI on PATH: install it "
        "(https://www.pulumi.com/docs/install/)), so its state may remain: `pulumi stack export --stack staging` "
        "shows it, `pulumi stack rm --force --yes --stack staging` removes it"
    ) in text.stdout
    assert sorted(p.name for p in examples.glob("Pulumi.*.yaml")) == ["Pulumi.prod-weu.yaml"]


def test_a_new_cluster_a_stack_of_undecided_subscription_may_name_is_never_written(stacks_dir, azure):
    """The stack names no subscription and its default one (SUB_A) is not looked in: the cluster of its name in SUB_B
    may be its own; a second stack file for it would have two Pulumi stacks manage one cluster."""
    arc_stack(stacks_dir, "store-0001", "store-0001", "rg-stores-weu", subscription=None)
    azure.holds(row("arc", "store-0001", "rg-stores-weu", SUB_B, tags=STORES))
    args = (*SELECT, "--subscription", SUB_B, "--write", "--profile", "edge-store", "--format", "json")
    result = inventory(*args)
    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    [member] = document["new"]
    assert member["problem"] == (
        "may be the cluster of stack store-0001 (stacks/Pulumi.store-0001.yaml), whose subscription is unconfirmed: "
        "not written"
    )
    assert not member["written"] and sorted(p.name for p in stacks_dir.glob("Pulumi.*.yaml")) == [
        "Pulumi.store-0001.yaml"
    ]


def test_prune_never_deletes_a_stack_file_changed_since_it_was_read(tmp_path):
    arc_stack(tmp_path, "store-0001", "store-0001", "rg-stores-weu")
    arc_stack(tmp_path, "store-0002", "store-0002", "rg-stores-weu")
    stacks = load_stacks(tmp_path, None, str)
    gone = inventory_of("kind:arc", [], stacks)
    assert [s.stack for s in gone.gone] == ["store-0001", "store-0002"]
    arc_stack(tmp_path, "store-0001", "store-0001-new", "rg-stores-weu")  # a person points it at another cluster
    pruned = prune_gone(gone)
    assert pruned.pruned == (str(tmp_path / "Pulumi.store-0002.yaml"),)
    assert pruned.errors == (
        f"not deleting {tmp_path / 'Pulumi.store-0001.yaml'}: it changed since it was read; run again",
    )
    assert (tmp_path / "Pulumi.store-0001.yaml").exists() and pruned.exit_code == 1


def test_a_subscription_arm_does_not_find_is_no_gone_cluster(examples, azure):
    azure.holds(*(row(kind, name, group) for stack, (kind, name, group) in EXAMPLES.items() if stack != "staging"))
    body = {"error": {"code": "SubscriptionNotFound", "message": f"The subscription '{SUB_A}' could not be found."}}
    azure.answer_arm("aks", "aks-staging-weu", "rg-fleet-staging", (404, body, {}))
    result = inventory("--select", "kind:aks", "--prune", "--format", "json")
    assert result.exit_code == 1, result.output
    [unconfirmed] = json.loads(result.stdout)["unconfirmed"]
    assert unconfirmed["stack"] == "staging" and "404 SubscriptionNotFound" in unconfirmed["reason"]
    assert (examples / "Pulumi.staging.yaml").exists()


def test_a_stack_whose_provider_names_the_subscription_is_in_that_one_not_the_default(stacks_dir, azure):
    """`azure-native:subscriptionId` is where `pulumi up` puts the cluster of a stack that names no
    cluster.subscriptionId: looked in there, found; never taken for gone in the default subscription."""
    write(
        stacks_dir,
        "Pulumi.store-0001.yaml",
        f"config:\n  azure-native:subscriptionId: {SUB_B}\n"
        "  fluxfleet:cluster: {kind: arc, name: store-0001, resourceGroup: rg-stores-weu}\n",
    )
    azure.holds(row("arc", "store-0001", "rg-stores-weu", SUB_B, tags=STORES))
    result = inventory(*SELECT, "--prune", "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["subscriptions"] == [SUB_A, SUB_B] and document["summary"]["inStep"] == 1
    assert (stacks_dir / "Pulumi.store-0001.yaml").exists()


def test_a_moved_cluster_that_arm_still_has_where_the_file_says_is_unconfirmed_not_moved(stacks_dir, azure):
    """Resource Graph shows store-0002 only in rg-stores-neu, but ARM has it where its file says (rg-stores-weu):
    not indexed yet. "Edit the stack file" would point it at another cluster of its name."""
    stores_fleet(stacks_dir, azure)
    azure.answer_arm("arc", "store-0002", "rg-stores-weu", (200, ARC_BODY, {}))
    result = inventory(*SELECT, "--subscription", SUB_A, "--subscription", SUB_B, "--format", "json")
    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    assert document["moved"] == [] and [u["stack"] for u in document["unconfirmed"]] == ["store-0002"]
    assert [g["stack"] for g in document["gone"]] == ["store-0003"]  # still confirmed by its 404
    assert sorted(azure.arm_reads()) == [
        cluster_id("arc", "store-0002", "rg-stores-weu"),
        cluster_id("arc", "store-0003", "rg-stores-weu"),
    ]
