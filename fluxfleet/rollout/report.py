"""What `fluxfleet rollout` shows: live progress while it runs, and a summary (text, JSON, or Markdown for a CI job
summary, with a Mermaid diagram of the stages); and the `--dry-run` plan with its estimated duration and the
refs each stage applies."""

from __future__ import annotations

import io
import json
import sys
import textwrap
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from fluxfleet.rollout.journal import RunRecord, StackEntry, StackState, StagePlan
from fluxfleet.rollout.orchestrator import DEFAULT_STACK_SECONDS, Observer, StageEstimate
from fluxfleet.rollout.refs import AppliedRef, ConfigurationRefs
from fluxfleet import markdown as md
from modules.spec import printable

MARKS = {
    StackState.succeeded: ("✔", "green"),
    StackState.failed: ("✗", "red"),
    StackState.skipped: ("-", "dim"),
    StackState.pending: (" ", ""),
    StackState.running: ("…", "yellow"),
    StackState.gating: ("…", "yellow"),
    StackState.deferred: ("⏸", "yellow"),
}

ROLLBACK_MARKS = {StackState.succeeded: "↩ rolled back", StackState.failed: "↩ ROLLBACK FAILED"}


# --------------------------------------------------------------------------------------------- while it runs


class LiveProgress(Observer):
    """A bar per stage and a line per running stack, redrawn in place (for a terminal)."""

    def __init__(self, console: Console):
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
        )
        self.live = Live(self.progress, console=console, refresh_per_second=4)
        self.stages: dict[str, TaskID] = {}
        self.stacks: dict[str, TaskID] = {}
        self.stage_of: dict[str, str] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> LiveProgress:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(*exc)

    def stage_started(self, stage: StagePlan) -> None:
        with self._lock:
            description = f"[bold]stage {escape(stage.name)}"
            self.stages[stage.name] = self.progress.add_task(description, total=len(stage.stacks))
            self.stage_of.update({name: stage.name for name in stage.stacks})

    def stack_started(self, stack: str) -> None:
        with self._lock:
            self.stacks[stack] = self.progress.add_task(f"  {escape(stack)}: starting", total=None)

    def stack_progress(self, stack: str, line: str) -> None:
        with self._lock:
            if stack in self.stacks:
                self.progress.update(self.stacks[stack], description=f"  {escape(stack)}: {escape(printable(line))}")

    def stack_finished(self, stack: str, entry: StackEntry) -> None:
        with self._lock:
            if stack in self.stacks:
                self.progress.remove_task(self.stacks.pop(stack))
            self.progress.advance(self.stages[self.stage_of[stack]])
            mark, style = MARKS[entry.state]
            self.progress.console.print(
                Text.assemble((mark, style), f" {stack}: {printable(entry.message)}"), soft_wrap=True
            )

    def baking(self, stage: StagePlan, seconds: float) -> None:
        self.progress.console.print(f"stage {stage.name} done: {_soaking(seconds)} before the next stage")

    def waiting_for_window(self, stack: str, opens: datetime) -> None:
        self.progress.console.print(f"  {stack}: waiting for its deployment window until {_when(opens)}")

    def soak_finding(self, stack: str, finding: str) -> None:
        self.progress.console.print(Text.assemble(("✗", "red"), f" {stack}: soak: {printable(finding)}"))


class LogProgress(Observer):
    """One line per event, for CI logs and other non-terminals."""

    def __init__(self, stream: TextIO = sys.stderr):
        self.stream = stream
        self._lock = threading.Lock()

    def _say(self, line: str) -> None:
        with self._lock:
            print(line, file=self.stream, flush=True)

    def stage_started(self, stage: StagePlan) -> None:
        self._say(f"stage {stage.name}: {len(stage.stacks)} stack(s), {stage.max_concurrency} at a time")

    def stack_started(self, stack: str) -> None:
        self._say(f"  {stack}: updating")

    def stack_finished(self, stack: str, entry: StackEntry) -> None:
        self._say(f"  {MARKS[entry.state][0]} {stack}: {entry.state}: {printable(entry.message)}")

    def baking(self, stage: StagePlan, seconds: float) -> None:
        self._say(f"stage {stage.name} done: {_soaking(seconds)} before the next stage")

    def waiting_for_window(self, stack: str, opens: datetime) -> None:
        self._say(f"  {stack}: waiting for its deployment window until {_when(opens)}")

    def soak_finding(self, stack: str, finding: str) -> None:
        self._say(f"  ✗ {stack}: soak: {printable(finding)}")


def _soaking(seconds: float) -> str:
    return f"soaking {_duration(seconds)}"


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


# --------------------------------------------------------------------------------------------- the summary


def summary_json(record: RunRecord) -> dict[str, Any]:
    return {
        "runId": record.run_id,
        "status": record.status,
        "reason": record.reason,
        "startedAt": record.started_at,
        "updatedAt": record.updated_at,
        "approved": record.approved,
        "stages": [
            {
                "name": stage.name,
                "maxConcurrency": stage.max_concurrency,
                "maxFailures": stage.max_failures,
                "maxFailuresPercent": stage.max_failures_percent,
                "minSuccess": stage.min_success,
                "minSucceeded": stage.min_succeeded,
                "windows": [str(window) for window in stage.windows],
                "bakeUntil": stage.bake_until,
                "soakedUntil": stage.soaked_until,
                "soakEnded": stage.soak_ended,
                "approval": stage.approval,
                "rollback": stage.rollback,
                "rolledBack": stage.rolling_back,
                "pinsRestored": stage.pins_restored,
                "stacks": [_stack_json(name, record.stacks[name]) for name in stage.stacks],
            }
            for stage in record.stages
        ],
    }


def _stack_json(name: str, entry: StackEntry) -> dict[str, Any]:
    rollback = entry.rollback
    return {
        "stack": name,
        "state": entry.state,
        "message": entry.message,
        "startedAt": entry.started_at,
        "endedAt": entry.ended_at,
        "changes": entry.changes,
        "previousRefs": entry.previous_refs,
        "refs": entry.refs,
        "rollback": None
        if rollback is None
        else {
            "state": rollback.state,
            "reason": rollback.reason,
            "refs": rollback.refs,
            "message": rollback.message,
            "startedAt": rollback.started_at,
            "endedAt": rollback.ended_at,
        },
        "runs": entry.runs,  # what the stack runs now, as far as the run knows; null: not known
        "windowOpens": entry.window_opens,  # waiting for a deployment window that opens then
        "soak": entry.soak or None,  # what its stage's soak saw of it; null: not watched
    }


def rollback_lines(record: RunRecord) -> list[str]:
    """What was rolled back, why, and what now runs there; what became of the pins of a stage rolled back."""
    lines = []
    for stage in record.stages:
        for name in stage.stacks:
            rollback = record.stacks[name].rollback
            if rollback is None:
                continue
            to = _refs_text(rollback.refs)
            if rollback.state is StackState.succeeded:
                outcome = f"rolled back: runs {to} again"
            elif rollback.state is StackState.failed:
                outcome = f"ROLLBACK FAILED (to {to}): {rollback.message}: look at it by hand"
            else:
                outcome = f"rollback to {to} {rollback.state}: resume the run"
            lines.append(f"{name}: {outcome} (why: {rollback.reason})")
        lines += [f"stage {stage.name}: {note}" for note in stage.pins_restored or ()]
    return [printable(line) for line in lines]


def soak_lines(record: RunRecord) -> list[str]:
    """What each stage's soak saw: per stack, healthy throughout or turned unhealthy at T with why; and the stacks
    waiting for a deployment window, with until when."""
    lines = []
    for stage in record.stages:
        if stage.after_stage_wait and (stage.soaked_until or stage.soak_ended):
            state = "ended" if stage.soak_ended else f"watched until {stage.soaked_until}"
            lines.append(f"stage {stage.name}: soak until {stage.bake_until} ({state})")
            lines += [f"  {name}: {record.stacks[name].soak}" for name in stage.stacks if record.stacks[name].soak]
        for name in stage.stacks:
            if (opens := record.stacks[name].window_opens) is not None:
                lines.append(f"{name}: waiting for its deployment window until {opens}")
    return [printable(line) for line in lines]


def _refs_text(refs: dict[str, dict[str, str]]) -> str:
    return "; ".join(f"{config} {' '.join(f'{k} {v}' for k, v in ref.items())}" for config, ref in refs.items())


def _counts(record: RunRecord, stage: StagePlan) -> dict[StackState, int]:
    counts = dict.fromkeys(StackState, 0)
    for name in stage.stacks:
        counts[record.stacks[name].state] += 1
    return counts


def summary_text(record: RunRecord, color: bool = False, width: int = 120) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=color, no_color=not color, width=width, highlight=False)
    table = Table(title=f"rollout {record.run_id}: {record.status}", title_justify="left")
    for column in ("stage", "stack", "result", "changes", "detail"):
        table.add_column(column, overflow="fold")
    for stage in record.stages:
        for name in stage.stacks:
            entry = record.stacks[name]
            mark, style = MARKS[entry.state]
            changes = ", ".join(f"{op} {n}" for op, n in sorted(entry.changes.items()) if op != "same")
            detail = printable(entry.message)
            result = Text(f"{mark} {entry.state}", style=style)
            if entry.rollback is not None:
                result.append(f" {ROLLBACK_MARKS.get(entry.rollback.state, 'rolling back')}")
            table.add_row(printable(stage.name), name, result, changes, detail)
    console.print(table)
    if record.reason:
        console.print(Text(printable(record.reason)), soft_wrap=True)
    for line in rollback_lines(record):
        console.print(Text(line, style="bold red" if "ROLLBACK FAILED" in line else ""), soft_wrap=True)
    for line in soak_lines(record):
        console.print(Text(line, style="red" if "turned unhealthy" in line else ""), soft_wrap=True)
    return buffer.getvalue()


def summary_markdown(record: RunRecord) -> str:
    lines = [f"# fluxfleet rollout {md.code(record.run_id)}: {record.status}", ""]
    if record.reason:
        lines += [f"> {md.text(record.reason)}", ""]
    lines += ["```mermaid", "graph LR"]
    for index, stage in enumerate(record.stages):
        counts = _counts(record, stage)
        done, failed = counts[StackState.succeeded], counts[StackState.failed]
        label = f"{md.mermaid_label(stage.name)}<br/>✔ {done} ✗ {failed} of {len(stage.stacks)}"
        if stage.approval:
            label += "<br/>approval"
        lines.append(f'  s{index}["{label}"]')
        if index:
            lines.append(f"  s{index - 1} --> s{index}")
    lines += ["```", "", "| stage | stack | result | changes | detail |", "|---|---|---|---|---|"]
    icons = {StackState.succeeded: "✅", StackState.failed: "❌", StackState.skipped: "⏭️", StackState.deferred: "⏸️"}
    for stage in record.stages:
        for name in stage.stacks:
            entry = record.stacks[name]
            changes = ", ".join(f"{op} {n}" for op, n in sorted(entry.changes.items()) if op != "same")
            detail = md.text(entry.message)
            result = f"{icons.get(entry.state, '⏳')} {entry.state}"
            if entry.rollback is not None:
                result += f" {ROLLBACK_MARKS.get(entry.rollback.state, 'rolling back')}"
            lines.append(f"| {md.text(stage.name)} | {md.text(name)} | {result} | {md.text(changes)} | {detail} |")
    rolled_back = rollback_lines(record)
    if rolled_back:
        lines += ["", "## Rollbacks", "", *(f"- {md.text(line)}" for line in rolled_back)]
    if soaked := soak_lines(record):
        lines += ["", "## Soaks and windows", "", *(f"- {md.text(line.strip())}" for line in soaked)]
    return "\n".join(lines) + "\n"


def render_summary(record: RunRecord, fmt: str, color: bool = False) -> str:
    if fmt == "json":
        return json.dumps(summary_json(record), indent=2) + "\n"
    if fmt == "markdown":
        return summary_markdown(record)
    return summary_text(record, color=color)


# --------------------------------------------------------------------------------------------- --dry-run


def render_dry_run(
    estimates: list[StageEstimate],
    fmt: str,
    samples: int,
    refs: Mapping[str, Sequence[ConfigurationRefs]] | None = None,
) -> str:
    """The plan of a run; `samples` is how many earlier stack updates the estimate rests on; `refs`, by stage name,
    the ref each of its Flux configurations is applied at."""
    refs = refs or {}
    total = sum(e.seconds + e.wait_after for e in estimates)
    basis = (
        f"from {samples} earlier stack update(s)"
        if samples
        else f"no earlier runs: {_duration(DEFAULT_STACK_SECONDS)} a stack assumed"
    )
    if fmt == "json":
        stages = [
            {
                "name": e.stage.name,
                "stacks": e.stage.stacks,
                "maxConcurrency": e.stage.max_concurrency,
                "maxFailures": e.stage.max_failures,
                "approval": e.stage.approval,
                "rollback": e.stage.rollback,
                "minSuccess": e.stage.min_success,
                "windows": [str(window) for window in e.stage.windows],
                "starts": {name: at.isoformat() if at else None for name, at in e.starts.items()},
                "estimateSeconds": round(e.seconds),
                "waitAfterSeconds": e.wait_after,
                "configurations": [_configuration_json(c) for c in refs.get(e.stage.name, ())],
            }
            for e in estimates
        ]
        document = {"dryRun": True, "stages": stages, "estimateSeconds": round(total), "estimateSamples": samples}
        return json.dumps(document, indent=2) + "\n"
    lines = []
    if fmt == "markdown":
        lines += ["# fluxfleet rollout (dry run)", "", "| # | stage | stacks | at a time | estimate |"]
        lines.append("|---|---|---|---|---|")
        for index, e in enumerate(estimates, 1):
            approval = (" (approval)" if e.stage.approval else "") + (" (rolls back)" if e.stage.rollback else "")
            lines.append(
                f"| {index} | {md.text(e.stage.name)}{approval} | {md.text(', '.join(e.stage.stacks))} | "
                f"{e.stage.max_concurrency} "
                f"| {_duration(e.seconds)}{f' + bake {_duration(e.wait_after)}' if e.wait_after else ''} |"
            )
        lines += ["", f"Estimated total: {_duration(total)} ({basis}; approvals not counted)."]
        lines += _applied_table(estimates, refs)
        return "\n".join(lines) + "\n"
    for index, e in enumerate(estimates, 1):
        approval = ", waits for approval" if e.stage.approval else ""
        rollback = ", rolls back" if e.stage.rollback else ""
        budget = f"up to {e.stage.max_failures} failure(s)"
        if e.stage.max_failures_percent:
            budget += f" ({e.stage.max_failures_percent}, rounded down)"
        if e.stage.min_success:
            budget += f", at least {e.stage.min_succeeded} succeeded (minSuccess {e.stage.min_success})"
        lines.append(
            f"{index}. stage {e.stage.name}: {len(e.stage.stacks)} stack(s), {e.stage.max_concurrency} at a time, "
            f"{budget}{approval}{rollback}: ~{_duration(e.seconds)}"
        )
        if e.stage.windows:
            lines.append(f"   starts only inside: {'; '.join(map(str, e.stage.windows))}")
        lines += [f"     {position}. {name}{_start_text(e, name)}" for position, name in enumerate(e.stage.stacks, 1)]
        lines += _applied_lines(e.stage, refs.get(e.stage.name, ()))
        if e.wait_after:
            lines.append(f"   then soak {_duration(e.wait_after)} (its stacks watched)")
    lines.append(f"estimated total: ~{_duration(total)} ({basis}; approvals not counted)")
    return "\n".join(lines) + "\n"


def _start_text(e: StageEstimate, name: str) -> str:
    """` (starts ~2026-01-01 22:00 UTC, in its windows)` when the stage's stacks wait for windows."""
    if name not in e.starts:
        return ""
    at = e.starts[name]
    return " (never starts: its windows never meet)" if at is None else f" (starts ~{_when(at)}, in its windows)"


ORIGINS = {"pin": "stage pin", "stack": "stack's own"}  # where a ref comes from, as the text and Markdown say it
SOURCES = {"git": "git", "oci": "OCI", "bucket": "bucket", "azureBlob": "Azure Blob"}


def _configuration_json(configuration: ConfigurationRefs) -> dict[str, Any]:
    return {
        "name": configuration.name,
        "refs": [
            {"ref": applied.ref, "origin": applied.origin, "source": applied.source, "stacks": list(applied.stacks)}
            for applied in configuration.refs
        ],
    }


def _applied(applied: AppliedRef) -> str:
    """`at tag v1.0.0 (stage pin)`; a source without a ref says which it is."""
    if applied.ref is None or applied.origin is None:
        return f"from its {SOURCES.get(applied.source, applied.source)} source (no ref)"
    return f"at {applied.ref} ({ORIGINS[applied.origin]})"


def _applied_lines(stage: StagePlan, configurations: Sequence[ConfigurationRefs]) -> list[str]:
    """A line per configuration and ref, naming its stacks unless every stack of the stage applies it; wrapped at
    120 columns between stack names."""
    lines = []
    for configuration in configurations:
        for applied in configuration.refs:
            line = f"   applies {configuration.name} {_applied(applied)}"
            if list(applied.stacks) != stage.stacks:
                line += f" on {', '.join(applied.stacks)}"
            indent = " " * 6
            lines += textwrap.wrap(
                printable(line), 120, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False
            )
    return lines


def _applied_table(estimates: list[StageEstimate], refs: Mapping[str, Sequence[ConfigurationRefs]]) -> list[str]:
    """A table of the refs each stage applies; nothing when no stage has a Flux configuration."""
    rows = []
    for e in estimates:
        for configuration in refs.get(e.stage.name, ()):
            for applied in configuration.refs:
                ref = md.text(applied.ref) if applied.ref else "no ref"
                origin = ORIGINS[applied.origin] if applied.origin else f"{SOURCES.get(applied.source, '')} source"
                stacks = "all" if list(applied.stacks) == e.stage.stacks else md.text(", ".join(applied.stacks))
                rows.append(
                    f"| {md.text(e.stage.name)} | {md.text(configuration.name)} | {ref} | {origin} | {stacks} |"
                )
    if not rows:
        return []
    header = [
        "",
        "## Refs each stage applies",
        "",
        "| stage | configuration | ref | from | stacks |",
        "|---|---|---|---|---|",
    ]
    return header + rows


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
