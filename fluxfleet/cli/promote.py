"""`fluxfleet promote`: pin a Flux configuration's ref for its next stage, or show where it stands."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from fluxfleet.cli.options import FleetOption, RollbackOption, SourceOption, StacksDirOption
from fluxfleet.cli.output import stderr
from fluxfleet.cli.rollout import rollout
from fluxfleet.exits import InvalidInput
from fluxfleet.inputs import parse_sources, parse_subscription, stack_paths


class PromoteFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


def promote(
    config: Annotated[str, typer.Argument(help="The Flux configuration whose git ref to promote.")],
    to: Annotated[
        str | None, typer.Option("--to", help="The tag, or a commit SHA (with --branch), to promote.")
    ] = None,
    branch: Annotated[str | None, typer.Option("--branch", help="The branch of a commit (the API needs it).")] = None,
    stage: Annotated[str | None, typer.Option("--stage", help="Default: the first stage not at --to yet.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the change to fleet.yaml; write nothing.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Skip the order and health checks (no Azure read).")] = False,
    apply: Annotated[
        bool, typer.Option("--apply", help="Then run the stage's rollout (as `fluxfleet rollout`).")
    ] = False,
    rollback: RollbackOption = False,
    source: SourceOption = None,
    stacks_dir: StacksDirOption = Path("stacks"),
    fleet_file: FleetOption = None,
    subscription: Annotated[
        str | None, typer.Option("--subscription", help="For stacks without cluster.subscriptionId.")
    ] = None,
    status: Annotated[
        bool, typer.Option("--status", help="Per stage: its pinned ref, how many stacks run it, which lag behind.")
    ] = False,
    fmt: Annotated[PromoteFormat, typer.Option("--format", help="For --status.")] = PromoteFormat.text,
) -> None:
    """Pin a Flux configuration's git ref in fleet.yaml for the next of its stages (those with a stack that declares
    it) that does not run it yet (or --stage), keeping the rest of the file as written; then print the rollout to
    run. Refused past a stage that does not pin the ref yet (--dry-run too) or is not healthy (read through Azure
    Resource Graph), unless --force. With --status, show per stage the ref it pins, which stacks run it, which lag
    and which could not be read.

    Exit codes: 0 promoted (or nothing to do; --status: every stage runs its pin), 1 refused, Azure could not be read
    (--status: a stack lags or was not read), 2 invalid input; with --apply, the rollout's.
    """
    import difflib

    from fluxfleet.azure.account import default_subscription
    from fluxfleet.azure.arm import ArmReader
    from fluxfleet.azure.clouds import clouds_of_stacks, fleet_reads, in_clouds
    from fluxfleet.azure.status import AzureError
    from fluxfleet.plan import display_path
    from fluxfleet.fleet_file import FleetFileBusy
    from fluxfleet.promote import (
        check_health,
        check_order,
        check_source,
        declared_by,
        plan_promotion,
        promotion_status,
        render_status,
        write_promotion,
    )
    from modules.spec import FLEET_FILE, SpecError, load_fleet, load_stacks, read_text, report_name
    from modules.spec.fleet import check_promotion, pin_of_option

    checkouts = parse_sources("promote", source)
    subscription = parse_subscription("promote", subscription)
    fleet_path = fleet_file or stacks_dir / FLEET_FILE
    if fleet_file is not None and fleet_file.resolve() != (stacks_dir / FLEET_FILE).resolve():
        stderr(f"fluxfleet promote: --fleet: pins belong in {stacks_dir / FLEET_FILE}, where `pulumi up` reads them")
        raise typer.Exit(2)
    paths = stack_paths("promote", stacks_dir, None)
    if status:
        try:
            loaded = {stack.name: stack for stack in load_stacks(paths, display_path)}
            fleet = load_fleet(fleet_path, sorted(report_name(path) for path in paths), display_path(fleet_path))
            check_promotion(fleet, config, None, declared_by(loaded))
        except SpecError as error:
            raise InvalidInput.of(error, "fluxfleet promote: ") from None
        default = subscription or default_subscription()
        try:  # through Resource Graph (and ARM) of each cloud the stacks are in
            reads = fleet_reads(in_clouds(ArmReader(), clouds_of_stacks(loaded.values(), default)))
            stages = promotion_status(config, fleet, loaded, reads, default)
        except AzureError as error:
            stderr(f"fluxfleet promote: {error}")
            raise typer.Exit(1) from None
        typer.echo(render_status(config, stages, fmt.value), nl=False)
        raise typer.Exit(1 if any(stage.lagging or stage.unread for stage in stages) else 0)
    if to is None:
        stderr("fluxfleet promote: --to REF is needed (or --status)")
        raise typer.Exit(2)
    try:
        pin = pin_of_option(config, to, branch)
        loaded = {stack.name: stack for stack in load_stacks(paths, display_path)}
        fleet = load_fleet(fleet_path, sorted(report_name(path) for path in paths), display_path(fleet_path))
        promotion = plan_promotion(fleet, fleet_path, config, pin, stage, loaded)
    except SpecError as error:
        raise InvalidInput.of(error, "fluxfleet promote: ") from None
    if promotion.stage is None:
        typer.echo(f"every stage that runs {config} runs it at {pin} already: nothing to promote")
        raise typer.Exit(0)
    if not force:
        check_order(promotion, fleet)  # offline: --dry-run is refused as the real command would be
    if checkouts:
        check_source(promotion, fleet, loaded, checkouts)
    if not (force or dry_run or promotion.problems):
        default = subscription or default_subscription()
        try:
            reads = fleet_reads(in_clouds(ArmReader(), clouds_of_stacks(loaded.values(), default)))
            check_health(promotion, fleet, loaded, reads, default)
        except AzureError as error:
            stderr(f"fluxfleet promote: {error}")
            raise typer.Exit(1) from None
    if not (dry_run or promotion.problems):
        try:  # under fleet.yaml's writer lock, to the file as it is now; the order checked again there
            write_promotion(promotion, fleet_path, fleet.file, ordered=not force)
        except SpecError as error:
            raise InvalidInput.of(error, "fluxfleet promote: ") from None
        except (FleetFileBusy, OSError) as error:
            stderr(f"fluxfleet promote: {fleet.file}: not written: {error}")
            raise typer.Exit(1) from None
    for problem in promotion.problems:
        stderr(f"fluxfleet promote: refused: {problem}")
    if promotion.problems:
        raise typer.Exit(1)
    assert promotion.fleet_text is not None
    was = f"was {promotion.previous}" if promotion.previous else "was not pinned"
    typer.echo(f"{'would promote' if dry_run else 'promote'} {config} to {pin} in stage {promotion.stage} ({was})")
    if promotion.unshared:
        typer.echo(promotion.unshared)
    if dry_run:
        if promotion.before and not force:
            stderr(f"fluxfleet promote: --dry-run: the health of stage {promotion.before} is not checked (Azure)")
        before = read_text(fleet_path, fleet.file).splitlines(keepends=True)
        diff = difflib.unified_diff(before, promotion.fleet_text.splitlines(keepends=True), fleet.file, fleet.file)
        typer.echo("".join(diff), nl=False)
        raise typer.Exit(0)
    if not apply:
        typer.echo(f"wrote {fleet.file}; next: {promotion.rollout}")
        raise typer.Exit(0)
    typer.echo(f"wrote {fleet.file}; running: {promotion.rollout}{' --rollback' if rollback else ''}")
    # exits with the rollout's code
    rollout(stage=promotion.stage, stacks_dir=stacks_dir, fleet_file=fleet_file, rollback=rollback)
