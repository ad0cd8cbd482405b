"""`fluxfleet runs`' work: the runs of the state store (local files, or Azure Blob Storage beside Pulumi's state),
each with its status and how many of its stacks are done, failed or pending; or one run stage by stage."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fluxfleet.exits import CommandError, ExitCode, InvalidInput
from fluxfleet.inputs import check_output, run_store_of
from fluxfleet.rollout.journal import ENDED, Journal, RunRecord, StackState, StageProgress, check_run_id
from fluxfleet.runs.timeline import to_html
from fluxfleet.runstate.store import StateStore, StoreError


@dataclass(frozen=True)
class RunsRequest:
    run_id: str | None = None  # one run, stage by stage; None: every run
    runs_dir: Path | None = None
    fmt: str = "text"  # text, json; html: one run's timeline (runs/timeline.py)
    output: Path | None = None


@dataclass(frozen=True)
class RunsResult:
    report: str
    exit_code: ExitCode = ExitCode.OK


def list_runs(request: RunsRequest) -> RunsResult:
    """The report of `fluxfleet runs [RUN]`. InvalidInput for what is no run id; CommandError (exit 1) when the
    store cannot be read or has no such run."""
    if request.fmt == "html" and request.run_id is None:
        raise InvalidInput(
            "fluxfleet runs: --format html draws one run: give its id (fluxfleet runs RUN --format html)"
        )
    check_output("runs", "--output", request.output)
    store = run_store_of("runs", request.runs_dir)
    try:
        if request.run_id is not None:
            try:
                check_run_id(request.run_id)
            except ValueError as error:
                raise InvalidInput(f"fluxfleet runs: {error}") from None
            record = Journal.load(store, request.run_id).record
            return RunsResult(_render_run(record, request.fmt))
        records, unreadable = _records(store)
    except StoreError as error:
        raise CommandError(f"fluxfleet runs: {error}") from None
    except ValueError as error:
        raise CommandError(f"fluxfleet runs: {error}") from None
    report = _render_list(records, unreadable, store.where, request.fmt)
    return RunsResult(report, ExitCode.FAILED if unreadable else ExitCode.OK)


def _records(store: StateStore) -> tuple[list[RunRecord], list[str]]:
    """Every run of the store, oldest first, and a line for each entry that is no readable run."""
    records, unreadable = [], []
    for name in store.names():
        if not name.endswith(".json"):
            continue
        try:
            records.append(Journal.load(store, name.removesuffix(".json")).record)
        except ValueError as error:
            unreadable.append(str(error))
    records.sort(key=lambda record: (record.started_at or "", record.run_id))
    return records, unreadable


def _counts(record: RunRecord) -> dict[str, int]:
    """As a stage's progress counts: pending is what has not ended (a deferred stack has: its gate waits)."""
    states = [entry.state for entry in record.stacks.values()]
    pending = sum(1 for state in states if state not in ENDED)
    return {
        "succeeded": states.count(StackState.succeeded),
        "failed": states.count(StackState.failed),
        "pending": pending,
    }


def _summary(record: RunRecord) -> dict[str, Any]:
    return {
        "id": record.run_id,
        "kind": record.kind,
        "started": record.started_at,
        "status": record.status.value,
        **_counts(record),
    }


def _render_list(records: list[RunRecord], unreadable: list[str], where: str, fmt: str) -> str:
    if fmt == "json":
        return _json({"runs": [_summary(record) for record in records], "unreadable": unreadable})
    if not records and not unreadable:
        return f"no runs in {where}\n"
    rows = [("RUN", "KIND", "STARTED", "STATUS", "DONE", "FAILED", "PENDING")]
    rows += [
        (s["id"], s["kind"], s["started"] or "-", s["status"], str(s["succeeded"]), str(s["failed"]), str(s["pending"]))
        for s in map(_summary, records)
    ]
    return _table(rows) + "".join(f"unreadable: {line}\n" for line in unreadable)


def _render_run(record: RunRecord, fmt: str) -> str:
    if fmt == "html":
        return to_html(record)
    stages = [StageProgress.of(record, stage) for stage in record.stages]
    if fmt == "json":
        return _json(_summary(record) | {"reason": record.reason, "stages": [s.as_json() for s in stages]})
    summary = _summary(record)
    lines = [
        f"{'run' if record.kind == 'rollout' else record.kind} {record.run_id}: {record.status.value}"
        + (f" ({record.reason})" if record.reason else ""),
        f"started {record.started_at}; {summary['succeeded']} done, {summary['failed']} failed, "
        f"{summary['pending']} pending",
        "",
    ]
    rows = [("STAGE", "STACKS", "DONE", "FAILED", "PENDING", "MAX FAILURES", "PASSED", "BAKED UNTIL")]
    rows += [
        (
            s.name,
            str(s.stacks),
            str(s.succeeded),
            str(s.failed),
            str(len(s.open)),
            str(s.max_failures),
            "yes" if s.passed else "no",
            s.bake_until or "-",
        )
        for s in stages
    ]
    return "\n".join(lines) + _table(rows)


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = ("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows)
    return "".join(line.rstrip() + "\n" for line in lines)


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False) + "\n"
