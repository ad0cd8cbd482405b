"""`fluxfleet status` as one self-contained HTML page, fit to publish as a CI artifact, made for a fleet of thousands.

The page fetches nothing (inline CSS, no scripts, no images; a Content-Security-Policy says so to the browser) and
needs no JavaScript. It opens on the fleet by stage, in fleet.yaml's order: per stage a bar of healthy, progressing,
unhealthy and unread stacks with the counts in words, the revision each Flux configuration runs and on how many
stacks (the stage's first, then the odd ones), and the unhealthy and unread stacks by name. Below, the stage ×
cluster grid: a small cell per stack, unhealthy first, its name shown on hover and keyboard focus by CSS alone; a cell
that needs a look leads to its row in the table of what is not healthy, which closes the page (a skip link at the top
goes straight there). Colour is never the only carrier: a cell shows its health as a symbol and names it in words.

Light: at 1,000 stacks at most 300 KB, at 5,000 at most 1.5 MB (benchmarks/status_page.py): one style sheet, no
attribute per cell but its class, and a stack's detail once, in its row.

Same status in, same bytes out: nothing here reads the clock or iterates an unordered collection. Every text from
the model (stack names, Azure's messages) goes through `_text`, which escapes it for HTML.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from fluxfleet.flux_health import short_revision
from fluxfleet.html_page import BASE_CSS
from fluxfleet.status.model import ConfigurationStatus, FleetStatus, Health, StackStatus, stage_revision
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
BAR_ORDER = (Health.healthy, Health.progressing, Health.unhealthy, Health.unread)  # a stage's bar, left to right
NO_STAGE = "no stage"

# One style sheet for every cell: a class, never a style attribute per cell, keeps 5,000 cells light.
CSS = (
    BASE_CSS + "header p{margin:.25rem 0}"
    "ul.counts{display:flex;flex-wrap:wrap;gap:.5rem;list-style:none;padding:0;margin:.5rem 0}"
    ".pill{display:inline-block;padding:.1rem .6rem;border-radius:1rem;color:#fff;white-space:nowrap}"
    "ul.problems{list-style:none;padding:0;margin:.5rem 0}"
    "ul.problems li{margin:.15rem 0;padding:.2rem .5rem;border-left:4px solid #9a6700;background:#fff8c5;"
    "overflow-wrap:anywhere}"
    ".legend{font-size:.85rem;color:#59636e}"
    # The overview: a card per stage.
    ".stage{padding:.5rem 0;border-top:1px solid #d0d7de}"
    ".stage p,.stage ul{margin:.25rem 0}"
    ".bar{display:flex;height:.9rem;max-width:40rem;border-radius:3px;overflow:hidden;background:#d0d7de}"
    ".bar i{flex-basis:0;min-width:3px}"
    + "".join(f".g{share}{{flex-grow:{share}}}" for share in range(1, 101))
    + ".revs{padding-left:1.1rem;overflow-wrap:anywhere}"
    ".names a{white-space:nowrap}"  # a name wraps as a whole
    "code{font-size:.8rem}"
    # The grid: a row per stage, a small square per stack.
    ".row{display:grid;grid-template-columns:10rem 1fr;gap:.75rem;padding:.4rem 0;border-top:1px solid #d0d7de}"
    ".label{font-size:.85rem;overflow-wrap:anywhere}"
    ".label small{display:block;color:#59636e}"
    ".cells{display:flex;flex-wrap:wrap;gap:2px;align-content:flex-start;min-width:0}"
    # 24 px: the least a target may be (WCAG 2.2, 2.5.8), and a cell that leads to its row is one.
    ".cells>*{display:block;width:24px;height:24px;border-radius:3px;color:#fff;font-size:.8rem;line-height:24px;"
    "text-align:center;text-decoration:none;cursor:default}"
    ".cells>a{cursor:pointer}"
    ".cells>:focus{outline:3px solid #9a6700;outline-offset:1px}"
    + "".join(f'.cells>.{health.value}::before{{content:"{MARK[health]}"/""}}' for health in Health)
    # The odd revision out: a black-and-white ring and a ≠ after its symbol, seen at a glance among a thousand cells.
    + ".cells>.odd{width:36px;box-shadow:0 0 0 2px #fff,0 0 0 4px #1f2328;margin:0 3px}"
    f'.cells>.odd::after{{content:"{ODD}"/""}}'
    ".o{padding:0 .25rem;border-radius:2px;background:#ffd33d;color:#1f2328}"
    # A cell's name: out of sight (but read aloud, and found by the browser's search), and on hover or focus shown
    # in a panel fixed in the corner of the window, so it never runs off the edge of a wide grid; pointer-events:none
    # lets the mouse reach the cells beneath it.
    ".cells>*>span{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}"
    ".cells>:hover>span,.cells>:focus>span{position:fixed;right:1rem;bottom:1rem;z-index:1;width:auto;height:auto;"
    "clip:auto;padding:.4rem .8rem;border:1px solid #8c959f;border-radius:6px;background:#fff;color:#1f2328;"
    "font-size:.9rem;line-height:1.4;box-shadow:0 4px 16px rgba(0,0,0,.25);pointer-events:none}"
    ".cells>:hover>span{z-index:2}"
    "table{border-collapse:collapse;width:100%;font-size:.85rem}"
    "th,td{padding:.3rem .5rem;border-bottom:1px solid #d0d7de;text-align:left;vertical-align:top;"
    "overflow-wrap:break-word}"
    "td .cfg{overflow-wrap:anywhere}"  # a 40-digit commit breaks; a stage's name does not
    "th{background:#f6f8fa}"
    "tr>td:first-child{color:#fff;white-space:nowrap}"
    "tr:target>td{outline:2px solid #9a6700}"
    "ul.cfg{margin:0;padding-left:1.1rem}"
    ".msg{display:block;white-space:pre-line;color:#59636e}"
    + "".join(
        f".cells>.{health.value},.pill.{health.value},.bar .{health.value},tr.{health.value}>td:first-child"
        f"{{background:{COLOURS[health]}}}"
        for health in Health
    )
    + "@media print{.cells>*,.pill,tr>td:first-child,.bar i{print-color-adjust:exact;-webkit-print-color-adjust:exact}}"
)
# The browser enforces what the module promises: no fetch of any kind, and no style but this sheet.
CSS_HASH = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()
CSP = f"default-src 'none'; style-src 'sha256-{CSS_HASH}'; base-uri 'none'; form-action 'none'"


def to_html(status: FleetStatus) -> str:
    read_at = _time(status.read_at)
    counts = Counter(stack.health for stack in status.stacks)
    tally = ", ".join(f"{counts[health]} {health.value}" for health in WORST_FIRST)
    entries = _entries(status.stacks)
    stages: dict[str | None, list[_Entry]] = {}  # the model's order: fleet.yaml's stages, no stage last
    for entry in entries:
        stages.setdefault(entry.stack.stage, []).append(entry)
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
        '<a class="skip" href="#attention">Skip to the table of stacks that need a look</a>',
        _header(status, read_at, counts),
        "<main>",
        '<h2 id="stages">Fleet by stage</h2>',
        "\n".join(_stage(stage, members) for stage, members in stages.items()) or "<p>No stacks in this report.</p>",
        '<h2 id="grid">Clusters by stage</h2>',
        *([_LEGEND, *(_row(stage, members) for stage, members in stages.items())] if stages else []),
        '<h2 id="attention">Not healthy, or on an odd revision</h2>',
        _attention(status.stacks, entries),
        "</main>",
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


@dataclass(frozen=True)
class _Entry:
    stack: StackStatus
    row: str | None  # the id of its row in the table; None: healthy, on its stage's revision, in no row


def _entries(stacks: list[StackStatus]) -> list[_Entry]:
    """Each stack with its row in the table, if it needs a look (not healthy, or on an odd revision). The rows go
    worst first, in the model's order within a health; a stack's name may be any text, so a row's id is its number."""
    listed = [stack for stack in stacks if stack.health is not Health.healthy or stack.odd_revision]
    listed.sort(key=lambda stack: stack.health.rank)  # stable: the model's order within a health
    row = {id(stack): f"r{number}" for number, stack in enumerate(listed, 1)}
    return [_Entry(stack, row.get(id(stack))) for stack in stacks]


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
            "</header>",
        ]
    )


def _stage(stage: str | None, entries: list[_Entry]) -> str:
    """A stage at a glance: its bar and counts, the revisions it runs, and its unhealthy and unread stacks by name."""
    stacks = [entry.stack for entry in entries]
    counts = Counter(stack.health for stack in stacks)
    segments = "".join(  # a share of the bar per health, at least a sliver for one stack among thousands
        f'<i class="{health.value} g{max(1, round(100 * counts[health] / len(stacks)))}"></i>'
        for health in BAR_ORDER
        if counts[health]
    )
    tally = " · ".join(f"{MARK[health]} {counts[health]} {health.value}" for health in BAR_ORDER)
    parts = [
        f'<section class="stage"><h3>{_stage_name(stage)}</h3>',
        f'<p class="tally">{_count(len(stacks), "stack")}: {tally}</p>',
        f'<div class="bar" aria-hidden="true">{segments}</div>',
        _revisions(stacks),
    ]
    unhealthy = [_link(entry) for entry in entries if entry.stack.health is Health.unhealthy]
    if unhealthy:
        parts.append(f'<p class="names">{MARK[Health.unhealthy]} unhealthy: {", ".join(unhealthy)}</p>')
    unread: dict[str, list[str]] = {}  # by why, in order: a subscription that could not be read is one line
    for entry in entries:
        if entry.stack.health is Health.unread:
            unread.setdefault(entry.stack.summary, []).append(_link(entry))
    if unread:
        lines = "".join(f"<li>{_text(why)}: {', '.join(links)}</li>" for why, links in unread.items())
        parts.append(f'<p>{MARK[Health.unread]} unread, and why:</p><ul class="names">{lines}</ul>')
    return "".join(parts) + "</section>"


def _revisions(stacks: list[StackStatus]) -> str:
    """Per configuration, what the stage's stacks pin, and the revisions they run with how many run each: the
    stage's revision (the one most run) first, then the odd ones, most run first."""
    runs: dict[str, Counter[str]] = {}
    pins: dict[str, Counter[str]] = {}
    unknown: Counter[str] = Counter()
    for stack in stacks:
        for configuration in stack.configurations:
            runs.setdefault(configuration.name, Counter())
            pins.setdefault(configuration.name, Counter())
            if configuration.revision:
                runs[configuration.name][configuration.revision] += 1
            else:
                unknown[configuration.name] += 1
            if configuration.pinned:
                pins[configuration.name][configuration.pinned] += 1
    items = []
    for name, revisions in runs.items():
        pinned = sorted(pins[name].items(), key=lambda item: (-item[1], item[0]))
        several = len(pinned) > 1
        pin = ", ".join(f"{_text(ref)} ({count})" if several else _text(ref) for ref, count in pinned)
        shown = []
        if revisions:
            first = stage_revision(revisions)
            rest = sorted((item for item in revisions.items() if item[0] != first), key=lambda i: (-i[1], i[0]))
            shown.append(f"runs <code>{_text(first)}</code> on {_count(revisions[first], 'stack')}")
            shown += [f"{ODD} <code>{_text(revision)}</code> on {_count(count, 'stack')}" for revision, count in rest]
        if unknown[name]:
            shown.append(f"no revision on {_count(unknown[name], 'stack')}")
        items.append(f"<li><b>{_text(name)}</b>{f' pins {pin}' if pin else ''}: {'; '.join(shown)}</li>")
    return f'<ul class="revs">{"".join(items)}</ul>' if items else ""


def _link(entry: _Entry) -> str:
    return f'<a href="#{entry.row}">{_text(entry.stack.stack)}</a>'


_LEGEND = (
    '<p class="legend">A cell per stack, unhealthy first: '
    + ", ".join(f"{MARK[health]} {health.value}" for health in WORST_FIRST)
    + f"; {ODD} in a ring: a revision other than its stage's. Hover or focus a cell for its name; a cell that needs "
    "a look leads to its row in the table below.</p>"
)


def _row(stage: str | None, entries: list[_Entry]) -> str:
    counts = Counter(entry.stack.health for entry in entries)
    notes = [f"{MARK[health]} {counts[health]}" for health in WORST_FIRST[:-1] if counts[health]]  # all but healthy
    odd = sum(entry.stack.odd_revision for entry in entries)
    notes += [f"{ODD} {odd}"] if odd else []
    summary = " · ".join([_count(len(entries), "stack"), *notes])
    cells = "".join(_cell(entry) for entry in sorted(entries, key=lambda entry: entry.stack.health.rank))  # stable
    name = f"<b>{_text(stage)}</b>" if stage is not None else f"<i>{NO_STAGE}</i>"
    label = f'<div class="label">{name}<small>{summary}</small></div>'
    return f'<section class="row">{label}<div class="cells">{cells}</div></section>'


def _cell(entry: _Entry) -> str:
    """A small square: its health's colour and symbol (the style sheet's), its name and health in words for hover,
    focus and a screen reader; a link to its row when it has one, else a stop for the keyboard."""
    stack = entry.stack
    health = stack.health.value
    classes = f"{health} odd" if stack.odd_revision else health
    name = f"<span>{_text(stack.stack)}: {health}{', odd revision' if stack.odd_revision else ''}</span>"
    if entry.row is None:
        return f'<span class="{classes}" tabindex="0">{name}</span>'
    return f'<a class="{classes}" href="#{entry.row}">{name}</a>'


def _attention(stacks: list[StackStatus], entries: list[_Entry]) -> str:
    """The stacks someone should look at, worst first (the model's order within a health), each with its detail:
    the page's content for print and for readers without hover. A healthy stack on an odd revision closes the list.
    A subscription every row shares is said once, above the table."""
    listed = sorted((entry for entry in entries if entry.row), key=lambda entry: entry.stack.health.rank)  # r1, r2…
    if not listed:
        return "<p>Every stack is healthy, each on its stage's revision.</p>"
    subscriptions = {entry.stack.subscription_id for entry in listed}
    shared = subscriptions.pop() if len(subscriptions) == 1 else None
    revisions = _stage_revisions(stacks)
    lines = []
    for entry in listed:
        stack = entry.stack
        odd = f' <b class="o">{ODD}</b>' if stack.odd_revision else ""
        cluster = f"{stack.kind} {stack.cluster} · {stack.resource_group}"
        cluster += "" if shared else f" · {stack.subscription_id or 'no subscription'}"
        state = [stack.cluster_state]
        state += [f"Kubernetes {stack.kubernetes_version}"] if stack.kubernetes_version else []
        state += [f"last seen {_time(stack.last_seen)}"] if stack.last_seen else []
        state += [f"flux {extension_shown(stack)}"]
        # The configurations that explain the row: those not healthy, and those on a revision not their stage's
        # (every one, for a stack marked odd with none of them: the revision is the point).
        odd_ones = [c for c in stack.configurations if c.revision != revisions.get((stack.stage, c.name), c.revision)]
        why = tuple(
            c
            for c in stack.configurations
            if c.health is not Health.healthy or (stack.odd_revision and (c in odd_ones or not odd_ones))
        )
        lines.append(
            f'<tr id="{entry.row}" class="{stack.health.value}"><td>{MARK[stack.health]} {stack.health.value}</td>'
            f"<td>{_text(stack.stack)}{odd}</td><td>{_stage_name(stack.stage)}</td>"
            f"<td>{_text(cluster)}<br>{_text(' · '.join(state))}</td>"
            f"<td>{_text(stack.summary, lines=True)}{_configurations(why, stack.summary)}</td></tr>"
        )
    where = f"<p>Every stack below is in subscription {_text(shared)}.</p>\n" if shared else ""
    head = "<tr><th>health</th><th>stack</th><th>stage</th><th>cluster</th><th>why</th></tr>"
    return f"{where}<table>\n<thead>{head}</thead>\n<tbody>\n" + "\n".join(lines) + "\n</tbody>\n</table>"


def _stage_revisions(stacks: list[StackStatus]) -> dict[tuple[str | None, str], str]:
    """Each stage's revision of each configuration: the one most of its stacks run (as the model marks odd ones)."""
    runs: dict[tuple[str | None, str], Counter[str]] = {}
    for stack in stacks:
        for configuration in stack.configurations:
            if configuration.revision:
                runs.setdefault((stack.stage, configuration.name), Counter())[configuration.revision] += 1
    return {key: stage_revision(counts) for key, counts in runs.items()}


def _configurations(configurations: tuple[ConfigurationStatus, ...], summary: str) -> str:
    """A line per configuration; its message unless the row's summary says it already (build makes the summary
    from the first failing configuration's)."""
    items = []
    for c in configurations:
        compliance = c.compliance if c.provisioning == "Succeeded" else f"{c.compliance}, {c.provisioning}"
        line = f"{compliance} · runs {short_revision(c.revision) if c.revision else '-'} · pins {c.pinned or '-'}"
        said = summary in (c.message, f"{c.name}: {c.message}")
        message = f'<span class="msg">{_text(c.message, lines=True)}</span>' if c.message and not said else ""
        items.append(f"<li>{MARK[c.health]} <b>{_text(c.name)}</b> {_text(line)}{message}</li>")
    return f'<ul class="cfg">{"".join(items)}</ul>' if items else ""


def _stage_name(stage: str | None) -> str:
    return _text(stage) if stage is not None else f"<i>{NO_STAGE}</i>"


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
