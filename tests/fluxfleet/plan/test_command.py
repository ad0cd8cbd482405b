"""`fluxfleet plan`'s work through its package, without typer: each refused option names itself and exits 2, and an
accepted request plans the stacks it names."""

from __future__ import annotations


import pytest

from fluxfleet.exits import ExitCode, InvalidInput
from fluxfleet.plan.command import PlanRequest, plan_inputs, run_plan
from tests.conftest import ROOT

STACKS = ROOT / "stacks"


def refusal(request: PlanRequest) -> InvalidInput:
    with pytest.raises(InvalidInput) as raised:
        plan_inputs(request)
    assert raised.value.exit_code == ExitCode.INVALID_INPUT
    return raised.value


def test_a_policy_config_that_names_no_policy_is_refused_naming_file_and_key(tmp_path):
    levels = tmp_path / "levels.yaml"
    levels.write_text("flux-prnue: mandatory\n")
    error = refusal(PlanRequest(stacks_dir=STACKS, policy_config=levels))
    assert error.lines == (
        f"fluxfleet plan: --policy-config {levels}: flux-prnue: unknown policy (did you mean 'flux-prune'?)",
    )


def test_a_source_without_its_checkout_is_refused():
    error = refusal(PlanRequest(stacks_dir=STACKS, sources=("https://example.com/repo",)))
    assert error.lines == (
        "fluxfleet plan: --source https://example.com/repo: expected URL=DIR with an existing directory",
    )


def test_a_stacks_dir_that_is_not_there_is_refused(tmp_path):
    error = refusal(PlanRequest(stacks_dir=tmp_path / "nowhere"))
    assert error.lines == (f"fluxfleet plan: {tmp_path / 'nowhere'}: no such directory",)


def test_an_accepted_request_reads_its_options_and_plans_the_stacks_it_names(tmp_path):
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    levels = tmp_path / "levels.yaml"
    levels.write_text("flux-prune: disabled\n")
    request = PlanRequest(("dev",), STACKS, (f"https://example.com/repo={checkout}",), levels, jobs=None)
    inputs = plan_inputs(request)
    assert inputs.paths == [STACKS / "Pulumi.dev.yaml"]
    assert inputs.checkouts == {"https://example.com/repo": checkout}
    assert dict(inputs.policy_levels) == {"flux-prune": "disabled"}
    assert inputs.jobs >= 1  # one per core when not given


def test_a_whole_plan_runs_without_the_command_line():
    planned = []
    fleet = run_plan(plan_inputs(PlanRequest(("dev", "staging"), STACKS, jobs=1)), on_planned=planned.append)
    assert [stack.stack for stack in fleet.stacks] == ["dev", "staging"] == [stack.stack for stack in planned]
    assert fleet.exit_code == ExitCode.OK and not any(stack.errors for stack in fleet.stacks)
