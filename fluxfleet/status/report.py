"""`fluxfleet status` as text (a rich table), JSON (schemas/status-report.schema.json) and Markdown (a CI job
summary). The HTML page is html.py."""

from __future__ import annotations

import io
import json
from collections import Counter
from typing import Any, Literal

from rich.console import Console
from rich.table import Table
from rich.text import Text

from fluxfleet import markdown as md
from fluxfleet.status.model import FleetStatus, Health, StackStatus
from modules.spec import printable

Format = Literal["text", "json", "markdown", "html"]
STYLE = {Health.healthy: "green", Health.progressing: "blue", Health.unhealthy: "red", Health.unread: "yellow"}
MARK = {Health.healthy: "✔", Health.progressing: "…", Health.unhealthy: "✗", Health.unread: "?"}
ODD = "≠"  # a revision other than its stage's


def render(status: FleetStatus, fmt: Format, color: bool = False, width: int = 160) -> str:
    if fmt == "json":
        return json.dumps(to_json(status), indent=2, ensure_ascii=False) + "\n"
    if fmt == "markdown":
        return to_markdown(status)
    if fmt == "html":
        from fluxfleet.status.html import to_html

        return to_html(status)
    return to_text(status, color=color, width=width)


def to_json(status: FleetStatus) -> dict[str, Any]:
    return {
        "readAt": _time(status.read_at),
        "healthy": status.healthy,
        "counts": _counts(status),
        "denied": list(status.denied),
        "errors": list(status.errors),
        "stacks": [
            {
                "stack": s.stack,
                "file": s.file,
                "stage": s.stage,
                "kind": s.kind,
                "cluster": s.cluster,
                "resourceGroup": s.resource_group,
                "subscriptionId": s.subscription_id,
                "health": s.health.value,
                "summary": s.summary,
                "clusterState": s.cluster_state,
                "kubernetesVersion": s.kubernetes_version,
                "lastSeen": _time(s.last_seen),
                "extension": {"state": s.extension_state, "version": s.extension_version} if s.read else None,
                "oddRevision": s.odd_revision,
                "configurations": [
                    {
                        "name": c.name,
                        "health": c.health.value,
                        "compliance": c.compliance,
                        "provisioning": c.provisioning,
                        "revision": c.revision,
                        "pinned": c.pinned,
                        "message": c.message,
                        "updatedAt": _time(c.updated_at),
                    }
                    for c in s.configurations
                ],
            }
            for s in status.stacks
        ],
    }


def _time(moment: Any) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def _counts(status: FleetStatus) -> dict[str, int]:
    counted = Counter(stack.health for stack in status.stacks)
    return {health.value: counted.get(health, 0) for health in Health}


def extension_shown(stack: StackStatus) -> str:
    """The Flux extension as every format shows it: unread, not installed, or its state and version."""
    if not stack.read:
        return "unread"
    if stack.extension_state is None:
        return "not installed"
    return f"{stack.extension_state} {stack.extension_version or ''}".strip()


def _revisions(stack: StackStatus) -> str:
    if not stack.read:
        return "unread"
    return ", ".join(f"{c.name} {c.compliance} @ {c.revision or '-'}" for c in stack.configurations) or "-"


def to_text(status: FleetStatus, color: bool = False, width: int = 160) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=color, no_color=not color, width=width, highlight=False)
    table = Table("", "stack", "stage", "cluster", "state", "kubernetes", "flux extension", box=None)
    table.add_column("configurations", overflow="fold")  # revisions are long: folded, never cut
    for stack in status.stacks:
        configurations = (f"{ODD} stage  " if stack.odd_revision else "") + _revisions(stack)
        table.add_row(
            Text(MARK[stack.health], style=STYLE[stack.health]),
            Text(printable(stack.stack)),
            Text(printable(stack.stage or "-")),
            Text(printable(f"{stack.kind} {stack.resource_group}/{stack.cluster}")),
            Text(printable(stack.cluster_state)),
            Text(printable(stack.kubernetes_version or "-")),
            Text(printable(extension_shown(stack))),
            Text(printable(configurations), style="bold" if stack.odd_revision else ""),
        )
    console.print(table)
    for stack in status.stacks:  # why, one line each, never wrapped: people grep them
        if stack.health is not Health.healthy:
            line = f"{MARK[stack.health]} {stack.stack}: {stack.health.value}: {stack.summary}"
            console.print(Text(printable(line), style=STYLE[stack.health]), soft_wrap=True)
    for line in (*status.denied, *status.errors):
        console.print(Text(printable(f"? {line}"), style="yellow"), soft_wrap=True)
    counts = _counts(status)
    tally = ", ".join(f"{count} {health}" for health, count in counts.items())
    console.print(f"{tally} (read {_time(status.read_at)})")
    return buffer.getvalue()


def to_markdown(status: FleetStatus) -> str:
    counts = _counts(status)
    lines = [
        "# fluxfleet status",
        "",
        f"Read {_time(status.read_at)}: " + ", ".join(f"{count} {health}" for health, count in counts.items()) + ".",
        "",
    ]
    lines += [f"- ❔ {md.text(line)}" for line in (*status.denied, *status.errors)]
    unhealthy = sorted((s for s in status.stacks if s.health is not Health.healthy), key=lambda s: s.health.rank)
    if unhealthy:
        lines += ["", "## Not healthy", "", "| | stack | stage | why |", "|---|---|---|---|"]
        lines += [
            f"| {_icon(s.health)} | {md.text(s.stack)} | {md.text(s.stage or '-')} | {md.text(s.summary)} |"
            for s in unhealthy
        ]
    lines += [
        "",
        "## Stacks",
        "",
        "| | stack | stage | cluster | state | flux extension | configurations |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in status.stacks:
        odd = f" **{ODD} stage**" if s.odd_revision else ""
        lines.append(
            f"| {_icon(s.health)} | {md.text(s.stack)} | {md.text(s.stage or '-')} | "
            f"{md.text(f'{s.kind} {s.resource_group}/{s.cluster}')} | {md.text(s.cluster_state)} | "
            f"{md.text(extension_shown(s))} | "
            f"{md.text(_revisions(s))}{odd} |"
        )
    return "\n".join(lines) + "\n"


def _icon(health: Health) -> str:
    return {Health.healthy: "✅", Health.progressing: "⏳", Health.unhealthy: "❌", Health.unread: "❔"}[health]
