"""The `fluxfleet` command line: it parses arguments and calls the library; nothing more."""

from __future__ import annotations

import errno
import json
import logging
import os
import sys
from contextlib import contextmanager, nullcontext
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

INTERNAL_ERROR = 70  # EX_SOFTWARE (sysexits.h): fluxfleet itself failed, not the input or the fleet
ERROR_DETAIL_MAX = 200  # characters of an unexpected exception's message on stderr


class _Commands(TyperGroup):
    """The command group: an unexpected exception in any command is one line on stderr and exit 70, never a
    traceback (FLUXFLEET_DEBUG=1 shows it). typer's usage errors (2), typer.Exit and Ctrl-C pass as they are.
    Help shows each option's value as a name (`--stacks-dir STACKS_DIR`), not as a Python type (`<path>`)."""

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is not None:
            for param in command.get_params(ctx):  # the help option too: it is made once and kept
                _name_value(param)
        return command

    def get_params(self, ctx):
        params = super().get_params(ctx)
        for param in params:
            _name_value(param)
        return params

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except Exception as error:
            if isinstance(error, OSError) and error.errno == errno.EPIPE:
                raise  # the reader of stdout went away (`| head`): typer exits quietly
            raise _internal_error(error) from None


# What an option's value is, where its parameter's name does not say it.
VALUE_NAMES = {"resume": "RUN_ID", "approve": "STAGE", "matrix": "STAGE", "source": "URL=DIR", "output": "FILE"}


def _name_value(param) -> None:
    """The help's name for what a parameter takes: nothing for a flag, its choices for a choice, else its name in
    capitals (`--stacks-dir` -> STACKS_DIR); an argument's name says it all."""
    if param.metavar is not None:
        return
    if isinstance(param, typer.core.TyperArgument):
        param.metavar = (param.name or "value").upper()  # click adds "..." to a repeatable one
        param.display_type_rich = lambda ctx: None  # the name column says it already
    elif getattr(param, "is_flag", False):
        param.metavar = ""
    elif (described := getattr(param, "type_descriptor", None)) is not None and described.is_choice:
        param.metavar = "|".join(str(getattr(choice, "value", choice)) for choice in described.choices or ())
    else:
        param.metavar = VALUE_NAMES.get(param.name or "", (param.name or "value").upper())


def _internal_error(error: Exception) -> typer.Exit:
    import traceback

    from fluxfleet.redact import mask_secrets
    from modules.spec import bounded, printable

    if os.environ.get("FLUXFLEET_DEBUG", "") not in ("", "0"):
        typer.echo(printable("".join(traceback.format_exception(error)), lines=True), err=True, nl=False)
    text = str(error).strip()
    detail = bounded(mask_secrets(text.splitlines()[0]), ERROR_DETAIL_MAX) if text else ""
    _stderr(
        f"fluxfleet: internal error: {type(error).__name__}: {detail or 'no message'} "
        "(FLUXFLEET_DEBUG=1 shows the traceback; please report it)"
    )
    return typer.Exit(INTERNAL_ERROR)


app = typer.Typer(
    cls=_Commands,
    no_args_is_help=True,
    add_completion=False,
    help="GitOps with Flux for fleets of AKS and Arc clusters.",
)


class PlanFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"
    sarif = "sarif"


class PreflightFormat(StrEnum):
    text = "text"
    json = "json"


StacksArgument = Annotated[
    list[str] | None, typer.Argument(help="Stack names; all Pulumi.*.yaml in the stacks dir if none.")
]
StacksDirOption = Annotated[Path, typer.Option("--stacks-dir", help="Directory of the stack files.")]
FleetOption = Annotated[Path | None, typer.Option("--fleet", help="Default: STACKS_DIR/fleet.yaml.")]
RunsDirOption = Annotated[Path, typer.Option("--runs-dir", help="Where run journals are kept.")]
RollbackOption = Annotated[
    bool,
    typer.Option(
        "--rollback",
        help="Every stage rolls back (as `rollback: true` in fleet.yaml): a stack whose gate fails returns to the "
        "refs it ran before; past maxFailures, its whole stage and the stage's pins.",
    ),
]
SourceOption = Annotated[
    list[str] | None,
    typer.Option("--source", help="URL=DIR: check kustomization paths against a local checkout of that repository."),
]


def _show_version(shown: bool) -> None:
    if shown:
        from importlib.metadata import version

        typer.echo(f"fluxfleet {version('fluxfleet')}")
        raise typer.Exit(0)


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", help="Show the version and exit.", is_eager=True, callback=_show_version)
    ] = False,
) -> None:
    """fluxfleet: plan, deploy and check Flux on Azure Kubernetes clusters, one Pulumi stack per cluster."""
    # The Azure layer reports every failure itself, in one line; the SDKs' own warnings would repeat them at length.
    logging.getLogger("azure").setLevel(logging.ERROR)


@app.command()
def plan(
    stacks: StacksArgument = None,
    stacks_dir: StacksDirOption = Path("stacks"),
    fmt: Annotated[PlanFormat, typer.Option("--format", help="Report format.")] = PlanFormat.text,
    output: Annotated[Path | None, typer.Option("--output", help="Write the report to this file.")] = None,
    source: SourceOption = None,
    policy_config: Annotated[
        Path | None,
        typer.Option(
            "--policy-config", help="YAML or JSON: policy id to mandatory, advisory or disabled (as the pack's config)."
        ),
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", min=1, max=256, help="Plan in up to N worker processes (default: one per core)."),
    ] = None,
) -> None:
    """Run each stack's program offline under Pulumi's mock engine: resources, kustomization graph, policy
    violations, errors.

    Exit codes: 0 all stacks valid and compliant, 1 a mandatory policy violated, 2 invalid input.
    """
    from fluxfleet.plan import plan_fleet
    from fluxfleet.plan.report import plan_lines, render
    from modules.spec import SpecError, load_policy_levels
    from policies.rules import RULES_BY_ID

    _check_output("plan", "--output", output)
    levels = {}
    if policy_config is not None:
        try:
            levels = load_policy_levels(policy_config, list(RULES_BY_ID))
        except SpecError as error:
            raise _input_errors(error, "fluxfleet plan: --policy-config ") from None

    checkouts = _checkouts("plan", source)
    paths = _stack_paths("plan", stacks_dir, stacks)
    with _progress("planning", len(paths)) as advance:
        fleet = plan_fleet(
            paths, checkouts=checkouts, policy_levels=levels, jobs=jobs or os.cpu_count() or 1, on_planned=advance
        )
    report = render(fleet, fmt.value, color=output is None and fmt is PlanFormat.text and sys.stdout.isatty())
    _write("plan", report, output)
    if fmt is not PlanFormat.text or output is not None:  # the text report already shows them
        for line in plan_lines(fleet):
            _stderr(line)
    _versions_notice()
    raise typer.Exit(fleet.exit_code)


class ConfigFormat(StrEnum):
    text = "text"
    json = "json"


@app.command("config")
def config_(
    stack: Annotated[str, typer.Argument(help="The stack whose effective config to show.")],
    stacks_dir: StacksDirOption = Path("stacks"),
    fmt: Annotated[ConfigFormat, typer.Option("--format", help="Report format.")] = ConfigFormat.text,
    output: Annotated[Path | None, typer.Option("--output", help="Write the report to this file.")] = None,
) -> None:
    """Show a stack's effective config, its profiles merged in, with the file each value comes from. Secrets are
    masked.

    Exit codes: 0 the config is valid, 2 invalid input (the config is still shown when its files can be merged).
    """
    from fluxfleet.effective_config import effective_config, render
    from fluxfleet.plan import display_path
    from modules.spec import SpecError

    _check_output("config", "--output", output)
    [path] = _stack_paths("config", stacks_dir, [stack])
    try:
        config = effective_config(path, display_path(path))
    except SpecError as error:
        raise _input_errors(error) from None
    color = output is None and fmt is ConfigFormat.text and sys.stdout.isatty()
    _write("config", render(config, fmt.value, color=color), output)
    for error in config.errors:
        _stderr(str(error))
    raise typer.Exit(2 if config.errors else 0)


def _subscription(command: str, subscription: str | None) -> str | None:
    """`--subscription`: a subscription id (a GUID), lower case; invalid input otherwise (one line, exit 2)."""
    from modules.spec import SpecError
    from modules.spec.selection import parse_subscriptions

    if subscription is None:
        return None
    try:
        [valid] = parse_subscriptions([subscription])
    except SpecError as error:
        raise _input_errors(error, f"fluxfleet {command}: ") from None
    return valid


def _subscription_of(subscription: str | None):
    """`subscription_of(stack)`: its cluster.subscriptionId, else `--subscription`, else its cloud's default one."""
    from fluxfleet.azure.account import default_subscription

    return lambda stack: (
        stack.spec.cluster.subscription_id or subscription or default_subscription(cloud=stack.spec.cluster.cloud)
    )


def _checkouts(command: str, source: list[str] | None) -> dict[str, Path]:
    """`--source URL=DIR` options: repository URL -> local checkout."""
    checkouts = {}
    for item in source or ():
        url, _, directory = item.rpartition("=")
        if not url or not Path(directory).is_dir():
            _stderr(f"fluxfleet {command}: --source {item}: expected URL=DIR with an existing directory")
            raise typer.Exit(2)
        checkouts[url] = Path(directory)
    return checkouts


class PromoteFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


@app.command()
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

    checkouts = _checkouts("promote", source)
    subscription = _subscription("promote", subscription)
    fleet_path = fleet_file or stacks_dir / FLEET_FILE
    if fleet_file is not None and fleet_file.resolve() != (stacks_dir / FLEET_FILE).resolve():
        _stderr(f"fluxfleet promote: --fleet: pins belong in {stacks_dir / FLEET_FILE}, where `pulumi up` reads them")
        raise typer.Exit(2)
    paths = _stack_paths("promote", stacks_dir, None)
    if status:
        try:
            loaded = {stack.name: stack for stack in load_stacks(paths, display_path)}
            fleet = load_fleet(fleet_path, sorted(report_name(path) for path in paths), display_path(fleet_path))
            check_promotion(fleet, config, None, declared_by(loaded))
        except SpecError as error:
            raise _input_errors(error, "fluxfleet promote: ") from None
        default = subscription or default_subscription()
        try:  # through Resource Graph (and ARM) of each cloud the stacks are in
            reads = fleet_reads(in_clouds(ArmReader(), clouds_of_stacks(loaded.values(), default)))
            stages = promotion_status(config, fleet, loaded, reads, default)
        except AzureError as error:
            _stderr(f"fluxfleet promote: {error}")
            raise typer.Exit(1) from None
        typer.echo(render_status(config, stages, fmt.value), nl=False)
        raise typer.Exit(1 if any(stage.lagging or stage.unread for stage in stages) else 0)
    if to is None:
        _stderr("fluxfleet promote: --to REF is needed (or --status)")
        raise typer.Exit(2)
    try:
        pin = pin_of_option(config, to, branch)
        loaded = {stack.name: stack for stack in load_stacks(paths, display_path)}
        fleet = load_fleet(fleet_path, sorted(report_name(path) for path in paths), display_path(fleet_path))
        promotion = plan_promotion(fleet, fleet_path, config, pin, stage, loaded)
    except SpecError as error:
        raise _input_errors(error, "fluxfleet promote: ") from None
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
            _stderr(f"fluxfleet promote: {error}")
            raise typer.Exit(1) from None
    if not (dry_run or promotion.problems):
        try:  # under fleet.yaml's writer lock, to the file as it is now; the order checked again there
            write_promotion(promotion, fleet_path, fleet.file, ordered=not force)
        except SpecError as error:
            raise _input_errors(error, "fluxfleet promote: ") from None
        except (FleetFileBusy, OSError) as error:
            _stderr(f"fluxfleet promote: {fleet.file}: not written: {error}")
            raise typer.Exit(1) from None
    for problem in promotion.problems:
        _stderr(f"fluxfleet promote: refused: {problem}")
    if promotion.problems:
        raise typer.Exit(1)
    assert promotion.fleet_text is not None
    was = f"was {promotion.previous}" if promotion.previous else "was not pinned"
    typer.echo(f"{'would promote' if dry_run else 'promote'} {config} to {pin} in stage {promotion.stage} ({was})")
    if promotion.unshared:
        typer.echo(promotion.unshared)
    if dry_run:
        if promotion.before and not force:
            _stderr(f"fluxfleet promote: --dry-run: the health of stage {promotion.before} is not checked (Azure)")
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


PROGRESS_FROM = 20  # stacks: a shorter run needs no progress bar


@contextmanager
def _progress(what: str, total: int):
    """A progress bar on stderr for a long run when stderr is a terminal (never in a log); yields `advance(_)`."""
    if total < PROGRESS_FROM or not sys.stderr.isatty():
        yield lambda _done: None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(what, total=total)
        yield lambda _done: progress.advance(task)


@app.command()
def preflight(
    stacks: StacksArgument = None,
    stacks_dir: StacksDirOption = Path("stacks"),
    fmt: Annotated[PreflightFormat, typer.Option("--format", help="Report format.")] = PreflightFormat.text,
    output: Annotated[Path | None, typer.Option("--output", help="Write the report to this file.")] = None,
    subscription: Annotated[
        str | None,
        typer.Option("--subscription", help="For stacks without cluster.subscriptionId (default: az's current)."),
    ] = None,
    fix: Annotated[bool, typer.Option("--fix", help="Register missing resource providers and wait for them.")] = False,
) -> None:
    """Check, before any deploy, that each stack's providers, cluster, Flux extension and Key Vault secrets are
    ready (Azure credentials: DefaultAzureCredential).

    Exit codes: 0 all checks passed, 1 a check failed, 2 invalid input.
    """
    from fluxfleet.azure.arm import ArmReader
    from fluxfleet.azure.clouds import in_clouds, stack_clouds
    from fluxfleet.azure.snapshot_reader import fleet_reader_of_stacks
    from fluxfleet.azure.status import AzureError
    from fluxfleet.plan import display_path
    from fluxfleet.preflight import preflight_fleet, to_json, to_text

    _check_output("preflight", "--output", output)
    subscription = _subscription("preflight", subscription)
    paths = _stack_paths("preflight", stacks_dir, stacks)
    subscription_of = _subscription_of(subscription)
    reader = in_clouds(ArmReader(), stack_clouds(paths, display_path, subscription_of))  # a reader per cloud
    try:  # the clusters and extensions of every stack read at once through Resource Graph, once signed in
        reader.signed_in_identity()
        reader = fleet_reader_of_stacks(paths, display_path, subscription_of, reader, fall_back=False)
    except AzureError:
        pass  # preflight's own credential check says how to sign in
    fleet = preflight_fleet(paths, reader, subscription_id=subscription, fix=fix, display=display_path)
    if fmt is PreflightFormat.json:
        report = json.dumps(to_json(fleet), indent=2) + "\n"
    else:
        report = to_text(fleet, color=output is None and sys.stdout.isatty())
    _write("preflight", report, output)
    _versions_notice()
    raise typer.Exit(fleet.exit_code)


def _input_errors(error, prefix: str = "") -> typer.Exit:
    """Every problem of invalid input on stderr, one line each; exit 2."""
    for issue in error.issues:
        _stderr(f"{prefix}{issue}")
    return typer.Exit(2)


def _stack_paths(command: str, stacks_dir: Path, names: list[str] | None) -> list[Path]:
    from modules.spec import stack_files
    from modules.spec import SpecError, printable

    if not stacks_dir.is_dir():
        typer.echo(f"fluxfleet {command}: {printable(str(stacks_dir))}: no such directory", err=True)
        raise typer.Exit(2)
    try:
        paths = stack_files(stacks_dir, names or ())
    except SpecError as error:  # a bad stack name, a file name that is not UTF-8, a stack with two files
        raise _input_errors(error, f"fluxfleet {command}: ") from None
    if not paths:
        typer.echo(f"fluxfleet {command}: {printable(str(stacks_dir))}: no Pulumi.<stack>.yaml files", err=True)
        raise typer.Exit(2)
    return paths


def _versions_notice() -> None:
    """A line on stderr for each dated table (supported Kubernetes versions, Flux extension releases) more than six
    months old."""
    from modules import flux_extension_versions, kubernetes_versions

    today = kubernetes_versions.today()
    for table in (kubernetes_versions, flux_extension_versions):
        if notice := table.stale_notice(today):
            _stderr(notice)


def _stderr(line: str) -> None:
    """A line on stderr, escaped: a name or message from a file, Azure or Pulumi cannot move the cursor, clear the
    terminal or start a forged line."""
    from modules.spec import printable

    typer.echo(printable(line), err=True)


def _check_output(command: str, option: str, path: Path | None) -> None:
    """Before any work: can a report be written to `path` (given with `option`: "--output", "--report")? Its
    directory must exist and be writable, and it must not be a directory (a file already there must be writable).
    Otherwise one line naming the option and the path, and exit 2. Nothing to check for None (stdout)."""
    if path is None:
        return
    problem = _unwritable(path)
    if problem is not None:
        _stderr(f"fluxfleet {command}: {option} {path}: {problem}")
        raise typer.Exit(2)


def _unwritable(path: Path) -> str | None:
    """Why `path` cannot be written, in the words the write would fail with; None if it can."""
    if path.is_dir():
        return os.strerror(errno.EISDIR)
    if path.exists():  # writing an existing file (a job summary, /dev/stdout) needs no right on its directory
        return None if os.access(path, os.W_OK) else os.strerror(errno.EACCES)
    parent = path.parent
    if not parent.is_dir():
        return f"{parent}: {os.strerror(errno.ENOTDIR if parent.exists() else errno.ENOENT)}"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{parent}: {os.strerror(errno.EACCES)}"
    return None


def _write(command: str, report: str, output: Path | None, option: str = "--output") -> None:
    """The report to `output` (stdout when None). A write that fails after the work (disk full, permissions changed
    meanwhile) is one line on stderr, no exit: the command keeps the exit code that says what it found."""
    if output is None:
        sys.stdout.write(report)
        return
    try:
        output.write_text(report, encoding="utf-8")
    except OSError as error:
        _stderr(f"fluxfleet {command}: {option} {output}: cannot write the report: {error.strerror or error}")
        return
    _stderr(f"wrote {output}")


class RolloutFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


@app.command()
def rollout(
    stage: Annotated[str | None, typer.Option("--stage", help="Only this stage.")] = None,
    stacks_glob: Annotated[str | None, typer.Option("--stacks", help="Only the stacks matching this glob.")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the stages, stacks, order and estimated duration; change nothing.")
    ] = False,
    resume: Annotated[str | None, typer.Option("--resume", help="Continue this run (its id).")] = None,
    approve: Annotated[list[str] | None, typer.Option("--approve", help="Approve this stage (repeatable).")] = None,
    max_concurrency: Annotated[
        int | None, typer.Option("--max-concurrency", min=1, help="At most this many stacks at once, in any stage.")
    ] = None,
    rollback: RollbackOption = False,
    matrix: Annotated[
        str | None, typer.Option("--matrix", help="Print a GitHub Actions matrix (JSON) of this stage's stacks.")
    ] = None,
    fmt: Annotated[RolloutFormat, typer.Option("--format", help="Summary format.")] = RolloutFormat.text,
    output: Annotated[Path | None, typer.Option("--output", help="Write the summary to this file.")] = None,
    stacks_dir: StacksDirOption = Path("stacks"),
    fleet_file: FleetOption = None,
    runs_dir: RunsDirOption = Path(".fluxfleet/runs"),
) -> None:
    """Apply the stacks of fleet.yaml stage by stage with `pulumi up`, each gated on Flux reporting healthy.

    Exit codes: 0 done, 1 halted, rolled back, failed or waiting for approval, 2 invalid input.
    """
    from fluxfleet.automation import AutomationRunner
    from fluxfleet.azure.account import default_subscription
    from fluxfleet.azure.arm import ArmReader
    from fluxfleet.azure.clouds import SubscriptionClouds, in_clouds
    from fluxfleet.azure.status import AzureError
    from fluxfleet.clock import SystemClock
    from fluxfleet.rollout.journal import Journal, RunStatus, RunTaken, StackState, history
    from fluxfleet.plan import display_path
    from fluxfleet.rollout.orchestrator import Selection, estimate, load_inputs, load_specs, new_run
    from fluxfleet.rollout.report import render_dry_run, render_summary
    from fluxfleet.runner import RunnerError
    from modules.spec import FLEET_FILE, SpecError, shown

    def invalid(message: str) -> typer.Exit:
        _stderr(f"fluxfleet rollout: {message}")
        return typer.Exit(2)

    if not stacks_dir.is_dir():
        raise invalid(f"{stacks_dir}: no such directory")
    _check_output("rollout", "--output", output)  # before anything is read or applied
    try:
        fleet_path = fleet_file or stacks_dir / FLEET_FILE
        fleet, paths = load_inputs(stacks_dir, fleet_path, display_path)
    except SpecError as error:
        raise _input_errors(error) from None
    for name in fleet.unstaged:
        _stderr(f"fluxfleet rollout: warning: {fleet.unstaged_warning(name)}")
    known_stages = [s.name for s in fleet.stages]
    for name in [stage, matrix, *(approve or ())]:
        if name is not None and name not in known_stages:
            raise invalid(f"no stage {shown(name)} in {fleet.file} (stages: {', '.join(known_stages)})")
    # options that would not apply are refused, never ignored
    if matrix is not None and stage is not None:
        raise invalid("--matrix names its stage: drop --stage")
    if matrix is not None and rollback:
        raise invalid("--matrix plans a stage as fleet.yaml says: set `rollback: true` on the stage, not --rollback")
    if resume is not None:
        kept = [
            option
            for option, value in (
                ("--stage", stage),
                ("--stacks", stacks_glob),
                ("--max-concurrency", max_concurrency),
                ("--matrix", matrix),
                ("--rollback", rollback or None),
            )
            if value is not None
        ]
        if kept:
            raise invalid(f"--resume continues a run as it was planned: {', '.join(kept)} cannot change it")
    selection = Selection(stage=matrix or stage, stacks=stacks_glob, max_concurrency=max_concurrency, rollback=rollback)
    if stacks_glob is not None and not any(planned.stacks for planned in selection.plan(fleet)):
        where = f"stage {stage or matrix}" if stage or matrix else fleet.file
        raise invalid(f"--stacks {shown(stacks_glob)} matches no stack of {where}")

    def specs_of(stages) -> dict:
        """The specs of the stacks of `stages`; invalid ones (a cluster another stack names too among them) exit 2."""
        try:
            return load_specs([name for s in stages for name in s.stacks], stacks_dir, paths, display_path, resume)
        except SpecError as error:
            raise _input_errors(error) from None

    if matrix is not None:  # for CI fan-out: needs neither Pulumi nor Azure
        [planned] = selection.plan(fleet) or [None]
        stacks = planned.stacks if planned else []
        specs_of([planned] if planned else [])  # a job per stack that could not start is no plan
        concurrency = planned.max_concurrency if planned else 1
        rules = next(s for s in fleet.stages if s.name == matrix)
        # deploy-stage.yml bakes between stages, as a run does: never after the last stage that has stacks
        staged = [s.name for s in Selection(stacks=stacks_glob).plan(fleet)]
        wait = rules.after_stage_wait if matrix in staged[:-1] else 0
        typer.echo(
            json.dumps(
                {
                    "stage": matrix,
                    "matrix": {"stack": stacks},
                    "maxParallel": concurrency,
                    "maxFailures": rules.max_failures,
                    "afterStageWait": wait,  # seconds
                    "approval": rules.approval,
                    "rollback": rules.rollback,  # deploy-stage.yml then runs the stage as one job, not a matrix
                }
            )
        )
        raise typer.Exit(0)

    if dry_run:  # reads, never writes: not even the log of the run it shows
        try:
            stages = Journal.load(runs_dir, resume).record.stages if resume else selection.plan(fleet)
        except ValueError as error:
            raise invalid(str(error)) from None
        specs_of(stages)  # the stacks it would apply, valid as the run would need them
        durations = history(runs_dir)
        samples = sum(len(seconds) for seconds in durations.values())
        _write("rollout", render_dry_run(estimate(stages, durations), fmt.value, samples), output)
        raise typer.Exit(0)
    journal = None
    if resume is not None:  # taken first, read after: what another process wrote until it ended is all there
        try:
            journal = Journal.open(runs_dir, resume)
        except RunTaken as error:
            _stderr(f"fluxfleet rollout: {error}")
            raise typer.Exit(1) from None
        except ValueError as error:
            raise invalid(str(error)) from None
    specs = specs_of(journal.record.stages if journal else selection.plan(fleet))
    try:  # no usable pulumi CLI, or no Azure token for the checks and the gate: say so before anything starts
        runner = AutomationRunner(Path.cwd())
        clouds = SubscriptionClouds.of(
            (s.cluster.subscription_id or default_subscription(cloud=s.cluster.cloud), s.cluster.cloud)
            for s in specs.values()
        )
        reader = in_clouds(ArmReader(), clouds)  # the checks and the gate read each stack in its cloud
        reader.signed_in_identity()
    except (RunnerError, AzureError) as error:
        _stderr(f"fluxfleet rollout: {error}")
        raise typer.Exit(1) from None
    if journal is None:
        try:
            journal = Journal.create(runs_dir, new_run(fleet, selection, SystemClock().now()))
        except ValueError as error:
            raise invalid(f"--runs-dir {error}") from None
    record = _run_journaled(
        "rollout", journal, specs, fleet, fleet_path, stacks_dir, runner, reader, fmt.value, approve
    )
    color = output is None and fmt is RolloutFormat.text and sys.stdout.isatty()
    _write("rollout", render_summary(record, fmt.value, color=color), output)
    failed = any(entry.state is StackState.failed for entry in record.stacks.values())
    raise typer.Exit(0 if record.status is RunStatus.done and not failed else 1)


def _run_journaled(command, journal, specs, fleet, fleet_path, stacks_dir, runner, reader, fmt, approve=None):
    """Run (or resume) a journaled rollout to its end with the real clock, gate and progress: what `rollout` and
    `drift --remediate` both do. Exit 1 when its journal cannot be written (the run stops, resumable)."""
    from fluxfleet.rollout.orchestrator import Rollout
    from modules.spec import FLEET_FILE

    _stderr(f"fluxfleet {command}: run {journal.record.run_id} (journal {journal.path})")
    beside = fleet_path.resolve() == (stacks_dir / FLEET_FILE).resolve()  # where a rolled-back stage's pins live
    with _production_rollout(runner, reader, fleet.gate, fmt == "text") as options:
        try:
            Rollout(
                journal,
                specs,
                refuse_cluster_replacement=fleet.refuse_cluster_replacement,
                refuse_flux_replacement=fleet.refuse_flux_replacement,
                fleet_path=fleet_path if beside else None,
                **options,
            ).run(tuple(approve or ()))
        except OSError as error:  # without its journal a run cannot promise anything: stop, resumable
            _stderr(
                f"fluxfleet {command}: cannot write the journal {journal.path}: {error.strerror}: the run stopped; "
                f"resume it with `fluxfleet rollout --resume {journal.record.run_id}` once that is fixed"
            )
            raise typer.Exit(1) from None
    return journal.record


@contextmanager
def _production_rollout(runner, reader, gate_spec, text: bool):
    """What a real rollout runs on besides Pulumi: the Azure layer for the gate, the system clock, live progress,
    and Ctrl-C twice (the first stops scheduling, the second cancels the running updates)."""
    import signal
    import threading

    from rich.console import Console

    from fluxfleet.azure.account import default_subscription
    from fluxfleet.azure.clouds import fleet_reads
    from fluxfleet.clock import SystemClock
    from fluxfleet.rollout.gate import FleetFluxReads, FluxHealthGate
    from fluxfleet.rollout.report import LiveProgress, LogProgress

    clock = SystemClock()
    stop, cancel = threading.Event(), threading.Event()

    def on_interrupt(signum, frame):
        if stop.is_set():
            cancel.set()
            typer.echo("\nfluxfleet rollout: cancelling the running updates", err=True)
        else:
            stop.set()
            typer.echo(
                "\nfluxfleet rollout: stopping: running updates will finish (Ctrl-C again cancels them)", err=True
            )

    # The checks before each update (cluster busy, extension upgrade path) read Azure whatever fluxCompliance says;
    # a stage's health gates poll together: one Resource Graph read a poll for all.
    fleet = FleetFluxReads(fleet_reads(reader, clock))  # Resource Graph of each cloud, beside its reader
    gate = FluxHealthGate(reader, clock, gate_spec.timeout, gate_spec.poll_interval, fleet)
    console = Console(stderr=True)
    live = text and console.is_terminal
    observer = LiveProgress(console) if live else LogProgress()
    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        with observer if live else nullcontext():
            yield {
                "runner": runner,
                "clock": clock,
                "gate": gate,
                "health_gate": gate_spec.flux_compliance,
                "subscription_of": lambda spec: (
                    spec.cluster.subscription_id or default_subscription(cloud=spec.cluster.cloud)
                ),
                "observer": observer,
                "stop": stop,
                "cancel": cancel,
            }
    finally:
        signal.signal(signal.SIGINT, previous)


class DriftFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"
    junit = "junit"


@app.command()
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
    import os
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
            _stderr(f"fluxfleet drift: --report {item}: expected FORMAT=FILE, FORMAT one of {', '.join(DriftFormat)}")
            raise typer.Exit(2)
        extra.append((DriftFormat(name), Path(file)))
    # Before any preview: an hour of work should not end in a report that cannot be written.
    _check_output("drift", "--output", output)
    for _, file in extra:
        _check_output("drift", "--report", file)
    subscription = _subscription("drift", subscription)
    paths = _stack_paths("drift", stacks_dir, stacks)
    if remediate_drift:  # remediation is a rollout: its fleet.yaml is read (and must be valid) before any preview
        from fluxfleet.rollout.orchestrator import load_inputs
        from modules.spec import FLEET_FILE, SpecError

        fleet_path = fleet_file or stacks_dir / FLEET_FILE
        if not fleet_path.is_file():
            _stderr(
                f"fluxfleet drift: --remediate rolls the drifted stacks out stage by stage: it needs "
                f"{display_path(fleet_path)} (or --fleet)"
            )
            raise typer.Exit(2)
        try:
            rollout_fleet, fleet_paths = load_inputs(stacks_dir, fleet_path, display_path)
        except SpecError as error:
            raise _input_errors(error) from None
    webhook = None
    if notify is not None:  # resolved first: a wrong reference fails before an hour of previews
        try:
            webhook = resolve_webhook(notify, os.environ, lambda ref: KeyVaultReader().get_secret(ref).value)
        except NotifyError as error:
            _stderr(f"fluxfleet drift: --notify: {error}")
            raise typer.Exit(2) from None
    subscription_of = _subscription_of(subscription)
    try:  # no usable pulumi CLI or no Azure token: one line, not one per stack and look
        runner = AutomationRunner(Path.cwd())
        arm = in_clouds(ArmReader(), stack_clouds(paths, display_path, subscription_of))  # a reader per cloud
        arm.signed_in_identity()
    except (RunnerError, AzureError) as error:
        _stderr(f"fluxfleet drift: {error}")
        raise typer.Exit(1) from None
    # every stack's cluster read at once through Resource Graph; the rest (and what it lacks) through ARM
    reader = fleet_reader_of_stacks(paths, display_path, subscription_of, arm)
    fleet = check_fleet(paths, runner, reader, subscription_of, max_concurrency=max_concurrency, display=display_path)
    if remediate_drift:  # its gate reads Azure as it is after each update, never the snapshot taken before them
        _remediate(fleet, rollout_fleet, fleet_path, fleet_paths, stacks_dir, runs_dir, runner, arm, fmt.value)
    now = datetime.now(UTC)
    color = output is None and fmt is DriftFormat.text and sys.stdout.isatty()
    # Each report written even when another cannot be, and the card still sent: the exit code says what was found.
    _write("drift", render(fleet, fmt.value, now, color=color), output)
    for extra_format, file in extra:
        _write("drift", render(fleet, extra_format.value, now), file, "--report")
    if webhook and any(stack.status is not Status.in_sync for stack in fleet.stacks):
        try:
            post_card(webhook, card(fleet))
        except NotifyError as error:
            _stderr(f"fluxfleet drift: --notify: {error}")
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
        raise _input_errors(error) from None
    except ValueError as error:
        _stderr(f"fluxfleet drift: --runs-dir {error}")
        raise typer.Exit(2) from None
    record = _run_journaled("drift", journal, specs, fleet, fleet_path, stacks_dir, runner, reader, fmt)
    record_remediation(drifted, record)


class StatusFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"
    html = "html"


@app.command()
def status(
    stacks: StacksArgument = None,
    stacks_dir: StacksDirOption = Path("stacks"),
    fleet_file: FleetOption = None,
    subscription: Annotated[
        str | None, typer.Option("--subscription", help="For stacks without cluster.subscriptionId.")
    ] = None,
    fmt: Annotated[StatusFormat, typer.Option("--format", help="Report format.")] = StatusFormat.text,
    output: Annotated[Path | None, typer.Option("--output", help="Write the report to this file.")] = None,
) -> None:
    """The fleet at a glance, read-only, from a few Azure Resource Graph queries: per stack its stage, cluster
    state, Flux extension, and per Flux configuration its compliance and the revision it runs against its pin.
    Stacks running a revision other than their stage's stand out. HTML is one self-contained page.

    Exit codes: 0 all healthy, 3 something not healthy, 1 part of the fleet could not be read, 2 invalid input.
    """
    from fluxfleet.azure.account import default_subscription
    from fluxfleet.azure.arm import ArmReader
    from fluxfleet.azure.clouds import clouds_of_stacks, fleet_reads, in_clouds
    from fluxfleet.azure.status import AzureError
    from fluxfleet.plan import display_path
    from fluxfleet.status.build import fleet_status
    from fluxfleet.status.report import render
    from modules.spec import FLEET_FILE, SpecError, load_fleet, load_stacks, report_name, stack_files

    _check_output("status", "--output", output)
    default = _subscription("status", subscription) or default_subscription()
    paths = _stack_paths("status", stacks_dir, stacks)
    fleet_path = fleet_file or stacks_dir / FLEET_FILE
    try:
        loaded = load_stacks(paths, display_path)
        everything = [report_name(path) for path in stack_files(stacks_dir)] if stacks else None
        known = sorted(everything or (stack.name for stack in loaded))
        fleet = load_fleet(fleet_path, known, display_path(fleet_path)) if fleet_file or fleet_path.exists() else None
    except SpecError as error:
        raise _input_errors(error) from None
    stage_of = {name: stage.name for stage in (fleet.stages if fleet else ()) for name in stage.stacks}
    try:
        reads = fleet_reads(in_clouds(ArmReader(), clouds_of_stacks(loaded, default)))  # each cloud's own
        stages = [stage.name for stage in fleet.stages] if fleet else []
        report = fleet_status(loaded, reads, stage_of.get, default, stages)
    except AzureError as error:
        _stderr(f"fluxfleet status: {error}")
        raise typer.Exit(1) from None
    color = output is None and fmt is StatusFormat.text and sys.stdout.isatty()
    _write("status", render(report, fmt.value, color=color), output)
    raise typer.Exit(report.exit_code)


class InventoryFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


class Cloud(StrEnum):  # modules/clouds.py's names (tests/fluxfleet/test_inventory.py checks they agree)
    AzureCloud = "AzureCloud"
    AzureChinaCloud = "AzureChinaCloud"
    AzureUSGovernment = "AzureUSGovernment"


@app.command()
def inventory(
    select: Annotated[
        str,
        typer.Option(
            "--select",
            help="Which clusters: kind:aks|arc, rg:NAME, location:REGION, tag:KEY=VALUE; terms all hold, a key given "
            "twice means either value, * in a value matches anything (e.g. 'tag:fleet=stores kind:arc').",
        ),
    ],
    profile: Annotated[
        str | None, typer.Option("--profile", help="The profile new stacks use (STACKS_DIR/profiles/NAME.yaml).")
    ] = None,
    subscription: Annotated[
        list[str] | None,
        typer.Option(
            "--subscription",
            help="Look in this subscription (repeatable; default: the stacks' subscriptions and az's current).",
        ),
    ] = None,
    stacks_dir: StacksDirOption = Path("stacks"),
    fmt: Annotated[InventoryFormat, typer.Option("--format", help="Report format.")] = InventoryFormat.text,
    output: Annotated[Path | None, typer.Option("--output", help="Write the report to this file.")] = None,
    write: Annotated[
        bool, typer.Option("--write", help="Create a stack file for each new member (needs --profile).")
    ] = False,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune",
            help="Delete the stack files of the stacks whose cluster is gone (ARM answers 404), and say what their "
            "Pulumi stacks still hold.",
        ),
    ] = False,
    cloud: Annotated[
        Cloud, typer.Option("--cloud", help="The Azure cloud to look in; only its stacks (cluster.cloud) count.")
    ] = Cloud.AzureCloud,
) -> None:
    """Find the AKS and Arc clusters a selection names (one Azure Resource Graph query) and compare them with the
    stack files: new members, stacks whose cluster moved, stacks whose cluster is gone (confirmed by an ARM GET
    that answers 404). Stack files are only created with --write and deleted with --prune, never edited; neither
    acts while a subscription is unreadable. A stack file that names no subscription is in the default one (as
    for `pulumi up`), never in --subscription's.

    Exit codes: 0 in step, 1 Azure could not be read (a subscription could not, or a stack could not be confirmed
    gone: that wins over 3, the picture is incomplete) or a stack file could not be changed, 2 invalid input, 3
    differences found (also when --write or --prune acted on them, so a CI job knows to commit the stack files).
    """
    from fluxfleet.automation import AutomationRunner
    from fluxfleet.azure.account import default_subscription
    from fluxfleet.azure.arm import ArmReader
    from fluxfleet.azure.resource_graph import ResourceGraphReader
    from fluxfleet.azure.status import AzureError
    from fluxfleet.clock import SystemClock
    from fluxfleet.inventory import load_stacks, prune_gone, subscriptions_of, take_inventory, write_members
    from fluxfleet.inventory_report import attention_lines, render
    from fluxfleet.plan import display_path
    from modules.spec import SpecError
    from modules.spec.selection import parse_selection, parse_subscriptions, profile_file

    def invalid(message: str) -> typer.Exit:
        _stderr(f"fluxfleet inventory: {message}")
        return typer.Exit(2)

    _check_output("inventory", "--output", output)
    if not stacks_dir.is_dir():
        raise invalid(f"{stacks_dir}: no such directory")
    try:
        selection = parse_selection(select)
        subscriptions = parse_subscriptions(subscription or ())
        if profile is not None:
            profile_file(stacks_dir, profile)
    except SpecError as error:
        raise _input_errors(error, "fluxfleet inventory: ") from None
    if write and profile is None:
        raise invalid("--write needs --profile NAME: the profile the new stack files use")
    default = default_subscription(cloud=cloud.value)  # what `pulumi up` uses; never --subscription's
    try:
        stacks = load_stacks(stacks_dir, default, display_path, cloud.value)
    except SpecError as error:
        raise _input_errors(error) from None
    scope = subscriptions or subscriptions_of(stacks, default)
    if not scope:
        raise invalid("no subscription to look in: give --subscription ID, or choose one with `az account set`")
    try:
        graph = ResourceGraphReader(cloud=cloud.value)
        result = take_inventory(graph, selection, stacks, scope, display_path, stacks_dir, ArmReader(cloud=cloud.value))
    except AzureError as error:
        _stderr(f"fluxfleet inventory: {error}")
        raise typer.Exit(1) from None
    if write and profile is not None:
        result = write_members(result, profile, SystemClock().now().date(), stacks_dir, display_path, cloud.value)
    if prune:
        result = prune_gone(result, lambda: AutomationRunner(Path.cwd()))
    color = output is None and fmt is InventoryFormat.text and sys.stdout.isatty()
    _write("inventory", render(result, fmt.value, color=color), output)
    if fmt is not InventoryFormat.text or output is not None:  # the text report already shows them
        for line in attention_lines(result):
            _stderr(f"fluxfleet inventory: {line}")
    raise typer.Exit(result.exit_code)
