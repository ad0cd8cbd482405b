"""`fluxfleet inventory`'s work through its package, without typer: each refused option or combination is its one
line before Azure is asked anything; a whole inventory, written as asked, through the real readers."""

from __future__ import annotations

from pathlib import Path

import pytest

import fluxfleet.clock as clock_module
from fluxfleet.exits import ExitCode, InvalidInput
from fluxfleet.inventory.command import InventoryRequest, take_inventory_of
from fluxfleet.simulation import FakeClock
from tests.fluxfleet import test_inventory as inventory_tests
from tests.fluxfleet.test_inventory import SUB_A, SUB_B, TODAY, stores_fleet

SELECT = "kind:arc rg:rg-stores-* tag:fleet=stores"


@pytest.fixture
def stacks_dir(tmp_path, monkeypatch) -> Path:
    """An empty stacks directory with the edge-store profile; az's default subscription is SUB_A; today is TODAY."""
    directory = tmp_path / "stacks"
    inventory_tests.write(directory, "profiles/edge-store.yaml", "config:\n  fluxfleet:flux:\n    configurations: {}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", SUB_A)
    monkeypatch.setattr(clock_module, "SystemClock", lambda: FakeClock(TODAY))
    return directory


@pytest.fixture
def azure(monkeypatch) -> inventory_tests.Azure:
    return inventory_tests.Azure(monkeypatch)


@pytest.mark.parametrize(
    ("changes", "line"),
    [
        ({"write": True}, "fluxfleet inventory: --write needs --profile NAME: the profile the new stack files use"),
        ({"select": "kind:gke"}, "fluxfleet inventory: --select: 'kind:gke': "),
        ({"subscriptions": ("not-a-guid",)}, "fluxfleet inventory: --subscription: 'not-a-guid': "),
        ({"profile": "missing"}, "fluxfleet inventory: --profile: 'missing': no profile stacks/profiles/missing.yaml"),
        ({"stacks_dir": Path("nowhere")}, "fluxfleet inventory: nowhere: no such directory"),
    ],
)
def test_a_refused_option_is_one_line_before_azure_is_asked(stacks_dir, azure, changes, line):
    request = InventoryRequest(**{"select": "kind:arc", "stacks_dir": Path("stacks"), **changes})
    with pytest.raises(InvalidInput) as raised:
        take_inventory_of(request)
    [said] = raised.value.lines
    assert said.startswith(line), said
    assert raised.value.exit_code == ExitCode.INVALID_INPUT and azure.server.bodies == []


def test_a_whole_inventory_runs_and_writes_without_the_command_line(stacks_dir, azure):
    stores_fleet(stacks_dir, azure)
    request = InventoryRequest(SELECT, "edge-store", (SUB_A, SUB_B), Path("stacks"), write=True)
    result = take_inventory_of(request)
    assert [member.stack for member in result.new] == ["store-0042", "store-0043"]
    assert [stack.stack for stack in result.gone] == ["store-0003"]
    assert result.written == ("stacks/Pulumi.store-0042.yaml", "stacks/Pulumi.store-0043.yaml")
    assert (stacks_dir / "Pulumi.store-0042.yaml").is_file()
    assert (stacks_dir / "Pulumi.store-0003.yaml").is_file() and result.pruned == ()  # pruned only when asked
    assert result.exit_code == ExitCode.FOUND  # differences, also when --write acted on them
