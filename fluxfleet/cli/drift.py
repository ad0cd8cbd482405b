"""`fluxfleet drift`: what differs between git, Azure and the cluster, and its remediation."""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from fluxfleet.cli.options import FleetOption, RunsDirOption, StacksArgument, StacksDirOption
from fluxfleet.cli.output import check_output, stderr, write_report
from fluxfleet.exits import InvalidInput
from fluxfleet.rollout.production import run_journaled
from fluxfleet.inputs import parse_subscription, stack_paths, subscription_of_stack


class DriftFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"
    junit = "junit"


def drift(
    stacks: StacksArgument = None,
    stacks_dir: StacksDirOption = Path("stacks"),
    fmt: Annotated[DriftFormat, typer.Option("--format", help="Report format.")] = DriftFormat.text,
    output: Annotated[Path | None, typer.Option("--output", help="Write the report to this file.")] = None,
    max_concurrency: Annotated[int, typer.Option("--max-concurrency", min=1, help="Stacks checked at once.")] = 4,
    notify: Annotated[
        str | None,
        typer.Option(
            "--notify",
            help="Post a Teams card when something drifted or failed; the webhook URL from env:VARIABLE or "
            "keyvault:VAULT/SECRET (never the URL itself).",
        ),
    ] = None,
    remediate_drift: Annotated[
        bool,
        typer.Option(
            "--remediate",
            help="Then roll the drifted stacks out as `fluxfleet rollout` does (fleet.yaml's stages, concurrency, "
            "Flux gate, failure budget, refusals, approvals, a journal to resume).",
        ),
    ] = False,
    fleet_file: FleetOption = None,
    runs_dir: RunsDirOption = Path(".fluxfleet/runs"),
    subscription: Annotated[
        str | None, typer.Option("--subscription", help="For stacks without cluster.subscriptionId.")
    ] = None,
    reports: Annotated[
        list[str] | None,
        typer.Option("--report", help="FORMAT=FILE: also write this format of the same run (repeatable)."),
    ] = None,
) -> None:
    """For every stack: what differs between git, Azure and the cluster (infrastructure, Flux, secret rotation).

    Exit codes: 0 in sync, 1 a stack could not be checked, 2 invalid input, 3 drift found.
    """
    from datetime import UTC, datetime

    from fluxfleet.automation import AutomationRunner
    from fluxfleet.azure.arm import ArmReader
    from fluxfleet.azure.clouds import in_clouds, stack_clouds
    from fluxfleet.azure.status import AzureError
    from fluxfleet.azure.snapshot_reader import fleet_reader_of_stacks
    from fluxfleet.drift import Status, check_fleet
    from fluxfleet.drift.report import card, render
    from fluxfleet.drift.notify import NotifyError, post_card, resolve_webhook
    from fluxfleet.plan import display_path
    from fluxfleet.runner import RunnerError
    from modules.keyvault import KeyVaultReader

    extra: list[tuple[DriftFormat, Path]] = []
    for item in reports or ():
        name, _, file = item.partition("=")
        if name not in DriftFormat.__members__ or not file:
            stderr(f"fluxfleet drift: --report {item}: expected FORMAT=FILE, FORMAT one of {', '.join(DriftFormat)}")
            raise typer.Exit(2)
        extra.append((DriftFormat(name), Path(file)))
    # Before any preview: an hour of work should not end in a report that cannot be written.
    check_output("drift", "--output", output)
    for _, file in extra:
        check_output("drift", "--report", file)
    subscription = parse_subscription("drift", subscription)
    paths = stack_paths("drift", stacks_dir, stacks)
    if remediate_drift:  # remediation is a rollout: its fleet.yaml is read (and must be valid) before any preview
        from fluxfleet.rollout.orchestrator import load_inputs
        from modules.spec import FLEET_FILE, SpecError

        fleet_path = fleet_file or stacks_dir / FLEET_FILE
        if not fleet_path.is_file():
            stderr(
                f"fluxfleet drift: --remediate rolls the drifted stacks out stage by stage: it needs "
                f"{display_path(fleet_path)} (or --fleet)"
            )
            raise typer.Exit(2)
        try:
            rollout_fleet, fleet_paths = load_inputs(stacks_dir, fleet_path, display_path)
        except SpecError as error:
            raise InvalidInput.of(error) from None
    webhook = None
    if notify is not None:  # resolved first: a wrong reference fails before an hour of previews
        try:
            webhook = resolve_webhook(notify, os.environ, lambda ref: KeyVaultReader().get_secret(ref).value)
        except NotifyError as error:
            stderr(f"fluxfleet drift: --notify: {error}")
            raise typer.Exit(2) from None
    subscription_of = subscription_of_stack(subscription)
    try:  # no usable pulumi CLI or no Azure token: one line, not one per stack and look
        runner = AutomationRunner(Path.cwd())
        arm = in_clouds(ArmReader(), stack_clouds(paths, display_path, subscription_of))  # a reader per cloud
        arm.signed_in_identity()
    except (RunnerError, AzureError) as error:
        stderr(f"fluxfleet drift: {error}")
        raise typer.Exit(1) from None
    # every stack's cluster read at once through Resource Graph; the rest (and what it lacks) through ARM
    reader = fleet_reader_of_stacks(paths, display_path, subscription_of, arm)
    fleet = check_fleet(paths, runner, reader, subscription_of, max_concurrency=max_concurrency, display=display_path)
    if remediate_drift:  # its gate reads Azure as it is after each update, never the snapshot taken before them
        _remediate(fleet, rollout_fleet, fleet_path, fleet_paths, stacks_dir, runs_dir, runner, arm, fmt.value)
    now = datetime.now(UTC)
    color = output is None and fmt is DriftFormat.text and sys.stdout.isatty()
    # Each report written even when another cannot be, and the card still sent: the exit code says what was found.
    write_report("drift", render(fleet, fmt.value, now, color=color), output)
    for extra_format, file in extra:
        write_report("drift", render(fleet, extra_format.value, now), file, "--report")
    if webhook and any(stack.status is not Status.in_sync for stack in fleet.stacks):
        try:
            post_card(webhook, card(fleet))
        except NotifyError as error:
            stderr(f"fluxfleet drift: --notify: {error}")
    raise typer.Exit(fleet.exit_code)


def _remediate(drifted, fleet, fleet_path, paths, stacks_dir, runs_dir, runner, reader, fmt) -> None:
    """`drift --remediate`: a rollout of the drifted stacks (those in a stage), journaled like any other, whose
    outcome per stack goes into the drift report."""
    from fluxfleet.clock import SystemClock
    from fluxfleet.drift import record_remediation, remediation_targets
    from fluxfleet.plan import display_path
    from fluxfleet.rollout.journal import Journal
    from fluxfleet.rollout.orchestrator import Selection, load_specs, new_run
    from modules.spec import SpecError

    selection = Selection(names=remediation_targets(drifted, [n for s in fleet.stages for n in s.stacks], fleet.file))
    stages = selection.plan(fleet)
    if not stages:
        return
    try:
        specs = load_specs([name for s in stages for name in s.stacks], stacks_dir, paths, display_path)
        journal = Journal.create(runs_dir, new_run(fleet, selection, SystemClock().now()))
    except SpecError as error:
        raise InvalidInput.of(error) from None
    except ValueError as error:
        stderr(f"fluxfleet drift: --runs-dir {error}")
        raise typer.Exit(2) from None
    record = run_journaled("drift", journal, specs, fleet, fleet_path, stacks_dir, runner, reader, fmt)
    record_remediation(drifted, record)
