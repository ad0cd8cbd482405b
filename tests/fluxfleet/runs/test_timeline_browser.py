"""A run's timeline in a real browser: headless Chromium opens the page of a run that rolled a stack back, baked, and
halted on a failed update (tests/fluxfleet/runs/test_timeline.py's Scene), and reports what it loaded and logged,
where it drew each bar, what marks a failure beside its colour, what the keyboard reaches first, and what axe-core
finds against WCAG 2.2 A and AA. The browser and its inspector are the status page's (tests/tools/browser)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fluxfleet.runs.timeline import FAILED, to_html
from tests.fluxfleet.runs.test_timeline import HOSTILE, Scene
from tests.tools.browser.page import inspect_page, png_size

WIDTH, HEIGHT = 1280, 600


@pytest.fixture(scope="module")
def inspected(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("run-timeline")
    record = Scene(folder, failing={"q": HOSTILE}).run()
    return inspect_page(to_html(record), folder, "run", WIDTH, HEIGHT)


def test_the_page_loads_without_errors_or_requests_of_its_own(inspected):
    assert inspected["requests"] == [inspected["report"]]
    assert inspected["failedRequests"] == [] and inspected["pageErrors"] == []
    # The style sheet is allowed by its hash, page by page: a sheet the policy refused would be an error here.
    assert [m for m in inspected["console"] if m["type"] in {"error", "warn", "warning"}] == []
    assert png_size(Path(inspected["screenshot"])) == (WIDTH, HEIGHT)


def test_the_browser_draws_the_bars_in_time_order_each_within_its_track(inspected):
    bars = inspected["bars"]
    assert [bar["lane"] for bar in bars] == [0, 0, 1, 1, 1, 1, 2, 3, 3, 4]  # a, b, bake, p, q; r has none
    for bar in bars:
        assert bar["left"] >= 0 and bar["right"] <= bar["trackWidth"] + 0.5, bar["title"]
        assert bar["width"] >= 3  # even an instant is seen
    for before, after in zip(bars, bars[1:], strict=False):
        assert abs(after["left"] - before["right"]) <= 1  # one after another, as they ran: no gap, no overlap
    assert bars[0]["left"] == 0 and abs(bars[-1]["right"] - bars[-1]["trackWidth"]) <= 1


def test_a_bar_is_told_apart_by_more_than_its_colour(inspected):
    bars = inspected["bars"]
    kinds = {bar["classes"][1]: bar for bar in bars if "x" not in bar["classes"]}
    assert set(kinds) == {"u", "g", "r", "rg", "k"}
    assert kinds["u"]["pattern"] == "none" and kinds["g"]["pattern"].startswith("repeating-linear-gradient(135deg")
    assert kinds["r"]["pattern"] == "none" and kinds["rg"]["pattern"].startswith("repeating-linear-gradient(135deg")
    assert kinds["k"]["pattern"].startswith("repeating-linear-gradient(90deg")  # the bake: upright hatching
    failed = [bar for bar in bars if "x" in bar["classes"]]
    assert [bar["title"].split(":")[0] for bar in failed] == ["b", "q"]
    assert all(bar["after"] == f'"{FAILED}" / ""' for bar in failed)  # a ✗ after each failure ...
    assert all(bar["after"] == "none" for bar in bars if bar not in failed)  # ... and after nothing else


def test_every_bar_says_what_it_was_in_words_for_a_screen_reader_and_on_hover(inspected):
    for bar in inspected["bars"]:
        assert bar["said"] and not bar["saidShown"]  # read aloud, not drawn over the bar
        assert bar["title"].startswith(bar["said"])
    assert inspected["bars"][-1]["title"].endswith(HOSTILE.replace("\x1b", "\\x1b"))  # text, never markup


def test_the_first_tab_is_a_skip_link_to_the_table(inspected):
    first, skipped = inspected["keyboard"]["first"], inspected["keyboard"]["skipped"]
    assert first == {"tag": "a", "text": "Skip to the table of the run's events", "href": "#events", "inside": True}
    assert skipped["hash"] == "#events" and skipped["target"] == "h2"
    assert 0 <= skipped["top"] < HEIGHT  # the table's heading in view


def test_axe_core_finds_no_wcag_violation(inspected):
    assert inspected["accessibility"]["rules"] >= 10
    assert inspected["accessibility"]["violations"] == []
