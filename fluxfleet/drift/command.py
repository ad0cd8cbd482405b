"""`fluxfleet drift`'s work, callable without the command line: its options as one `DriftRequest`, everything
they name checked before the first preview (an hour of previews should not end in a report that cannot be written
or a webhook that cannot be read), then the previews and looks of every stack, `--remediate`'s rollout, the
reports, and the Teams card."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from fluxfleet.azure.status import AzureReader
from fluxfleet.drift import FleetDrift, Status, check_fleet, record_remediation, remediation_targets
from fluxfleet.drift.notify import NotifyError, post_card, resolve_webhook
from fluxfleet.drift.report import FORMATS, card, render
from fluxfleet.exits import CommandError, ExitCode, InvalidInput
from fluxfleet.inputs import (
    check_output,
    parse_subscription,
    run_store_of,
    stack_paths,
    subscription_of_stack,
    unusable_store,
)
from fluxfleet.runstate.store import StoreError
from fluxfleet.rollout.orchestrator import Selection, load_inputs, load_specs, new_run
from fluxfleet.runner import RunnerError, StackRunner, require_pulumi_cli
from modules.spec import FLEET_FILE, Fleet, SpecError, Stack


@dataclass(frozen=True)
class DriftRequest:
    """`fluxfleet drift`'s options, as typed values (`--report` and `--subscription` as given: checked here)."""

    stacks: tuple[str, ...] = ()  # none: every stack file of stacks_dir
    stacks_dir: Path = Path("stacks")
    fmt: str = "text"  # one of report.FORMATS
    output: Path | None = None  # where the command line writes the report: checked before any preview
    reports: tuple[str, ...] = ()  # --report FORMAT=FILE
    max_concurrency: int = 4
    notify: str | None = None  # where the webhook URL is: env:VARIABLE or keyvault:VAULT/SECRET
    remediate: bool = False
    fleet_file: Path | None = None  # default: STACKS_DIR/fleet.yaml
    runs_dir: Path | None = None  # default: Pulumi's azblob container, else .fluxfleet/runs
    subscription: str | None = None  # for stacks without cluster.subscriptionId
    color: bool = False  # the text report in colour (stdout is a terminal)


@dataclass(frozen=True)
class Remediation:
    """What `--remediate` rolls out with: fleet.yaml, read (and valid) before any preview."""

    fleet: Fleet
    fleet_path: Path
    paths: dict[str, Path]  # stack name -> its file


@dataclass(frozen=True)
class CheckedDrift:
    """A request's options checked and read: what the run needs, nothing left to refuse."""

    paths: list[Path]  # the stack files
    subscription: str | None
    extra_reports: tuple[tuple[str, Path], ...]  # (format, file)
    remediation: Remediation | None
    webhook: str | None = field(default=None, repr=False)  # the URL is a credential


@dataclass(frozen=True)
class Report:
    """A report to write: to `path` (stdout for None), given with `option`."""

    text: str
    path: Path | None
    option: str = "--output"


@dataclass(frozen=True)
class DriftResult:
    fleet: FleetDrift
    reports: tuple[Report, ...]  # --output's first, then each --report
    webhook: str | None = field(default=None, repr=False)

    @property
    def exit_code(self) -> ExitCode:
        """0 in sync, 1 a stack could not be checked, 2 invalid input, 3 drift found."""
        return ExitCode(self.fleet.exit_code)


def check_drift(request: DriftRequest) -> CheckedDrift:
    """Everything the options name, checked before the first preview: report formats and files, the subscription,
    the stack files, fleet.yaml for `--remediate`, the webhook for `--notify`. Invalid input raises `InvalidInput`."""
    from fluxfleet.plan import display_path

    extra_reports = tuple(_extra_report(item) for item in request.reports)
    check_output("drift", "--output", request.output)
    for _, file in extra_reports:
        check_output("drift", "--report", file)
    subscription = parse_subscription("drift", request.subscription)
    paths = stack_paths("drift", request.stacks_dir, list(request.stacks))
    fleet_path = request.fleet_file or request.stacks_dir / FLEET_FILE
    if request.remediate and not fleet_path.is_file():
        raise InvalidInput(
            f"fluxfleet drift: --remediate rolls the drifted stacks out stage by stage: it needs "
            f"{display_path(fleet_path)} (or --fleet)"
        )
    # A webhook in the environment is an option to check; one in Key Vault is read once Azure can be (`run_drift`).
    webhook = None if _in_key_vault(request.notify) else _webhook(request.notify)
    try:  # before fleet.yaml and the stacks are read: every look needs the pulumi CLI
        require_pulumi_cli()
    except RunnerError as error:
        raise CommandError(f"fluxfleet drift: {error}") from None
    remediation = None
    if request.remediate:  # remediation is a rollout: its fleet.yaml is read (and must be valid) before any preview
        try:
            fleet, fleet_paths = load_inputs(request.stacks_dir, fleet_path, display_path)
        except SpecError as error:
            raise InvalidInput.of(error) from None
        remediation = Remediation(fleet, fleet_path, fleet_paths)
    return CheckedDrift(paths, subscription, extra_reports, remediation, webhook)


def _extra_report(item: str) -> tuple[str, Path]:
    """`--report FORMAT=FILE`."""
    name, _, file = item.partition("=")
    if name not in FORMATS or not file:
        raise InvalidInput(
            f"fluxfleet drift: --report {item}: expected FORMAT=FILE, FORMAT one of {', '.join(FORMATS)}"
        )
    return name, Path(file)


def _in_key_vault(reference: str | None) -> bool:
    return reference is not None and reference.partition(":")[0] == "keyvault"


def _webhook(reference: str | None) -> str | None:
    """The webhook URL `--notify` refers to: from the environment or Key Vault."""
    from modules.keyvault import KeyVaultReader

    if reference is None:
        return None
    try:
        return resolve_webhook(reference, os.environ, lambda ref: KeyVaultReader().get_secret(ref).value)
    except NotifyError as error:
        raise InvalidInput(f"fluxfleet drift: --notify: {error}") from None


def run_drift(request: DriftRequest) -> DriftResult:
    """The request checked; every stack previewed and looked at in Azure; with `--remediate`, the drifted stacks
    rolled out; then the reports. Without the pulumi CLI or an Azure token: `CommandError` (exit 1), one line."""
    from fluxfleet.azure.snapshot_reader import fleet_reader_of_stacks
    from fluxfleet.plan import display_path

    checked = check_drift(request)
    subscription_of = subscription_of_stack(checked.subscription)
    runner, arm = connect(checked.paths, subscription_of)
    if _in_key_vault(request.notify):  # resolved before an hour of previews, once Azure can be read
        checked = replace(checked, webhook=_webhook(request.notify))
    # every stack's cluster read at once through Resource Graph; the rest (and what it lacks) through ARM
    reader = fleet_reader_of_stacks(checked.paths, display_path, subscription_of, arm)
    fleet = check_fleet(
        checked.paths, runner, reader, subscription_of, max_concurrency=request.max_concurrency, display=display_path
    )
    if checked.remediation is not None:  # its gate reads Azure as it is after each update, never the snapshot
        remediate(fleet, checked.remediation, request, runner, arm)
    now = datetime.now(UTC)
    reports = (
        Report(render(fleet, request.fmt, now, color=request.color), request.output),
        *(Report(render(fleet, fmt, now), file, "--report") for fmt, file in checked.extra_reports),
    )
    return DriftResult(fleet, reports, checked.webhook)


def connect(paths: list[Path], subscription_of: Callable[[Stack], str | None]) -> tuple[StackRunner, AzureReader]:
    """The pulumi CLI and an ARM reader for the clouds of the stacks, a subscription for each (valid) stack, signed
    in. Without any of them: one line, exit 1, not one per stack and look; nothing read before."""
    from fluxfleet.automation import AutomationRunner
    from fluxfleet.azure.access import require_azure
    from fluxfleet.azure.arm import ArmReader
    from fluxfleet.azure.clouds import SubscriptionClouds, in_clouds, stack_places
    from fluxfleet.plan import display_path

    try:
        runner = AutomationRunner(Path.cwd())
    except RunnerError as error:
        raise CommandError(f"fluxfleet drift: {error}") from None
    places = stack_places(paths, display_path, subscription_of)
    arm = in_clouds(ArmReader(), SubscriptionClouds.of(places.values()))  # a reader per cloud
    require_azure("drift", {name: subscription for name, (subscription, _) in places.items()}, arm, option=True)
    return runner, arm


def remediate(
    drifted: FleetDrift, remediation: Remediation, request: DriftRequest, runner: StackRunner, reader: AzureReader
) -> None:
    """`drift --remediate`: a rollout of the drifted stacks (those in a stage), journaled like any other, whose
    outcome per stack goes into the drift report."""
    from fluxfleet.clock import SystemClock
    from fluxfleet.plan import display_path
    from fluxfleet.rollout.journal import Journal
    from fluxfleet.rollout.production import run_journaled

    fleet = remediation.fleet
    selection = Selection(names=remediation_targets(drifted, [n for s in fleet.stages for n in s.stacks], fleet.file))
    stages = selection.plan(fleet)
    if not stages:
        return
    try:
        names = [name for stage in stages for name in stage.stacks]
        specs = load_specs(names, request.stacks_dir, remediation.paths, display_path)
        store = run_store_of("drift", request.runs_dir)
        journal = Journal.create(store, new_run(fleet, selection, SystemClock().now()))
    except SpecError as error:
        raise InvalidInput.of(error) from None
    except StoreError as error:
        raise unusable_store("drift", store, error) from None
    record = run_journaled(
        "drift", journal, specs, fleet, remediation.fleet_path, request.stacks_dir, runner, reader, request.fmt
    )
    record_remediation(drifted, record)


def notify_drift(result: DriftResult, warn: Callable[[str], None]) -> None:
    """`--notify`: the Teams card, when a stack drifted or could not be checked. A card that cannot be sent is a
    line for `warn`, never a change of the exit code (the reports say what was found)."""
    if result.webhook and any(stack.status is not Status.in_sync for stack in result.fleet.stacks):
        try:
            post_card(result.webhook, card(result.fleet))
        except NotifyError as error:
            warn(f"fluxfleet drift: --notify: {error}")
