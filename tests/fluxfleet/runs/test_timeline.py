"""`fluxfleet runs RUN --format html`: a run as a picture, from journals a real rollout wrote over the fake runner,
the fake clock and a fake Flux (updates take two minutes, a gate a minute, a stage bakes half an hour): each stack's
update and gate as bars in time, a failure and a rollback marked, the bake drawn, a stack never started said, an old
journal without the gate's start, every journal text escaped, the same bytes for the same journal."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fluxfleet.cli import app
from fluxfleet.rollout.gate import FluxHealthGate
from fluxfleet.rollout.journal import Journal, RunRecord, RunStatus
from fluxfleet.runs.timeline import to_html
from modules.spec import PinSpec, Stage
from tests.fluxfleet.rollout.test_gate import FakeFlux, compliant
from tests.fluxfleet.rollout.test_orchestrator import Harness, fleet
from tests.fluxfleet.rollout.test_rollback import BEFORE, PROMOTED, pinned_spec

UPDATE_SECONDS = 120  # each `pulumi up`, as the fake clock sees it
FRESH_EVERY = 3  # Flux reports on the new revision at every third read: a gate polled every 30 s takes a minute
# What Pulumi said when q's update failed: markup, quotes, an ampersand and a terminal escape, as a message can carry.
HOSTILE = 'error: <script>alert("x")</script> & <img src=x onerror=alert(1)> \x1b[31mred'


class Scene:
    """A run of two stages. canary (a, b) rolls back a stack whose gate fails, may lose one, and bakes 30 minutes;
    prod (p, q, r) may lose none. `bad` stacks are Non-Compliant at the promoted revision; `failing` stacks' updates
    fail with the given error."""

    def __init__(self, tmp_path: Path, bad=("b",), failing: dict[str, str] | None = None):
        canary = Stage("canary", ("a", "b"), 1, 1, 1800, False, {"demo": PinSpec(tag=PROMOTED)}, True)
        prod = Stage("prod", ("p", "q", "r"), 1, 0, 0, False)
        self.h = Harness(tmp_path, fleet(canary, prod), failing=failing or {})
        for name in self.h.specs:
            self.h.specs[name] = pinned_spec(name)
            self.h.runner.stack_outputs[name] = {"fluxConfigurationRefs": {"demo": {"tag": BEFORE}}}
        self.h.runner.on_up = lambda stack: self.h.clock.advance(UPDATE_SECONDS)
        self.bad = set(bad)
        self.reads: Counter[str] = Counter()
        self.gate = FluxHealthGate(FakeFlux(self._flux), self.h.clock, timeout=600, poll_interval=30)

    def _flux(self, cluster: str):
        self.reads[cluster] += 1
        now = self.h.clock.now()
        if self.reads[cluster] % FRESH_EVERY:
            return [compliant(when=now - timedelta(days=1))]  # Flux has not reported on the new revision yet
        rolled_back = cluster in [stack for stack, _ in self.h.runner.rollbacks]
        state = "Non-Compliant" if cluster in self.bad and not rolled_back else "Compliant"
        return [compliant(state, now, commit=f"{BEFORE if rolled_back else PROMOTED}/0ba6f0d2e7ac")]

    def run(self) -> RunRecord:
        self.h.start(gate=self.gate)
        return self.h.record()


@pytest.fixture
def halted(tmp_path) -> RunRecord:
    """canary passes with b rolled back, bakes; in prod, q's update fails: the run halts and r never starts."""
    scene = Scene(tmp_path, failing={"q": HOSTILE})
    record = scene.run()
    assert record.status is RunStatus.halted
    return record


# ------------------------------------------------------------------------------------------------ reading the page


@dataclass
class DrawnBar:
    classes: list[str]
    title: str
    said: str  # its visually hidden text
    left: float  # percent of the axis
    width: float


@dataclass
class DrawnLane:
    stage: str
    name: str
    state: str
    bars: list[DrawnBar] = field(default_factory=list)
    note: str = ""


class PageReader(HTMLParser):
    """The page's lanes as a reader sees them: under each stage's heading, a row's label, its bars (with the place
    the style sheet gives each) and the note of a lane with no bar; and the rows of the table of events."""

    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.places = {
            name: (float(left), float(width))
            for name, left, width in re.findall(r"\.(p\d+)\{left:([\d.]+)%;width:([\d.]+)%\}", page)
        }
        self.lanes: list[DrawnLane] = []
        self.table: list[list[str]] = []
        self._stage = ""
        self._into: str | None = None  # which text is being read: h3, label, small, vh, none, td
        self._bar: DrawnBar | None = None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        if tag == "h3":
            self._stage, self._into = "", "h3"
        elif tag == "div" and "label" in classes:
            self.lanes.append(DrawnLane(self._stage, "", ""))
            self._into = "label"
        elif tag == "small" and self._into == "label":
            self._into = "small"
        elif tag == "span" and "bar" in classes:
            place = next(name for name in classes if name in self.places)
            self._bar = DrawnBar(classes[1:], attrs["title"], "", *self.places[place])
            self.lanes[-1].bars.append(self._bar)
        elif tag == "span" and "vh" in classes and self._bar is not None:
            self._into = "vh"
        elif tag == "span" and "none" in classes:
            self._into = "none"
        elif tag == "tr":
            self.table.append([])
        elif tag == "td":
            self.table[-1].append("")
            self._into = "td"

    def handle_endtag(self, tag):
        if tag in ("h3", "small", "td") or (tag == "div" and self._into == "label"):
            self._into = None
        if tag == "span" and self._into in ("vh", "none"):
            self._into = None
            self._bar = None

    def handle_data(self, data):
        if self._into == "h3":
            self._stage += data
        elif self._into == "label":
            self.lanes[-1].name += data
        elif self._into == "small":
            self.lanes[-1].state += data
        elif self._into == "vh" and self._bar is not None:
            self._bar.said += data
        elif self._into == "none":
            self.lanes[-1].note += data
        elif self._into == "td":
            self.table[-1][-1] += data


def lanes_of(record: RunRecord) -> dict[str, DrawnLane]:
    return {f"{lane.stage}/{lane.name}": lane for lane in PageReader(to_html(record)).lanes}


# ------------------------------------------------------------------------------------------------ the picture

# The run of `halted`, second by second: a 0-120-180 (update, gate); b 180-300-360, its gate fails, its rollback
# 360-480-540; canary bakes 540-2340; p 2340-2460-2520; q's update 2520-2640 fails; r skipped. The axis: 0 to 2640.
AXIS = 2640


def at(seconds: float) -> float:
    return round(seconds / AXIS * 100, 2)


def drawn(start: float, end: float) -> tuple[float, float]:
    """Where a bar from `start` to `end` (seconds into the run) lies: its left and its width, in percent."""
    return at(start), round(at(end) - at(start), 2)


def test_each_stage_draws_its_stacks_in_the_runs_order_then_its_bake(halted):
    lanes = lanes_of(halted)
    assert list(lanes) == ["canary/a", "canary/b", "canary/bake", "prod/p", "prod/q", "prod/r"]
    assert [lane.state for lane in lanes.values()] == [
        "✔ succeeded",
        "✗ failed, ↩ rolled back",
        "",
        "✔ succeeded",
        "✗ failed",
        "- skipped",
    ]


def test_bars_lie_in_time_order_on_one_axis_from_the_runs_start_to_its_last_event(halted):
    bars = [bar for lane in lanes_of(halted).values() for bar in lane.bars]
    starts = [bar.left for bar in bars]
    assert starts == sorted(starts)  # lane after lane, bar after bar: the run's story left to right
    for before, after in zip(bars, bars[1:], strict=False):
        assert after.left >= round(before.left + before.width, 2)  # nothing overlaps: concurrency 1
    assert bars[0].left == 0.0
    assert round(bars[-1].left + bars[-1].width, 2) == 100.0  # the last event ends the axis


def test_an_update_and_its_gate_are_two_bars_split_where_the_gate_began(halted):
    a = lanes_of(halted)["canary/a"]
    assert [bar.classes[0] for bar in a.bars] == ["u", "g"]
    update, gate = a.bars
    assert (update.left, update.width) == drawn(0, 120)
    assert (gate.left, gate.width) == drawn(120, 180)
    assert update.said == "a: update from 00:00:00 to 00:02:00 (2m00s): succeeded"
    assert gate.said == "a: update's health gate from 00:02:00 to 00:03:00 (1m00s): succeeded"
    assert gate.title == f"{gate.said}: 1 Flux configuration(s) Compliant"


def test_a_failed_gate_is_marked_and_the_rollback_is_its_own_bar_after_it(halted):
    b = lanes_of(halted)["canary/b"]
    assert [(bar.classes[0], "x" in bar.classes) for bar in b.bars] == [
        ("u", False),
        ("g", True),  # the failure: red, with a ✗ after it
        ("r", False),
        ("rg", False),
    ]
    update, gate, rollback, rollback_gate = b.bars
    assert gate.said == "b: update's health gate from 00:05:00 to 00:06:00 (1m00s): ✗ failed"
    assert "health gate: demo: Non-Compliant" in gate.title
    assert rollback.left == round(gate.left + gate.width, 2)  # the rollback begins as the failed gate ends
    assert rollback.said == "b: rollback from 00:06:00 to 00:08:00 (2m00s): succeeded"
    assert rollback_gate.said == "b: rollback's health gate from 00:08:00 to 00:09:00 (1m00s): succeeded"
    assert rollback_gate.title.startswith(f"{rollback_gate.said}: why: health gate: demo: Non-Compliant")


def test_the_stages_bake_is_drawn_from_when_it_passed_for_its_wait(halted):
    [bake] = lanes_of(halted)["canary/bake"].bars
    assert bake.classes[0] == "k"
    assert (bake.left, bake.width) == drawn(540, 2340)
    assert bake.said == "the stage: bake from 00:09:00 to 00:39:00 (30m00s): baked"


def test_a_failed_update_is_marked_and_a_stack_never_started_says_so(halted):
    lanes = lanes_of(halted)
    [update] = lanes["prod/q"].bars
    assert update.classes[:2] == ["u", "x"]  # an update that failed: no gate began
    assert update.said == "q: update from 00:42:00 to 00:44:00 (2m00s): ✗ failed"
    r = lanes["prod/r"]
    assert r.bars == [] and r.note == "not started (skipped: run halted)"


def test_the_table_holds_the_same_facts_as_the_bars(halted):
    reader = PageReader(to_html(halted))
    rows = [row for row in reader.table if row]  # the header's row has no td
    drawn = [bar for lane in reader.lanes for bar in lane.bars]
    assert len(rows) == len(drawn) + 1  # every bar, and r, which has none
    assert rows[1] == ["canary", "a", "update's health gate", "00:02:00", "00:03:00", "1m00s", "succeeded",
                       "1 Flux configuration(s) Compliant"]  # fmt: skip
    assert rows[-1] == ["prod", "r", "—", "—", "—", "—", "- skipped", "not started (skipped: run halted)"]
    assert ["canary", "the stage", "bake", "00:09:00", "00:39:00", "30m00s", "baked", ""] in rows


def test_a_journal_from_before_the_gates_start_was_recorded_reads_and_draws_update_and_gate_as_one(tmp_path, halted):
    journal = Journal.load(tmp_path / "runs", halted.run_id)
    journal.save()  # the log folded into the snapshot
    snapshot = tmp_path / "runs" / f"{halted.run_id}.json"
    data = json.loads(snapshot.read_text())
    for entry in data["stacks"].values():
        for attempt in (entry, entry["rollback"]):
            if attempt:
                attempt.pop("gated_at")
    snapshot.write_text(json.dumps(data))
    old = Journal.load(tmp_path / "runs", halted.run_id).record
    assert old.stacks["a"].gated_at is None
    lanes = lanes_of(old)
    [a] = lanes["canary/a"].bars
    assert a.classes[0] == "ug" and (a.left, a.width) == drawn(0, 180)  # to when the stack ended
    assert a.said == "a: update from 00:00:00 to 00:03:00 (3m00s): succeeded"
    assert [bar.classes[0] for bar in lanes["canary/b"].bars] == ["u", "rug"]  # failed, then rolled back
    assert "x" in lanes["canary/b"].bars[0].classes
    assert "not told apart" in to_html(old)  # the legend says what such a bar is


def test_every_text_from_the_journal_is_escaped(tmp_path, halted):
    page = to_html(halted)
    assert "<script" not in page and "<img" not in page and "\x1b" not in page
    assert "error: &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img src=x" in page
    [update] = lanes_of(halted)["prod/q"].bars
    assert update.title.endswith(HOSTILE.replace("\x1b", "\\x1b"))  # read back whole, the escape shown not obeyed
    halted.stages[1].name = 'prod"><b>'  # a stage's name is text too
    assert "<b>" not in to_html(halted) and "prod&quot;&gt;&lt;b&gt;" in to_html(halted)


def test_the_same_journal_gives_the_same_bytes(tmp_path, halted):
    first = to_html(halted)
    again = to_html(Journal.load(tmp_path / "runs", halted.run_id).record)
    assert again == first
    style = re.search(r"<style>(.*)</style>", first).group(1)
    places = re.findall(r"\.p\d+\{(left:[\d.]+%;width:[\d.]+%)\}", style)
    assert len(places) == len(set(places)) == 10  # a class per place, none twice


# ------------------------------------------------------------------------------------------------ the command


def test_runs_run_format_html_writes_the_page_and_without_a_run_is_refused(tmp_path, monkeypatch, halted):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    refused = runner.invoke(app, ["runs", "--format", "html", "--runs-dir", "runs"])
    assert refused.exit_code == 2 and refused.stdout == ""
    assert refused.stderr == (
        "fluxfleet runs: --format html draws one run: give its id (fluxfleet runs RUN --format html)\n"
    )
    shown = runner.invoke(app, ["runs", halted.run_id, "--format", "html", "--runs-dir", "runs"])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout == to_html(halted)
    written = runner.invoke(
        app, ["runs", halted.run_id, "--format", "html", "--runs-dir", "runs", "--output", "run.html"]
    )
    assert written.exit_code == 0 and written.stderr == "wrote run.html\n"
    assert (tmp_path / "run.html").read_text(encoding="utf-8") == shown.stdout


class Crash(BaseException):
    """The process dies (SIGKILL, a lost runner): nothing after it is journaled."""


def test_an_update_the_run_never_heard_back_from_is_drawn_open_to_the_last_event(tmp_path):
    scene = Scene(tmp_path)

    def die_in_bs_update(stack):
        scene.h.clock.advance(UPDATE_SECONDS)
        if stack == "b":
            raise Crash()

    scene.h.runner.on_up = die_in_bs_update
    with pytest.raises(Crash):
        scene.run()
    lanes = lanes_of(scene.h.record())
    [update] = lanes["canary/b"].bars
    assert update.classes[:2] == ["u", "o"] and "x" not in update.classes  # … after it: no end recorded
    assert update.said == "b: update from 00:03:00, not ended at the run's last event (00:03:00): running"
    assert lanes["canary/bake"].note == "bake of 30m00s: not begun (it begins once the stage has passed)"
    assert lanes["prod/p"].note == "not started (pending)"


def test_a_bake_not_over_at_the_runs_last_event_is_drawn_to_its_end_and_says_so(tmp_path):
    scene = Scene(tmp_path)
    real_sleep = scene.h.clock.sleep

    ctrl_c = datetime(2026, 1, 1, 0, 30, 40, tzinfo=UTC)  # 1300s into the bake (the soak polls through it)

    def ctrl_c_1300s_into_the_bake(seconds, stop=None):
        if scene.h.clock.now() + timedelta(seconds=seconds) < ctrl_c:
            return real_sleep(seconds, stop)  # the gates' polls, the soak's first looks
        scene.h.clock.advance((ctrl_c - scene.h.clock.now()).total_seconds())
        return True

    scene.h.clock.sleep = ctrl_c_1300s_into_the_bake
    record = scene.run()
    assert record.status is RunStatus.interrupted
    [bake] = lanes_of(record)["canary/bake"].bars
    assert bake.said == "the stage: bake from 00:09:00 to 00:39:00 (30m00s): baking: not over at the run's last event"
    assert round(bake.left + bake.width, 2) == 100.0  # the axis reaches the bake's end, past the last event
    page = to_html(record)
    assert 'to its last event at <time datetime="2026-01-01T00:30:40Z">' in page
    assert 'and on to the end of a bake at <time datetime="2026-01-01T00:39:00Z">' in page
