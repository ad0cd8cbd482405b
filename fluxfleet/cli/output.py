"""Where a command's report and its diagnostics go: reports to stdout or `--output`, every other line to stderr,
escaped; a progress bar only on a terminal."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

import typer


PROGRESS_FROM = 20  # stacks: a shorter run needs no progress bar


def stderr(line: str) -> None:
    """A line on stderr, escaped: a name or message from a file, Azure or Pulumi cannot move the cursor, clear the
    terminal or start a forged line."""
    from modules.spec import printable

    typer.echo(printable(line), err=True)


def write_report(command: str, report: str, output: Path | None, option: str = "--output") -> None:
    """The report to `output` (stdout when None). A write that fails after the work (disk full, permissions changed
    meanwhile) is one line on stderr, no exit: the command keeps the exit code that says what it found."""
    if output is None:
        sys.stdout.write(report)
        return
    try:
        output.write_text(report, encoding="utf-8")
    except OSError as error:
        stderr(f"fluxfleet {command}: {option} {output}: cannot write the report: {error.strerror or error}")
        return
    stderr(f"wrote {output}")


@contextmanager
def progress(what: str, total: int):
    """A progress bar on stderr for a long run when stderr is a terminal (never in a log); yields `advance(_)`."""
    if total < PROGRESS_FROM or not sys.stderr.isatty():
        yield lambda _done: None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(what, total=total)
        yield lambda _done: progress.advance(task)


def versions_notice() -> None:
    """A line on stderr for each dated table (supported Kubernetes versions, Flux extension releases) more than six
    months old."""
    from modules import flux_extension_versions, kubernetes_versions

    today = kubernetes_versions.today()
    for table in (kubernetes_versions, flux_extension_versions):
        if notice := table.stale_notice(today):
            stderr(notice)
