"""`fluxfleet status`'s work through its package, without typer: options refused with their one line, the stages from
fleet.yaml, Azure unread as exit 1."""

from __future__ import annotations

import pytest

from fluxfleet.azure import fleet_graph
from fluxfleet.azure.status import AzureError
from fluxfleet.exits import CommandError, ExitCode, InvalidInput
from fluxfleet.status.command import StatusRequest, fleet_status_of
from fluxfleet.status.model import Health
from tests.conftest import ROOT
from tests.fluxfleet.status.test_status import SUB, FakeFleet, healthy_fleet, signed_in

STACKS = ROOT / "stacks"


@pytest.fixture
def azure(monkeypatch) -> FakeFleet:
    fake = FakeFleet(healthy_fleet())
    monkeypatch.setattr(fleet_graph, "FleetGraphReader", lambda graph, arm, clock=None: fake)
    signed_in(monkeypatch)
    return fake


def test_a_whole_status_runs_without_the_command_line(azure):
    status = fleet_status_of(StatusRequest(("prod-weu", "dev"), STACKS, subscription=SUB))
    assert [(stack.stack, stack.stage, stack.health) for stack in status.stacks] == [
        ("dev", "dev", Health.healthy),
        ("prod-weu", "production", Health.healthy),
    ]
    assert status.exit_code == ExitCode.OK and len(azure.asked) == 1


@pytest.mark.parametrize(
    ("request_", "line"),
    [
        (
            StatusRequest(stacks_dir=STACKS, subscription="not-a-guid"),
            "fluxfleet status: --subscription: 'not-a-guid': not a subscription id",
        ),
        (
            StatusRequest(stacks_dir=STACKS / "nowhere", subscription=SUB),
            f"fluxfleet status: {STACKS}/nowhere: no such directory",
        ),
    ],
)
def test_an_option_that_cannot_be_used_is_refused_with_its_line(azure, request_, line):
    with pytest.raises(InvalidInput) as raised:
        fleet_status_of(request_)
    assert raised.value.exit_code == ExitCode.INVALID_INPUT and raised.value.lines[0].startswith(line)
    assert azure.asked == []


def test_a_fleet_file_that_is_not_there_is_refused_when_named(azure, tmp_path):
    with pytest.raises(InvalidInput) as raised:
        fleet_status_of(StatusRequest(stacks_dir=STACKS, fleet_file=tmp_path / "fleet.yaml", subscription=SUB))
    [line] = raised.value.lines
    assert str(tmp_path / "fleet.yaml") in line and azure.asked == []


def test_azure_unread_ends_the_command_with_exit_1(monkeypatch):
    class Unreadable:
        def read(self, targets):
            raise AzureError("cannot read the fleet: 403 AuthorizationFailed")

    monkeypatch.setattr(fleet_graph, "FleetGraphReader", lambda graph, arm, clock=None: Unreadable())
    signed_in(monkeypatch)
    with pytest.raises(CommandError) as raised:
        fleet_status_of(StatusRequest(stacks_dir=STACKS, subscription=SUB))
    assert raised.value.exit_code == ExitCode.FAILED
    assert raised.value.lines == ("fluxfleet status: cannot read the fleet: 403 AuthorizationFailed",)
