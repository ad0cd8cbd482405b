"""`fluxfleet runs RUN --format html`: a run as a picture, drawn from its journal.

One self-contained page (inline CSS, no script, no image, nothing fetched: a Content-Security-Policy says so to the
browser). Time runs left to right on one axis, from the run's start to its last event. Per stage, in the run's order,
a lane per stack, in the order the stacks began: its update (`pulumi up`), then its health gate, then, if it was
rolled back, its rollback's update and gate, each a bar; the stage's bake (its soak after it passed) closes the stage.
A failure is a red bar with a ✗ after it; a bar still open at the run's last event ends in …; a stack that never
began says so in its lane. Colour is never the only carrier: each kind of bar has its own pattern, each bar says what
it was, when and how it ended in a title and in visually hidden text, and a table after the picture (a skip link at the
top goes straight there) holds the same facts.

A journal written before fluxfleet recorded when a gate began (`gated_at`) draws a stack's update and gate as one
bar, to when the stack ended.

Same journal in, same bytes out: nothing here reads the clock or iterates an unordered collection. Every text from
the journal (stage names, messages: anything Pulumi or Azure said) is escaped by `_text`; the messages were masked
for secrets when they were journaled.
"""

from __future__ import annotations

import base64
import hashlib
import html
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fluxfleet.rollout.journal import Attempt, RunRecord, StackEntry, StackState, StagePlan, StageProgress
from fluxfleet.html_page import BASE_CSS
from modules.spec import printable

SYMBOLS = {  # a stack's state at a glance, as the rollout's own report marks it
    StackState.succeeded: "✔",
    StackState.failed: "✗",
    StackState.skipped: "-",
    StackState.pending: "○",
    StackState.running: "…",
    StackState.gating: "…",
    StackState.deferred: "⏸",
}
FAILED, OPEN = "✗", "…"


@dataclass(frozen=True)
class Kind:
    css: str  # its class: the colour and pattern the style sheet gives it
    name: str  # in words, in the legend


UPDATE = Kind("u", "update (pulumi up)")
GATE = Kind("g", "health gate (waiting for Flux to report healthy)")
UNSPLIT = Kind("ug", "update and health gate, not told apart (a journal from before fluxfleet recorded the gate)")
ROLLBACK = Kind("r", "rollback (pulumi up, back to the refs it ran before)")
ROLLBACK_GATE = Kind("rg", "rollback's health gate")
ROLLBACK_UNSPLIT = Kind("rug", "rollback and its health gate, not told apart")
BAKE = Kind("k", "bake (the stage soaks before the next stage begins)")
REFUSED = Kind("n", "refused before its update began")
LEGEND = (UPDATE, GATE, ROLLBACK, ROLLBACK_GATE, BAKE, REFUSED)  # the unsplit kinds are listed when drawn


@dataclass(frozen=True)
class Bar:
    kind: Kind
    what: str  # "update #2", "health gate", "bake"
    start: datetime
    end: datetime
    outcome: str  # "succeeded", "failed", "running", "deferred", "baked", "baking"
    failed: bool = False
    open: bool = False  # not ended at the run's last event: drawn to it
    detail: str = ""  # the journal's message


@dataclass(frozen=True)
class Lane:
    """One stack of a stage (or the stage's bake: `stack` None) and its bars, in time order."""

    stack: str | None
    state: str  # in words, with its symbol
    bars: tuple[Bar, ...]
    note: str = ""  # what the lane says without a bar: a stack not started, a rollback owed


@dataclass(frozen=True)
class StageLanes:
    plan: StagePlan
    progress: StageProgress
    lanes: tuple[Lane, ...]


@dataclass(frozen=True)
class Timeline:
    record: RunRecord
    start: datetime  # the axis: the run's start ...
    end: datetime  # ... to its last event (or the end of a bake that outlasts it)
    last_event: datetime
    stages: tuple[StageLanes, ...]

    @property
    def span(self) -> float:
        return max((self.end - self.start).total_seconds(), 1.0)

    def share(self, moment: datetime) -> float:
        """Where `moment` lies on the axis, in percent."""
        return min(max((moment - self.start).total_seconds() / self.span * 100, 0.0), 100.0)


def timeline(record: RunRecord) -> Timeline:
    """The run's bars, stage by stage, on one time axis."""
    times = [_at(record.started_at), _at(record.updated_at)]
    for entry in record.stacks.values():
        for attempt in (entry, entry.rollback):
            if attempt is not None:
                times += [_at(attempt.started_at), _at(attempt.gated_at), _at(attempt.ended_at)]
    known = sorted(moment for moment in times if moment is not None)
    start = _at(record.started_at) or (known[0] if known else datetime(1970, 1, 1, tzinfo=UTC))
    last = known[-1] if known else start
    stages = tuple(_stage(record, plan, last) for plan in record.stages)
    bake_ends = [bar.end for stage in stages for lane in stage.lanes for bar in lane.bars if bar.kind is BAKE]
    return Timeline(record, start, max([last, *bake_ends]), last, stages)


def _stage(record: RunRecord, plan: StagePlan, last: datetime) -> StageLanes:
    lanes = [_lane(name, record.stacks[name], last) for name in plan.stacks]
    # Those that began in the order they began (the stage's order among equals), then those that did not.
    lanes.sort(key=lambda lane: (not lane.bars, lane.bars[0].start if lane.bars else last))
    if plan.after_stage_wait and (until := _at(plan.bake_until)):
        began = until - timedelta(seconds=plan.after_stage_wait)
        outcome = "baking: not over at the run's last event" if until > last else "baked"
        bake = Bar(BAKE, "bake", began, until, outcome)
        lanes.append(Lane(None, "bake", (bake,)))
    elif plan.after_stage_wait:
        note = f"bake of {_duration(plan.after_stage_wait)}: not begun (it begins once the stage has passed)"
        lanes.append(Lane(None, "bake", (), note))
    return StageLanes(plan, StageProgress.of(record, plan), tuple(lanes))


def _lane(name: str, entry: StackEntry, last: datetime) -> Lane:
    bars = _bars(entry, (UPDATE, GATE, UNSPLIT), "update", last)
    state = f"{SYMBOLS[entry.state]} {entry.state.value}"
    note = ""
    if not bars:
        note = f"not started ({entry.state.value}{f': {entry.message}' if entry.message else ''})"
    rollback = entry.rollback
    if rollback is not None:
        rolled = _bars(rollback, (ROLLBACK, ROLLBACK_GATE, ROLLBACK_UNSPLIT), "rollback", last, rollback.reason)
        bars += rolled
        state += {StackState.succeeded: ", ↩ rolled back", StackState.failed: ", ↩ rollback failed"}.get(
            rollback.state, ", ↩ rolling back"
        )
        if not rolled:
            note = (
                f"rollback owed, not started ({rollback.reason})" if rollback.reason else "rollback owed, not started"
            )
    return Lane(name, state, tuple(bars), note)


def _bars(attempt: Attempt, kinds: tuple[Kind, Kind, Kind], what: str, last: datetime, why: str = "") -> list[Bar]:
    """One direction of a stack as bars: its update to when its gate began, then its gate to its end; a refusal
    before it began as a mark; nothing when it never began."""
    update, gate, unsplit = kinds
    began, gated, ended = _at(attempt.started_at), _at(attempt.gated_at), _at(attempt.ended_at)
    state = attempt.state
    failed = state is StackState.failed
    detail = " · ".join(text for text in (why and f"why: {why}", attempt.message) if text)
    if began is None:
        if failed and ended is not None:
            return [Bar(REFUSED, f"{what} not started", ended, ended, "failed", True, detail=detail)]
        return []
    numbered = f"{what} #{attempt.attempts}" if attempt.attempts > 1 else what
    end = ended or last
    if gated is not None and began <= gated <= end:
        return [
            Bar(update, numbered, began, gated, "succeeded"),
            Bar(gate, f"{what}'s health gate", gated, end, state.value, failed, ended is None, detail),
        ]
    together = state in (StackState.succeeded, StackState.gating, StackState.deferred)
    return [Bar(unsplit if together else update, numbered, began, end, state.value, failed, ended is None, detail)]


# --------------------------------------------------------------------------------------------- the page

# The style sheet every page shares; each page adds where its bars lie (`_positions`), a class per place.
CSS = (
    BASE_CSS + "header p{margin:.25rem 0;overflow-wrap:anywhere}"
    ".vh{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}"
    "ul.legend{display:flex;flex-wrap:wrap;gap:.25rem 1.25rem;list-style:none;padding:0;margin:.5rem 0;"
    "font-size:.85rem}"
    "ul.legend li{display:flex;align-items:center;gap:.4rem}"
    ".key{display:inline-block;position:relative;width:2rem;height:.9rem}"
    ".stage{padding:.5rem 0;border-top:1px solid #d0d7de}"
    ".stage>p{margin:.25rem 0;overflow-wrap:anywhere}"
    ".row{display:grid;grid-template-columns:12rem 1fr;gap:.75rem;align-items:center;padding:.15rem 0}"
    ".label{font-size:.85rem;overflow-wrap:anywhere}"
    ".label small{display:block;color:#59636e}"
    # The track: the run's time, with a faint line at each quarter; room on the right for a bar's ✗ or ….
    ".track{position:relative;height:1.25rem;margin-right:1.5rem;border-radius:2px;background:#f6f8fa "
    "repeating-linear-gradient(to right,#d0d7de 0 1px,transparent 1px 25%)}"
    ".track .none{position:absolute;left:.4rem;top:0;font-size:.8rem;line-height:1.25rem;color:#59636e;"
    "white-space:nowrap}"
    ".axis .track{background:none;height:1.2rem;font-size:.75rem;color:#59636e}"
    ".axis .track span{position:absolute;top:0;white-space:nowrap}"
    ".t0{left:0}.t1{left:25%;transform:translateX(-50%)}.t2{left:50%;transform:translateX(-50%)}"
    ".t3{left:75%;transform:translateX(-50%)}.t4{right:0}"
    ".bar{position:absolute;top:.15rem;height:.95rem;min-width:3px;border-radius:2px}"
    # Each kind its colour and its pattern (colour is not the only carrier); a failure red, whatever its kind.
    ".u{background:#0969da}"
    ".g{background:repeating-linear-gradient(135deg,#0969da 0 3px,#b6e3ff 3px 6px)}"
    ".ug{background:linear-gradient(to right,#0969da 50%,#b6e3ff)}"
    ".r{background:#bc4c00}"
    ".rg{background:repeating-linear-gradient(135deg,#bc4c00 0 3px,#ffd8b5 3px 6px)}"
    ".rug{background:linear-gradient(to right,#bc4c00 50%,#ffd8b5)}"
    ".k{top:.35rem;height:.55rem;background:repeating-linear-gradient(90deg,#6e7781 0 2px,#fff 2px 5px);"
    "border:1px solid #6e7781}"
    ".n{width:3px;top:0;height:1.25rem;background:#cf222e}"
    ".u.x,.r.x,.n.x{background:#cf222e}"
    ".g.x,.rg.x{background:repeating-linear-gradient(135deg,#cf222e 0 3px,#ffcecb 3px 6px)}"
    ".ug.x,.rug.x{background:linear-gradient(to right,#cf222e 50%,#ffcecb)}"
    f".bar.x::after,.bar.o::after{{position:absolute;left:100%;top:-.2rem;padding-left:2px;font-size:.85rem;"
    f"line-height:1.25rem}}"
    f'.bar.x::after{{content:"{FAILED}"/"";color:#cf222e;font-weight:bold}}'
    f'.bar.o::after{{content:"{OPEN}"/"";color:#1f2328}}'
    ".key .bar{top:0;width:100%}"
    ".key .n{width:3px}"
    ".key .bar::after{content:none}"  # the legend's words name the mark
    "table{border-collapse:collapse;width:100%;font-size:.85rem}"
    "th,td{padding:.3rem .5rem;border-bottom:1px solid #d0d7de;text-align:left;vertical-align:top;"
    "overflow-wrap:break-word}"
    "td:last-child{overflow-wrap:anywhere}"
    "th{background:#f6f8fa}"
    "td.when{white-space:nowrap}"
    "@media print{.bar,.key,.track{print-color-adjust:exact;-webkit-print-color-adjust:exact}}"
)
TICKS = 4  # the axis's quarters, as the track's lines


def to_html(record: RunRecord) -> str:
    """The page of one run."""
    drawn = timeline(record)
    places: dict[tuple[str, str], str] = {}  # (left, width) -> its class, in the order first drawn
    stages = "\n".join(_stage_html(drawn, number, stage, places) for number, stage in enumerate(drawn.stages, 1))
    css = CSS + "".join(f".{name}{{left:{left}%;width:{width}%}}" for (left, width), name in places.items())
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    csp = f"default-src 'none'; style-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    run = _text(record.run_id)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>fluxfleet run {run}: {_text(record.status.value)}</title>",
        f"<style>{css}</style>",
        "</head>",
        "<body>",
        '<a class="skip" href="#events">Skip to the table of the run\'s events</a>',
        _header(drawn),
        "<main>",
        '<h2 id="timeline">Timeline</h2>',
        _legend(drawn),
        _axis(drawn),
        stages or "<p>The run has no stages.</p>",
        '<h2 id="events">The run\'s events</h2>',
        _table(drawn),
        "</main>",
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


def _header(drawn: Timeline) -> str:
    record = drawn.record
    states = [entry.state for entry in record.stacks.values()]
    done, failed = states.count(StackState.succeeded), states.count(StackState.failed)
    rolled = sum(1 for entry in record.stacks.values() if entry.rollback is not None)
    counts = f"{_count(len(states), 'stack')}: {done} done, {failed} failed, {len(states) - done - failed} pending"
    counts += f", {rolled} rolled back or owed a rollback" if rolled else ""
    status = _text(record.status.value) + (f": {_text(record.reason)}" if record.reason else "")
    return "\n".join(
        [
            "<header>",
            f"<h1>fluxfleet run {_text(record.run_id)}</h1>",
            f"<p>Status: {status}.</p>",
            f"<p>{counts}.</p>",
            f"<p>Time runs left to right, from the run's start at {_time(drawn.start)} to its last event at "
            f"{_time(drawn.last_event)} ({_duration((drawn.last_event - drawn.start).total_seconds())})"
            + (f", and on to the end of a bake at {_time(drawn.end)}" if drawn.end > drawn.last_event else "")
            + ".</p>",
            "</header>",
        ]
    )


def _legend(drawn: Timeline) -> str:
    kinds = list(LEGEND)
    drawn_kinds = {bar.kind for stage in drawn.stages for lane in stage.lanes for bar in lane.bars}
    kinds += [kind for kind in (UNSPLIT, ROLLBACK_UNSPLIT) if kind in drawn_kinds]
    items = [
        f'<li><span class="key" aria-hidden="true"><i class="bar {kind.css}"></i></span>{kind.name}</li>'
        for kind in kinds
    ]
    items.append(
        f'<li><span class="key" aria-hidden="true"><i class="bar u x"></i></span>red, {FAILED} after it: failed</li>'
    )
    items.append(
        f'<li><span class="key" aria-hidden="true"><i class="bar g o"></i></span>{OPEN} after it: not ended at the '
        "run's last event</li>"
    )
    return f'<ul class="legend" aria-label="What the bars mean">{"".join(items)}</ul>'


def _axis(drawn: Timeline) -> str:
    step = (drawn.end - drawn.start) / TICKS
    ticks = "".join(
        f'<span class="t{tick}">{_moment(drawn.start + step * tick, drawn)}</span>' for tick in range(TICKS + 1)
    )
    return f'<div class="row axis" aria-hidden="true"><div></div><div class="track">{ticks}</div></div>'


def _stage_html(drawn: Timeline, number: int, stage: StageLanes, places: dict[tuple[str, str], str]) -> str:
    plan, progress = stage.plan, stage.progress
    facts = [  # HTML: times as <time>
        f"{_count(progress.stacks, 'stack')}: {progress.succeeded} done, {progress.failed} failed, "
        f"{len(progress.open)} pending; at most {progress.max_failures} may fail",
        "passed" if progress.passed else "not passed",
    ]
    if plan.after_stage_wait:
        until = _at(plan.bake_until)
        facts.append(f"bakes {_duration(plan.after_stage_wait)}" + (f", until {_time(until)}" if until else ""))
    if plan.approval:
        facts.append("approved" if plan.name in drawn.record.approved else "needs approval")
    lines = [
        f'<section class="stage" aria-labelledby="s{number}">',
        f'<h3 id="s{number}">{_text(plan.name)}</h3>',
        f"<p>{'; '.join(facts)}.</p>",
    ]
    if plan.rolling_back is not None:
        lines.append(f"<p>↩ The stage is rolled back: {_text(plan.rolling_back)}</p>")
    lines += [_lane_html(drawn, lane, places) for lane in stage.lanes]
    return "\n".join(lines) + "\n</section>"


def _lane_html(drawn: Timeline, lane: Lane, places: dict[tuple[str, str], str]) -> str:
    name = _text(lane.stack) if lane.stack is not None else "<i>bake</i>"
    state = "" if lane.stack is None else f"<small>{_text(lane.state)}</small>"
    bars = "".join(_bar_html(drawn, lane, bar, places) for bar in lane.bars)
    note = f'<span class="none">{_text(lane.note)}</span>' if lane.note and not lane.bars else ""
    extra = f'<span class="vh">{_text(lane.note)}</span>' if lane.note and lane.bars else ""
    return f'<div class="row"><div class="label">{name}{state}</div><div class="track">{bars}{note}{extra}</div></div>'


def _bar_html(drawn: Timeline, lane: Lane, bar: Bar, places: dict[tuple[str, str], str]) -> str:
    left, right = round(drawn.share(bar.start), 2), round(drawn.share(bar.end), 2)  # a bar ends where the next begins
    place = places.setdefault((f"{left:.2f}", f"{max(right - left, 0.0):.2f}"), f"p{len(places)}")
    classes = " ".join(["bar", bar.kind.css, *(["x"] if bar.failed else []), *(["o"] if bar.open else []), place])
    said = _said(drawn, lane, bar)
    title = said + (f": {bar.detail}" if bar.detail else "")
    return f'<span class="{classes}" title="{_text(title)}"><span class="vh">{_text(said)}</span></span>'


def _said(drawn: Timeline, lane: Lane, bar: Bar) -> str:
    """A bar in words: whose, what, when, how it ended."""
    who = lane.stack if lane.stack is not None else "the stage"
    if bar.start == bar.end and bar.kind is REFUSED:
        return f"{who}: {bar.what}, {FAILED} failed at {_moment(bar.start, drawn)}"
    if bar.open:
        until = f"from {_moment(bar.start, drawn)}, not ended at the run's last event ({_moment(bar.end, drawn)})"
    else:
        took = _duration((bar.end - bar.start).total_seconds())
        until = f"from {_moment(bar.start, drawn)} to {_moment(bar.end, drawn)} ({took})"
    outcome = f"{FAILED} failed" if bar.failed else bar.outcome
    return f"{who}: {bar.what} {until}: {outcome}"


def _table(drawn: Timeline) -> str:
    head = (
        '<tr><th scope="col">stage</th><th scope="col">stack</th><th scope="col">what</th>'
        '<th scope="col">began</th><th scope="col">ended</th><th scope="col">took</th>'
        '<th scope="col">outcome</th><th scope="col">detail</th></tr>'
    )
    rows = []
    for stage in drawn.stages:
        for lane in stage.lanes:
            who = _text(lane.stack) if lane.stack is not None else "<i>the stage</i>"
            cells = [_text(stage.plan.name), who]
            for bar in lane.bars:
                ended = "—" if bar.open else _when(bar.end, drawn)
                took = "—" if bar.open else _duration((bar.end - bar.start).total_seconds())
                outcome = f"{FAILED} failed" if bar.failed else bar.outcome + (f" {OPEN}" if bar.open else "")
                rows.append(
                    _row(cells, _text(bar.what), _when(bar.start, drawn), ended, took, _text(outcome), bar.detail)
                )
            if lane.note and (not lane.bars or lane.stack is not None):
                what = "bake" if lane.stack is None else "—"
                rows.append(_row(cells, what, "—", "—", "—", _text(lane.state), lane.note))
    if not rows:
        return "<p>The run has no stacks.</p>"
    return f"<table>\n<thead>{head}</thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"


def _row(cells: list[str], what: str, began: str, ended: str, took: str, outcome: str, detail: str) -> str:
    return (
        f'<tr><td>{cells[0]}</td><td>{cells[1]}</td><td>{what}</td><td class="when">{began}</td>'
        f'<td class="when">{ended}</td><td class="when">{took}</td><td>{outcome}</td><td>{_text(detail)}</td></tr>'
    )


# --------------------------------------------------------------------------------------------- times and words


def _at(value: str | None) -> datetime | None:
    """A journal's time as an aware UTC datetime (a naive one is taken as UTC); None when absent or no time."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment).astimezone(UTC)


def _time(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    return f'<time datetime="{_iso(moment)}">{_iso(moment)}</time>'


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _moment(moment: datetime, drawn: Timeline | None = None) -> str:
    """A time as the picture says it: the time of day when the run's axis lies within one day, else date and time."""
    if drawn is not None and drawn.start.date() == drawn.end.date():
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _when(moment: datetime, drawn: Timeline) -> str:
    return f'<time datetime="{_iso(moment)}">{_moment(moment, drawn)}</time>'


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _text(value: str) -> str:
    """Journal text as HTML text or attribute value: controls escaped as `\\x1b` first (a page is read by people),
    then `<`, `>`, `&` and both quotes as entities."""
    return html.escape(printable(value), quote=True)
