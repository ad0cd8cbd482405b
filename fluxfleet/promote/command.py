"""`fluxfleet promote`'s work, without the command line: its options as one request, checked, then either the
promotion (planned, checked offline, against a checkout and through Azure, written under fleet.yaml's lock) or, with
`--status`, where each stage of the configuration stands. `--apply`'s rollout is the command line's to run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fluxfleet.exits import CommandError, InvalidInput
from fluxfleet.inputs import check_output, parse_sources, parse_subscription, stack_paths
from fluxfleet.promote import Promotion, StageRevision
from modules.spec import Fleet, PinSpec, Stack


@dataclass(frozen=True)
class PromoteRequest:
    config: str  # the Flux configuration whose git ref to promote, or kubernetes / flux-extension (a version)
    to: str | None = None  # the tag, or a commit SHA (with `branch`); needed unless for the status
    branch: str | None = None
    stage: str | None = None  # None: the first stage of the configuration not at `to` yet
    dry_run: bool = False  # the change to fleet.yaml, written nowhere
    force: bool = False  # skip the order and health checks
    sources: tuple[str, ...] = ()  # `--source URL=DIR`
    stacks_dir: Path = Path("stacks")
    fleet_file: Path | None = None  # must be STACKS_DIR/fleet.yaml, where `pulumi up` reads pins
    subscription: str | None = None  # for stacks without cluster.subscriptionId
    output: Path | None = None  # where the command line writes the `--status` report: checked before any read
    apply: bool = False  # the stage's rollout follows: the pin is written only when that rollout can start
    rollback: bool = False  # that rollout rolls back
    fmt: str | None = None  # of the `--status` report (None: not given, text)


@dataclass(frozen=True)
class Promoted:
    """What a promotion did (or, with `dry_run`, would do)."""

    promotion: Promotion  # its `stage` None: every stage runs the ref already, nothing to promote
    fleet_file: str  # fleet.yaml as messages name it
    dry_run: bool = False
    diff: str = ""  # with `dry_run`: the change to fleet.yaml, a unified diff
    unchecked: str | None = None  # with `dry_run`: the stage before, whose health was not read

    @property
    def summary(self) -> str:
        promotion = self.promotion
        was = f"was {promotion.previous}" if promotion.previous else "was not pinned"
        verb = "would promote" if self.dry_run else "promote"
        return f"{verb} {promotion.config} to {promotion.pin} in stage {promotion.stage} ({was})"


@dataclass(frozen=True)
class _Inputs:
    checkouts: dict[str, Path]
    subscription: str | None
    fleet_path: Path
    paths: list[Path]


def _inputs(request: PromoteRequest) -> _Inputs:
    """The options every promotion and status reads, checked in the order a user reads their problems."""
    from modules.spec import FLEET_FILE

    checkouts = parse_sources("promote", list(request.sources))
    subscription = parse_subscription("promote", request.subscription)
    fleet_path = request.fleet_file or request.stacks_dir / FLEET_FILE
    if request.fleet_file is not None and request.fleet_file.resolve() != (request.stacks_dir / FLEET_FILE).resolve():
        where = request.stacks_dir / FLEET_FILE
        raise InvalidInput(f"fluxfleet promote: --fleet: pins belong in {where}, where `pulumi up` reads them")
    return _Inputs(checkouts, subscription, fleet_path, stack_paths("promote", request.stacks_dir, None))


def _fleet_reads(stacks: list[Stack], default: str | None):
    """The fleet reader of each cloud the stacks are in, through Resource Graph (and ARM), once each stack has a
    subscription and the credential signs in (else the one answer every command gives, exit 1)."""
    from fluxfleet.azure.access import require_azure
    from fluxfleet.azure.arm import ArmReader
    from fluxfleet.azure.clouds import clouds_of_stacks, fleet_reads, in_clouds

    reader = in_clouds(ArmReader(), clouds_of_stacks(stacks, default))
    subscriptions = {stack.name: stack.spec.cluster.subscription_id or default for stack in stacks}
    require_azure("promote", subscriptions, reader, option=True)
    return fleet_reads(reader)


def promotion_status_of(request: PromoteRequest) -> list[StageRevision]:
    """`--status`: per stage of the configuration, the ref it pins, which stacks run it, which lag and which could
    not be read. InvalidInput for what cannot be used; CommandError (exit 1) when Azure cannot be read at all."""
    from fluxfleet.azure.account import default_subscription
    from fluxfleet.azure.status import AzureError
    from fluxfleet.plan import display_path
    from fluxfleet.promote import platform_status, promotion_status, stages_of
    from modules.spec import SpecError, load_fleet, load_stacks, report_name
    from modules.spec.fleet import PLATFORM_PINS

    ignored = (
        ("--to", request.to),
        ("--branch", request.branch),
        ("--stage", request.stage),
        ("--dry-run", request.dry_run),
        ("--force", request.force),
        ("--apply", request.apply),
        ("--rollback", request.rollback),
        ("--source", request.sources),
    )
    if given := [option for option, value in ignored if value]:  # refused, never ignored
        raise InvalidInput(f"fluxfleet promote: --status only shows where each stage stands: drop {', '.join(given)}")
    check_output("promote", "--output", request.output)
    inputs = _inputs(request)
    try:
        loaded = {stack.name: stack for stack in load_stacks(inputs.paths, display_path)}
        names = sorted(report_name(path) for path in inputs.paths)
        fleet = load_fleet(inputs.fleet_path, names, display_path(inputs.fleet_path))
        stages_of(fleet, request.config, None, loaded)
    except SpecError as error:
        raise InvalidInput.of(error, "fluxfleet promote: ") from None
    default = inputs.subscription or default_subscription()
    staged = {name for stage in fleet.stages for name in stage.stacks}
    if request.config in PLATFORM_PINS:
        kubernetes = request.config == "kubernetes"
        read = [s for s in loaded.values() if s.name in staged and (s.spec.cluster.is_aks or not kubernetes)]
    else:
        runs_it = [stack for stack in loaded.values() if request.config in stack.spec.flux.configurations]
        read = [stack for stack in runs_it if stack.name in staged]  # the stacks whose revision it shows
    try:
        if request.config in PLATFORM_PINS:
            return platform_status(request.config, fleet, loaded, _fleet_reads(read, default), default)
        return promotion_status(request.config, fleet, loaded, _fleet_reads(read, default), default)
    except AzureError as error:
        raise CommandError(f"fluxfleet promote: {error}") from None


def promote_config(request: PromoteRequest) -> Promoted:
    """The pin of `to` for the next stage of the configuration (or `stage`), checked and written to fleet.yaml (with
    `dry_run`, only shown). InvalidInput for what cannot be used; CommandError (exit 1) for a refused promotion (a
    line per reason), Azure unread or fleet.yaml not written."""
    from fluxfleet.azure.account import default_subscription
    from fluxfleet.azure.status import AzureError
    from fluxfleet.plan import display_path
    from fluxfleet.promote import (
        check_health,
        check_installed,
        check_order,
        check_source,
        check_versions,
        plan_promotion,
    )
    from modules.spec import SpecError, load_fleet, load_stacks, report_name
    from modules.spec.fleet import PLATFORM_PINS, pin_of_option, platform_pin_of_option

    if request.output is not None:  # refused, never ignored: a promotion's report is its lines on stdout
        raise InvalidInput("fluxfleet promote: --output writes the --status report: add --status, or drop --output")
    if request.fmt is not None:
        raise InvalidInput("fluxfleet promote: --format is the --status report's: add --status, or drop --format")
    if request.rollback and not request.apply:
        raise InvalidInput("fluxfleet promote: --rollback rolls back the rollout --apply runs: add --apply")
    inputs = _inputs(request)
    if request.to is None:
        raise InvalidInput("fluxfleet promote: --to REF is needed (or --status)")
    try:
        if request.config in PLATFORM_PINS:
            pin: PinSpec | str = platform_pin_of_option(request.config, request.to, request.branch)
        else:
            pin = pin_of_option(request.config, request.to, request.branch)
        loaded = {stack.name: stack for stack in load_stacks(inputs.paths, display_path)}
        names = sorted(report_name(path) for path in inputs.paths)
        fleet = load_fleet(inputs.fleet_path, names, display_path(inputs.fleet_path))
        promotion = plan_promotion(fleet, inputs.fleet_path, request.config, pin, request.stage, loaded)
    except SpecError as error:
        raise InvalidInput.of(error, "fluxfleet promote: ") from None
    if promotion.stage is None:
        return Promoted(promotion, fleet.file, request.dry_run)
    if not request.force:
        check_order(promotion, fleet)  # offline: --dry-run is refused as the real command would be
    check_versions(promotion, fleet, loaded)  # offline, forced too: AKS would refuse the update
    if inputs.checkouts:
        check_source(promotion, fleet, loaded, inputs.checkouts)
    if request.apply and not (request.dry_run or promotion.problems):
        _check_rollout_can_start(promotion, fleet, loaded)
    if not (request.force or request.dry_run or promotion.problems) and promotion.before is not None:
        default = inputs.subscription or default_subscription()
        before = next(stage for stage in fleet.stages if stage.name == promotion.before)
        read = [loaded[name] for name in before.stacks if name in loaded]  # the stacks whose health decides
        try:
            check_health(promotion, fleet, loaded, _fleet_reads(read, default), default)
        except AzureError as error:
            raise CommandError(f"fluxfleet promote: {error}") from None
    if not (request.force or request.dry_run or promotion.problems) and promotion.config in PLATFORM_PINS:
        default = inputs.subscription or default_subscription()
        target = next(stage for stage in fleet.stages if stage.name == promotion.stage)
        kubernetes = request.config == "kubernetes"  # an Arc cluster's version is its own: not read for it
        read = [loaded[n] for n in target.stacks if n in loaded and (loaded[n].spec.cluster.is_aks or not kubernetes)]
        try:
            check_installed(promotion, fleet, loaded, _fleet_reads(read, default), default)
        except AzureError as error:
            raise CommandError(f"fluxfleet promote: {error}") from None
    if not (request.dry_run or promotion.problems):
        _write(promotion, inputs.fleet_path, fleet.file, ordered=not request.force)
    if promotion.problems:
        raise CommandError(*(f"fluxfleet promote: refused: {problem}" for problem in promotion.problems))
    if not request.dry_run:
        return Promoted(promotion, fleet.file)
    unchecked = promotion.before if promotion.before and not request.force else None
    return Promoted(promotion, fleet.file, True, _diff(promotion, inputs.fleet_path, fleet.file), unchecked)


def _check_rollout_can_start(promotion: Promotion, fleet: Fleet, loaded: dict[str, Stack]) -> None:
    """`--apply` promises the stage's rollout: no pin is written when it could not start. The rollout's own line
    first (what is missing, every way to give it), then that nothing was written."""
    from fluxfleet.rollout.command import rollout_can_start

    stage = next(stage for stage in fleet.stages if stage.name == promotion.stage)
    try:
        rollout_can_start({name: loaded[name].spec for name in stage.stacks if name in loaded})
    except CommandError as error:
        refused = f"fluxfleet promote: refused: {promotion.rollout} cannot start: {fleet.file} not written"
        raise CommandError(*error.lines, refused, exit_code=error.exit_code) from None


def _write(promotion: Promotion, fleet_path: Path, display: str, *, ordered: bool) -> None:
    """Under fleet.yaml's writer lock, to the file as it is now; the order checked again there (`problems`)."""
    from fluxfleet.fleet_file import FleetFileBusy
    from fluxfleet.promote import write_promotion
    from modules.spec import SpecError

    try:
        write_promotion(promotion, fleet_path, display, ordered=ordered)
    except SpecError as error:
        raise InvalidInput.of(error, "fluxfleet promote: ") from None
    except (FleetFileBusy, OSError) as error:
        raise CommandError(f"fluxfleet promote: {display}: not written: {error}") from None


def _diff(promotion: Promotion, fleet_path: Path, display: str) -> str:
    """fleet.yaml as it is against fleet.yaml with the pin, a unified diff."""
    import difflib

    from modules.spec import read_text

    assert promotion.fleet_text is not None
    before = read_text(fleet_path, display).splitlines(keepends=True)
    return "".join(difflib.unified_diff(before, promotion.fleet_text.splitlines(keepends=True), display, display))
