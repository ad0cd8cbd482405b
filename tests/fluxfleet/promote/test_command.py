"""`fluxfleet promote`'s work through its package, without typer: each refused option is its one line and exit 2; a
promotion past a stage that does not pin the ref is refused (exit 1), --dry-run too; a whole promotion writes the pin,
a dry run only shows it; --status reads where each stage stands."""

from __future__ import annotations

from pathlib import Path

import pytest

from fluxfleet.exits import CommandError, ExitCode, InvalidInput
from fluxfleet.promote.command import PromoteRequest, promote_config, promotion_status_of
from tests.fluxfleet.status.test_status import SUB

FLEET = Path("stacks") / "fleet.yaml"


def request(**options) -> PromoteRequest:
    return PromoteRequest(**{"config": "platform", "subscription": SUB, **options})


@pytest.mark.parametrize(
    ("options", "line"),
    [
        ({}, "fluxfleet promote: --to REF is needed (or --status)"),
        (
            {"to": "v1.4.0", "fleet_file": Path("elsewhere.yaml")},
            "fluxfleet promote: --fleet: pins belong in stacks/fleet.yaml, where `pulumi up` reads them",
        ),
        ({"to": "v1.4.0", "subscription": "not-a-guid"}, "fluxfleet promote: --subscription: 'not-a-guid': "),
        ({"to": "v1.4.0", "sources": ("no-equals-sign",)}, "fluxfleet promote: --source no-equals-sign: expected"),
        ({"to": "v1.4.0", "stage": "nope"}, "fluxfleet promote: "),
        (
            {"to": "v1.4.0", "output": Path("promotion.txt")},
            "fluxfleet promote: --output writes the --status report: add --status, or drop --output",
        ),
        (
            {"to": "v1.4.0", "fmt": "json"},
            "fluxfleet promote: --format is the --status report's: add --status, or drop --format",
        ),
        ({"to": "v1.4.0", "rollback": True}, "fluxfleet promote: --rollback rolls back the rollout --apply runs"),
    ],
)
def test_a_refused_option_is_one_line_and_exit_2_with_nothing_written(project, azure, options, line):
    before = FLEET.read_text()
    with pytest.raises(InvalidInput) as raised:
        promote_config(request(**options))
    [said] = raised.value.lines
    assert said.startswith(line), said
    assert raised.value.exit_code == ExitCode.INVALID_INPUT
    assert FLEET.read_text() == before and azure.asked == []


@pytest.mark.parametrize("dry_run", [False, True])
def test_past_a_stage_that_does_not_pin_the_ref_is_refused_dry_run_too(project, azure, dry_run):
    before = FLEET.read_text()
    with pytest.raises(CommandError) as raised:
        promote_config(request(to="v1.4.0", stage="staging", dry_run=dry_run))
    assert raised.value.exit_code == ExitCode.FAILED
    assert raised.value.lines == (
        "fluxfleet promote: refused: stage dev pins no ref for platform, not tag v1.4.0: promote it there first",
    )
    assert FLEET.read_text() == before


def test_a_whole_promotion_runs_without_the_command_line(project, azure):
    dry = promote_config(request(to="v1.4.0", dry_run=True))
    assert dry.summary == "would promote platform to tag v1.4.0 in stage dev (was not pinned)"
    assert "+      platform: {tag: v1.4.0}" in dry.diff.splitlines() and dry.unchecked is None  # dev is first
    before = FLEET.read_text()
    promoted = promote_config(request(to="v1.4.0"))
    assert promoted.summary == "promote platform to tag v1.4.0 in stage dev (was not pinned)"
    assert (promoted.fleet_file, promoted.promotion.rollout) == ("stacks/fleet.yaml", "fluxfleet rollout --stage dev")
    assert FLEET.read_text() != before and "platform: {tag: v1.4.0}" in FLEET.read_text()


def test_status_reads_where_each_stage_stands(project, azure):
    promote_config(request(to="v1.4.0"))  # dev pinned; dev's cluster still runs main
    stages = {stage.stage: stage for stage in promotion_status_of(request(to=None))}
    assert list(stages) == ["dev", "staging", "production"]
    assert (stages["dev"].pinned, stages["dev"].running, [lag.stack for lag in stages["dev"].lagging]) == (
        "tag v1.4.0",
        0,
        ["dev"],
    )


def test_status_checks_its_output_before_anything_is_read(project, azure):
    with pytest.raises(InvalidInput) as raised:
        promotion_status_of(request(output=project / "missing" / "status.md"))
    [said] = raised.value.lines
    assert said.startswith(f"fluxfleet promote: --output {project / 'missing' / 'status.md'}: "), said
    assert azure.asked == []


@pytest.mark.parametrize("force", [True, False], ids=["force", "ordered"])
def test_apply_writes_no_pin_when_the_rollout_it_promises_could_not_start(project, azure, monkeypatch, force):
    monkeypatch.setenv("PATH", str(project / "no-bin"))  # no pulumi
    before = FLEET.read_bytes()
    with pytest.raises(CommandError) as raised:
        promote_config(request(to="v1.4.0", force=force, apply=True))
    assert raised.value.exit_code == ExitCode.FAILED
    assert raised.value.lines == (
        "fluxfleet rollout: no `pulumi` CLI on PATH: install it (https://www.pulumi.com/docs/install/)",
        "fluxfleet promote: refused: fluxfleet rollout --stage dev cannot start: stacks/fleet.yaml not written",
    )
    assert FLEET.read_bytes() == before
    promote_config(request(to="v1.4.0", force=force))  # without --apply, nothing is promised: it is written
    assert FLEET.read_bytes() != before


def test_status_refuses_the_options_of_a_promotion_it_would_ignore(project, azure):
    with pytest.raises(InvalidInput) as raised:
        promotion_status_of(request(to="v1.4.0", dry_run=True, apply=True, sources=("u=d",)))
    assert raised.value.lines == (
        "fluxfleet promote: --status only shows where each stage stands: drop --to, --dry-run, --apply, --source",
    )
    assert azure.asked == []
