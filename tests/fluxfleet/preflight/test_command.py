"""`fluxfleet preflight`'s work through its package, without typer: options refused with their one line; a whole
preflight against ARM bodies served through azure-core's transport."""

from __future__ import annotations

import pytest

from fluxfleet.exits import ExitCode, InvalidInput
from fluxfleet.preflight import Outcome
from fluxfleet.preflight.command import PreflightRequest, run_preflight
from tests.conftest import ROOT
from tests.fluxfleet.test_preflight_cli import SUB

STACKS = ROOT / "stacks"


def test_a_whole_preflight_runs_without_the_command_line(azure):
    fleet = run_preflight(PreflightRequest(("dev", "edge-store-001"), STACKS, SUB))
    assert [(stack.stack, stack.subscription_id) for stack in fleet.stacks] == [("dev", SUB), ("edge-store-001", SUB)]
    assert [c.id for stack in fleet.stacks for c in stack.checks if c.outcome is Outcome.failed] == []
    assert fleet.exit_code == ExitCode.OK


def test_a_check_that_fails_is_the_fleets_exit_1(azure):
    azure.aks = None  # the dev cluster is not there
    fleet = run_preflight(PreflightRequest(("dev",), STACKS, SUB))
    assert fleet.exit_code == ExitCode.FAILED


@pytest.mark.parametrize(
    ("request_", "line"),
    [
        (PreflightRequest(("dev",), STACKS, "not-a-guid"), "fluxfleet preflight: --subscription: 'not-a-guid': "),
        (PreflightRequest((), STACKS / "nowhere", SUB), f"fluxfleet preflight: {STACKS}/nowhere: no such directory"),
    ],
)
def test_an_option_that_cannot_be_used_is_refused_with_its_line(azure, request_, line):
    with pytest.raises(InvalidInput) as raised:
        run_preflight(request_)
    [said] = raised.value.lines
    assert said.startswith(line) and raised.value.exit_code == ExitCode.INVALID_INPUT
