"""How `fluxfleet drift` reports: text for a terminal, JSON for tools (shape in schemas/drift-report.schema.json),
Markdown for a CI job summary, JUnit XML (a test case a stack, so CI shows drift as failed tests), and the short
card `--notify` posts."""

from __future__ import annotations

import io
import json
import os
from collections import Counter
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.text import Text

from fluxfleet.drift import FleetDrift, Severity, StackDrift, Status
from fluxfleet.drift.junit import TestCase, junit_xml
from fluxfleet.drift.notify import Card
from fluxfleet import markdown as md
from modules.spec import printable

MARKS = {
    Status.in_sync: ("✔", "green"),
    Status.drifted: ("✗", "red"),
    Status.error: ("!", "yellow"),
    Status.invalid: ("✗", "red"),
}


def to_json(fleet: FleetDrift) -> dict[str, Any]:
    return {
        "ok": fleet.exit_code == 0,
        "exitCode": fleet.exit_code,
        "stacks": [
            {
                "stack": stack.stack,
                "file": stack.file,
                "status": stack.status,
                "seconds": round(stack.seconds, 3),
                "findings": [
                    {"kind": f.kind, "subject": f.subject, "message": f.message, "severity": f.severity}
                    for f in stack.findings
                ],
                "errors": stack.errors,
                "specErrors": [{"file": e.file, "path": e.path, "message": e.message} for e in stack.spec_errors],
                "remediation": stack.remediation,
            }
            for stack in fleet.stacks
        ],
    }


def _problems(stack: StackDrift) -> list[str]:
    """One line per thing to read: spec errors, failed looks, drift, then notes; each escaped (what Azure, the
    cluster or Pulumi said can hold a terminal escape or a newline that would forge a line)."""
    lines = [str(issue) for issue in stack.spec_errors]
    lines += [f"error: {error}" for error in stack.errors]
    lines += [f"{f.kind}: {f.subject}: {f.message}" for f in stack.findings if f.severity is Severity.drift]
    lines += [f"note: {f.kind}: {f.subject}: {f.message}" for f in stack.findings if f.severity is Severity.note]
    if stack.remediation:
        lines.append(f"remediation: {stack.remediation}")
    return [printable(line) for line in lines]


def to_text(fleet: FleetDrift, color: bool = False, width: int = 120) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=color, no_color=not color, width=width, highlight=False)
    for stack in fleet.stacks:
        mark, style = MARKS[stack.status]
        heading = f" {printable(stack.stack)}  {stack.status}  {printable(stack.file)}"
        console.print(Text.assemble((mark, style), heading), soft_wrap=True)
        for line in _problems(stack):
            console.print(Text(f"    {line}"), soft_wrap=True)
    console.print(_headline(fleet))
    return buffer.getvalue()


def _headline(fleet: FleetDrift) -> str:
    counts = Counter(stack.status for stack in fleet.stacks)
    return (
        f"{len(fleet.stacks)} stack(s): {counts[Status.in_sync]} in sync, {counts[Status.drifted]} drifted, "
        f"{counts[Status.error]} error(s), {counts[Status.invalid]} invalid"
    )


def to_markdown(fleet: FleetDrift) -> str:
    icons = {Status.in_sync: "✅", Status.drifted: "⚠️", Status.error: "❌", Status.invalid: "❌"}
    lines = ["# fluxfleet drift", "", _headline(fleet), ""]
    lines += ["| stack | status | infrastructure | flux | secret rotation |", "|---|---|---|---|---|"]
    for stack in fleet.stacks:
        kinds = Counter(f.kind for f in stack.drifts)
        counts = " | ".join(str(kinds[kind]) for kind in ("infrastructure", "flux", "secret-rotation"))
        lines.append(f"| {md.text(stack.stack)} | {icons[stack.status]} {stack.status} | {counts} |")
    for stack in fleet.stacks:
        problems = _problems(stack)
        if problems:
            lines += ["", f"## {md.text(stack.stack)}", ""] + [f"- {md.text(line)}" for line in problems]
    return "\n".join(lines) + "\n"


def to_junit(fleet: FleetDrift, timestamp: datetime) -> str:
    cases = []
    for stack in fleet.stacks:
        details = "\n".join(_problems(stack))
        failure = error = None
        if stack.status is Status.drifted:
            failure = f"{len(stack.drifts)} drift(s): " + "; ".join(f"{f.kind} {f.subject}" for f in stack.drifts)
            failure = printable(failure)  # escaped: the XML writer could only drop what XML 1.0 forbids
        elif stack.status in (Status.error, Status.invalid):
            error = printable((stack.errors or [str(issue) for issue in stack.spec_errors])[0])
        cases.append(TestCase(printable(stack.stack), "fluxfleet.drift", stack.seconds, failure, error, details))
    return junit_xml("fluxfleet drift", cases, timestamp)


FORMATS = ("text", "json", "markdown", "junit")  # what `render` writes, in the order help lists them


def render(fleet: FleetDrift, fmt: str, timestamp: datetime, color: bool = False) -> str:
    if fmt == "json":
        return json.dumps(to_json(fleet), indent=2) + "\n"
    if fmt == "markdown":
        return to_markdown(fleet)
    if fmt == "junit":
        return to_junit(fleet, timestamp)
    return to_text(fleet, color=color)


def card(fleet: FleetDrift, environ: dict[str, str] | None = None) -> Card:
    """The Teams card: counts, a line per stack that drifted or failed, a link to the CI run when there is one."""
    environ = dict(os.environ) if environ is None else environ
    counts = Counter(stack.status for stack in fleet.stacks)
    lines = []
    for stack in fleet.stacks:
        if stack.status is Status.in_sync:
            continue
        kinds = Counter(f.kind for f in stack.drifts)
        what = ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items())) or (stack.errors or ["invalid"])[0]
        lines.append(f"{stack.stack}: {stack.status} ({what})"[:200])
    link = None
    if all(environ.get(key) for key in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")):
        link = f"{environ['GITHUB_SERVER_URL']}/{environ['GITHUB_REPOSITORY']}/actions/runs/{environ['GITHUB_RUN_ID']}"
    return Card(
        title="fluxfleet drift",
        summary=_headline(fleet),
        facts=[(str(status), str(counts[status])) for status in Status],
        lines=lines,
        link=link,
    )
