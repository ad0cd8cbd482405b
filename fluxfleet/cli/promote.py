"""`fluxfleet promote`: pin a Flux configuration's ref for its next stage, or show where it stands."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fluxfleet.cli.options import FleetOption, SourceOption, StacksDirOption, SubscriptionOption
from fluxfleet.cli.output import stderr, write_report
from fluxfleet.cli.rollout import rollout
from fluxfleet.exits import ExitCode

if TYPE_CHECKING:
    from fluxfleet.promote.command import Promoted, PromoteRequest


EXAMPLES = (
    ("what promoting platform to v1.4.0 would change", "fluxfleet promote platform --to v1.4.0 --dry-run"),
    (
        "the next stage's AKS clusters to Kubernetes 1.36, then roll it out",
        "fluxfleet promote kubernetes --to 1.36 --apply",
    ),
    ("where each stage of platform stands", "fluxfleet promote platform --status"),
)


class PromoteFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


def promote(
    config: Annotated[
        str,
        typer.Argument(
            help="The Flux configuration whose git ref to promote, or kubernetes (the AKS clusters' version) or "
            "flux-extension (the microsoft.flux extension's version)."
        ),
    ],
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Required (but with --status): the ref to promote: a tag (v1.4.0), a commit SHA (with --branch) or "
            "an OCI artifact's digest (sha256:…); not a semver range, which a stage could not be gated on.",
        ),
    ] = None,
    branch: Annotated[str | None, typer.Option("--branch", help="The branch of a commit (the API needs it).")] = None,
    stage: Annotated[str | None, typer.Option("--stage", help="Default: the first stage not at --to yet.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the change to fleet.yaml; write nothing.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Skip the order and health checks (no Azure read).")] = False,
    apply: Annotated[
        bool, typer.Option("--apply", help="Then run the stage's rollout (as `fluxfleet rollout`).")
    ] = False,
    rollback: Annotated[
        bool,
        typer.Option(
            "--rollback",
            help="With --apply: its rollout rolls back as `fluxfleet rollout --rollback` does (a stack whose gate "
            "fails returns to the refs it ran before; past maxFailures, the stage and its pin).",
        ),
    ] = False,
    source: SourceOption = None,
    stacks_dir: StacksDirOption = Path("stacks"),
    fleet_file: FleetOption = None,
    subscription: SubscriptionOption = None,
    status: Annotated[
        bool, typer.Option("--status", help="Per stage: its pinned ref, how many stacks run it, which lag behind.")
    ] = False,
    fmt: Annotated[
        PromoteFormat | None, typer.Option("--format", help="Of the --status report (default: text).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", help="Write the report to this file (with --status).")
    ] = None,
) -> None:
    """Pin a Flux configuration's git ref in fleet.yaml for the next of its stages (those with a stack that declares
    it) that does not run it yet (or --stage), keeping the rest of the file as written; then print the rollout to
    run. Refused past a stage that does not pin the ref yet (--dry-run too) or is not healthy (read through Azure
    Resource Graph), unless --force. With --status, show per stage the ref it pins, which stacks run it, which lag
    and which could not be read.

    kubernetes and flux-extension promote the platform's versions the same way (pins: {kubernetes: "1.36"}):
    a Kubernetes minor one at a time through the stages with an AKS stack (Arc clusters named and skipped), inside
    the dated support table; an extension version along its upgrade path (from the version installed), its
    repositories scanned with --source for API versions it no longer serves.

    Exit codes: 0 promoted (or nothing to do; --status: every stage runs its pin), 1 refused, Azure could not be read
    or no subscription or sign-in (--status: a stack lags or was not read; --apply: the rollout could not start,
    nothing written), 2 invalid input; with --apply, then the rollout's.
    """
    from fluxfleet.promote.command import PromoteRequest, promote_config

    sources = tuple(source or ())
    request = PromoteRequest(
        config,
        to,
        branch,
        stage,
        dry_run,
        force,
        sources,
        stacks_dir,
        fleet_file,
        subscription,
        output,
        apply=apply,
        rollback=rollback,
        fmt=fmt.value if fmt else None,
    )
    if status:
        _show_status(request)
    promoted = promote_config(request)
    _report(promoted)
    if dry_run or promoted.promotion.stage is None:
        raise typer.Exit(ExitCode.OK)
    if not apply:
        typer.echo(f"wrote {promoted.fleet_file}; next: {promoted.promotion.rollout}")
        raise typer.Exit(ExitCode.OK)
    typer.echo(f"wrote {promoted.fleet_file}; running: {promoted.promotion.rollout}{' --rollback' if rollback else ''}")
    # exits with the rollout's code
    rollout(stage=promoted.promotion.stage, stacks_dir=stacks_dir, fleet_file=fleet_file, rollback=rollback)


def _show_status(request: PromoteRequest) -> None:
    """`--status`: where each stage stands, on stdout or to --output; exit 1 when a stack lags or was not read."""
    from fluxfleet.promote import render_status
    from fluxfleet.promote.command import promotion_status_of

    stages = promotion_status_of(request)
    write_report("promote", render_status(request.config, stages, request.fmt or "text"), request.output)
    raise typer.Exit(ExitCode.FAILED if any(stage.lagging or stage.unread for stage in stages) else ExitCode.OK)


def _report(promoted: Promoted) -> None:
    """What was promoted (or would be, with --dry-run, and the change to fleet.yaml), or that nothing was."""
    promotion = promoted.promotion
    if promotion.stage is None:
        typer.echo(f"every stage that runs {promotion.config} runs it at {promotion.pin} already: nothing to promote")
        return
    typer.echo(promoted.summary)
    for note in promotion.notes:
        stderr(f"fluxfleet promote: note: {note}")
    if promotion.unshared:
        typer.echo(promotion.unshared)
    if promoted.dry_run:
        if promoted.unchecked:
            stderr(f"fluxfleet promote: --dry-run: the health of stage {promoted.unchecked} is not checked (Azure)")
        typer.echo(promoted.diff, nl=False)
