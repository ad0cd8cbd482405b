"""`fluxfleet status` as one self-contained HTML page, fit to publish as a CI artifact.

The page fetches nothing (inline CSS, no scripts, no images; a Content-Security-Policy says so to the browser) and
needs no JavaScript: a stage × cluster grid of cells coloured by health, each cell's detail shown on hover or
keyboard focus by CSS alone, and below it a plain table of the stacks that need a look, for print and for readers
without a pointer. Colour is never the only carrier: every cell also shows its health as a symbol and a hidden word.

Same status in, same bytes out: nothing here reads the clock or iterates an unordered collection. Every text from
the model (stack names, Azure's messages) goes through `_text`, which escapes it for HTML.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections import Counter
from datetime import UTC, datetime

from fluxfleet.status.model import ConfigurationStatus, FleetStatus, Health, StackStatus
from fluxfleet.status.report import MARK, ODD, extension_shown
from modules.spec import printable

# Primer's accessible colours: white text on each reaches WCAG AA (≥ 4.5:1); tests/fluxfleet/status checks that.
COLOURS = {
    Health.healthy: "#1a7f37",
    Health.progressing: "#0969da",
    Health.unhealthy: "#cf222e",
    Health.unread: "#6e7781",
}
WORST_FIRST = sorted(Health, key=lambda health: health.rank)
NO_STAGE = "no stage"

# One style sheet for every cell: classes, never a style attribute per cell, keep 5,000 cells light.
CSS = (
    ":root{color-scheme:light}"
    "*{box-sizing:border-box}"
    "body{margin:0;padding:1rem 1.5rem 3rem;color:#1f2328;background:#fff;"
    'font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,"Open Sans","DejaVu Sans",sans-serif}'
    "h1{font-size:1.4rem;margin:0 0 .25rem}"
    "h2{font-size:1.1rem;margin:1.5rem 0 .5rem}"
    "header p{margin:.25rem 0}"
    "ul.counts{display:flex;flex-wrap:wrap;gap:.5rem;list-style:none;padding:0;margin:.5rem 0}"
    ".pill{display:inline-block;padding:.1rem .6rem;border-radius:1rem;color:#fff;white-space:nowrap}"
    "ul.problems{list-style:none;padding:0;margin:.5rem 0}"
    "ul.problems li{margin:.15rem 0;padding:.2rem .5rem;border-left:4px solid #9a6700;background:#fff8c5;"
    "overflow-wrap:anywhere}"
    ".legend{font-size:.85rem;color:#59636e}"
    ".stage{display:grid;grid-template-columns:10rem 1fr;gap:.75rem;padding:.4rem 0;border-top:1px solid #d0d7de}"
    ".label{font-size:.85rem;overflow-wrap:anywhere}"
    ".label small{display:block;color:#59636e}"
    ".cells{display:flex;flex-wrap:wrap;gap:3px;align-content:flex-start;min-width:0}"
    ".cell{position:relative;display:flex;align-items:center;gap:.25rem;max-width:12rem;padding:.1rem .4rem;"
    "border-radius:3px;color:#fff;font-size:.7rem;line-height:1.4;cursor:default}"
    ".cell .n{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}"
    ".cell:focus{outline:3px solid #9a6700;outline-offset:1px}"
    # The odd revision out: a black-and-white ring and a yellow ≠ badge, seen at a glance among a thousand cells.
    ".cell.odd{box-shadow:0 0 0 2px #fff,0 0 0 4px #1f2328;margin:0 3px}"
    ".o{padding:0 .25rem;border-radius:2px;background:#ffd33d;color:#1f2328}"
    ".vh{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}"
    # The detail: a panel fixed in the corner of the window, so it never runs off the edge of a wide grid;
    # pointer-events:none lets the mouse reach the cells beneath it.
    ".tip{display:none;position:fixed;right:1rem;bottom:1rem;z-index:1;width:min(36rem,calc(100vw - 2rem));"
    "max-height:70vh;overflow:hidden;padding:.6rem .8rem;border:1px solid #8c959f;border-radius:6px;"
    "background:#fff;color:#1f2328;font-size:.8rem;line-height:1.4;box-shadow:0 4px 16px rgba(0,0,0,.25);"
    "pointer-events:none;overflow-wrap:anywhere}"
    ".cell:hover .tip,.cell:focus-within .tip{display:block}"
    ".cell:hover .tip{z-index:2}"
    ".tip p{margin:0 0 .3rem}"
    "dl{display:grid;grid-template-columns:auto 1fr;gap:0 .75rem;margin:0 0 .3rem}"
    "dt{color:#59636e}dd{margin:0}"
    "ul.cfg{margin:0;padding-left:1.1rem}"
    ".msg{display:block;white-space:pre-line;color:#59636e}"
    "table{border-collapse:collapse;width:100%;font-size:.85rem}"
    "th,td{padding:.3rem .5rem;border-bottom:1px solid #d0d7de;text-align:left;vertical-align:top;"
    "overflow-wrap:break-word}"
    "td .cfg{overflow-wrap:anywhere}"  # a 40-digit commit breaks; a stage's name does not
    "th{background:#f6f8fa}"
    + "".join(f".{health.value}.cell,.{health.value}.pill{{background:{COLOURS[health]}}}" for health in Health)
    + "@media print{.tip{display:none!important}.cell,.pill{print-color-adjust:exact;-webkit-print-color-adjust:exact}}"
)
# The browser enforces what the module promises: no fetch of any kind, and no style but this sheet.
CSS_HASH = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()
CSP = f"default-src 'none'; style-src 'sha256-{CSS_HASH}'; base-uri 'none'; form-action 'none'"


def to_html(status: FleetStatus) -> str:
    read_at = _time(status.read_at)
    counts = Counter(stack.health for stack in status.stacks)
    tally = ", ".join(f"{counts[health]} {health.value}" for health in WORST_FIRST)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>fluxfleet status {read_at}: {tally}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        _header(status, read_at, counts),
        "<main>",
        '<h2 id="grid">Stages</h2>',
        _grid(status.stacks),
        '<h2 id="attention">Not healthy, or on an odd revision</h2>',
        _attention(status.stacks),
        "</main>",
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


def _header(status: FleetStatus, read_at: str, counts: Counter[Health]) -> str:
    pills = "".join(
        f'<li><span class="pill {health.value}">{MARK[health]} {counts[health]} {health.value}</span></li>'
        for health in WORST_FIRST
    )
    problems = [f"<li>{MARK[Health.unread]} subscription not read: {_text(line)}</li>" for line in status.denied]
    problems += [f"<li>{MARK[Health.unread]} read failed: {_text(line)}</li>" for line in status.errors]
    return "\n".join(
        [
            "<header>",
            "<h1>fluxfleet status</h1>",
            f'<p>Fleet read at <time datetime="{read_at}">{read_at}</time>: {_count(len(status.stacks), "stack")}.</p>',
            f'<ul class="counts">{pills}</ul>',
            *([f'<ul class="problems">{"".join(problems)}</ul>'] if problems else []),
            f'<p class="legend">Each cell is one stack, coloured by its health. <span class="o">{ODD}</span> marks a '
            "stack running a revision other than its stage's others. Hover or focus a cell for its detail.</p>",
            "</header>",
        ]
    )


def _grid(stacks: list[StackStatus]) -> str:
    if not stacks:
        return "<p>No stacks in this report.</p>"
    rows: dict[str | None, list[StackStatus]] = {}  # stages in the model's order: fleet.yaml's, no stage last
    for stack in stacks:
        rows.setdefault(stack.stage, []).append(stack)
    return "\n".join(_row(stage, members) for stage, members in rows.items())


def _row(stage: str | None, stacks: list[StackStatus]) -> str:
    name = f"<b>{_text(stage)}</b>" if stage is not None else f"<i>{NO_STAGE}</i>"
    counts = Counter(stack.health for stack in stacks)
    notes = [f"{MARK[health]} {counts[health]}" for health in WORST_FIRST[:-1] if counts[health]]  # all but healthy
    odd = sum(stack.odd_revision for stack in stacks)
    notes += [f"{ODD} {odd}"] if odd else []
    summary = " · ".join([_count(len(stacks), "stack"), *notes])
    cells = "".join(_cell(stack) for stack in stacks)
    label = f'<div class="label">{name}<small>{summary}</small></div>'
    return f'<section class="stage">{label}<div class="cells">{cells}</div></section>'


def _cell(stack: StackStatus) -> str:
    health = stack.health.value
    classes = f"cell {health} odd" if stack.odd_revision else f"cell {health}"
    badge = f'<b class="o">{ODD}</b>' if stack.odd_revision else ""
    spoken = f"{health}, odd revision" if stack.odd_revision else health
    title = _text(f"{stack.stack}: {health}{', odd revision' if stack.odd_revision else ''}: {stack.summary}")
    return (
        f'<div class="{classes}" data-health="{health}" tabindex="0" title="{title}">'
        f'<span aria-hidden="true">{MARK[stack.health]}</span><span class="n">{_text(stack.stack)}</span>{badge}'
        f'<span class="vh"> {spoken}</span><div class="tip">{_detail(stack)}</div></div>'
    )


def _detail(stack: StackStatus) -> str:
    health = f"{MARK[stack.health]} {stack.health.value}" + (f" · {ODD} odd revision" if stack.odd_revision else "")
    cluster = f"{stack.kind} {stack.cluster} · resource group {stack.resource_group}"
    cluster += f" · subscription {stack.subscription_id}" if stack.subscription_id else " · no subscription"
    state = [stack.cluster_state]
    state += [f"Kubernetes {stack.kubernetes_version}"] if stack.kubernetes_version else []
    state += [f"last seen {_time(stack.last_seen)}"] if stack.last_seen else []
    facts = [
        ("stage", stack.stage or NO_STAGE),
        ("cluster", cluster),
        ("state", " · ".join(state)),
        ("flux extension", extension_shown(stack)),
        ("file", stack.file),
    ]
    return (
        f"<p><b>{_text(stack.stack)}</b> {health}</p><p>{_text(stack.summary, lines=True)}</p>"
        f"<dl>{''.join(f'<dt>{key}</dt><dd>{_text(value)}</dd>' for key, value in facts)}</dl>"
        f"{_configurations(stack.configurations) or '<p>No Flux configuration.</p>'}"
    )


def _configurations(configurations: tuple[ConfigurationStatus, ...]) -> str:
    if not configurations:
        return ""
    items = []
    for c in configurations:
        compliance = c.compliance if c.provisioning == "Succeeded" else f"{c.compliance}, {c.provisioning}"
        line = f"{compliance} · runs {c.revision or '-'} · pins {c.pinned or '-'}"
        message = f'<span class="msg">{_text(c.message, lines=True)}</span>' if c.message else ""
        items.append(f"<li>{MARK[c.health]} <b>{_text(c.name)}</b> {_text(line)}{message}</li>")
    return f'<ul class="cfg">{"".join(items)}</ul>'


def _attention(stacks: list[StackStatus]) -> str:
    """The stacks someone should look at, worst first (the grid's order within a health): the page's content for
    print and for readers without hover. A healthy stack on an odd revision closes the list."""
    listed = [stack for stack in stacks if stack.health is not Health.healthy or stack.odd_revision]
    if not listed:
        return "<p>Every stack is healthy, each on its stage's revision.</p>"
    listed.sort(key=lambda stack: stack.health.rank)  # stable: the grid's order within a health
    rows = []
    for stack in listed:
        odd = f' <b class="o">{ODD}</b>' if stack.odd_revision else ""
        cluster = f"{stack.kind} {stack.cluster} · {stack.resource_group} · {stack.subscription_id or '-'}"
        state = f"{stack.cluster_state} · flux {extension_shown(stack)}"
        # The configurations that explain the row: those not healthy, or all when the revision is the point.
        why = tuple(c for c in stack.configurations if stack.odd_revision or c.health is not Health.healthy)
        rows.append(
            f'<tr data-health="{stack.health.value}">'
            f'<td><span class="pill {stack.health.value}">{MARK[stack.health]} {stack.health.value}</span></td>'
            f"<td>{_text(stack.stack)}{odd}</td><td>{_text(stack.stage or NO_STAGE)}</td>"
            f"<td>{_text(cluster)}</td><td>{_text(state)}</td>"
            f"<td>{_text(stack.summary, lines=True)}{_configurations(why)}</td></tr>"
        )
    head = "<tr><th>health</th><th>stack</th><th>stage</th><th>cluster</th><th>state</th><th>why</th></tr>"
    return f"<table>\n<thead>{head}</thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _text(value: str, *, lines: bool = False) -> str:
    """Model text as HTML text or attribute value: controls escaped as `\\x1b` first (a page is read by people),
    then `<`, `>`, `&` and both quotes as entities."""
    return html.escape(printable(value, lines=lines), quote=True)


def _time(moment: datetime) -> str:
    if moment.tzinfo is None:  # the model's times are UTC; a naive one is taken as such, not as local time
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
