"""The HTML status report in a real browser: headless Chromium opens the page of a 1,000-cluster fleet, takes a
screenshot, and reports what it loaded, what it logged, the colours and symbols it computed for the cells, what the
keyboard reaches, and what axe-core finds against WCAG 2.2 A and AA.

The browser comes from the project's own files (tests/tools/browser: puppeteer-core and the Chromium that the npm
package @sparticuz/chromium carries, which `make test` installs with `npm ci`); Debian's `chromium` is used instead
when it is on PATH. inspect.cjs there says how it is found and started.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fluxfleet.status.html import COLOURS, to_html
from fluxfleet.status.model import Health
from fluxfleet.status.report import MARK
from tests.fluxfleet.status.test_html import ODD_EVERY, fleet
from tests.tools.browser.page import inspect_page, png_size

WIDTH, HEIGHT = 1280, 800
CLUSTERS = 1000


def rgb(colour: str) -> str:
    """#1a7f37 as getComputedStyle gives it: rgb(26, 127, 55)."""
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({red}, {green}, {blue})"


@pytest.fixture(scope="module")
def inspected(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return inspect_page(to_html(fleet(CLUSTERS)), tmp_path_factory.mktemp("html-report"), "status", WIDTH, HEIGHT)


def test_the_page_loads_without_errors_or_requests_of_its_own(inspected):
    assert inspected["requests"] == [inspected["report"]]  # the page itself, and nothing it would fetch
    assert inspected["failedRequests"] == []
    assert inspected["pageErrors"] == []
    # A Content-Security-Policy violation or a parse problem would be logged here as an error or a warning.
    assert [m for m in inspected["console"] if m["type"] in {"error", "warn", "warning"}] == []


def test_the_screenshot_is_a_png_of_the_window(inspected):
    screenshot = Path(inspected["screenshot"])
    assert screenshot.stat().st_size > 10_000  # a page of coloured cells, not a blank window
    assert png_size(screenshot) == (WIDTH, HEIGHT)


def test_each_cell_is_painted_in_the_colour_of_its_health_and_shows_its_symbol(inspected):
    assert inspected["cells"] == CLUSTERS
    painted = {health: sorted(colours) for health, colours in inspected["colours"].items()}
    assert painted == {health.value: [rgb(COLOURS[health])] for health in Health}
    assert sum(sum(colours.values()) for colours in inspected["colours"].values()) == CLUSTERS
    symbols = {health: sorted(shown) for health, shown in inspected["symbols"].items()}
    assert symbols == {health.value: [f'"{MARK[health]}" / ""'] for health in Health}  # not colour alone


def test_cells_are_small_and_every_stack_is_named_on_the_page(inspected):
    assert inspected["largestCell"] <= 36  # 24 px squares, an odd revision's 36 px wide
    names = sorted(name.split(":")[0] for name in inspected["names"])
    assert names == sorted(stack.stack for stack in fleet(CLUSTERS).stacks)
    assert inspected["focusable"] == CLUSTERS


def test_the_odd_revisions_and_only_they_are_ringed_and_badged(inspected):
    odd = CLUSTERS // ODD_EVERY
    assert inspected["odd"] == {"cells": odd, "ringed": odd, "badged": odd, "othersRinged": 0, "othersBadged": 0}


def test_the_grid_wraps_within_the_window_and_no_name_shows_unasked(inspected):
    assert inspected["overflowsWidth"] is False
    assert inspected["tipsShown"] == 0


def test_a_cell_shows_its_name_on_hover_and_on_keyboard_focus(inspected):
    hover, focus = inspected["hover"], inspected["focus"]
    assert hover == {"stack": "edge-store-0007", "shown": True, "inside": True, "text": "edge-store-0007: unhealthy"}
    assert focus == {"stack": "edge-store-0001", "shown": True, "inside": True, "text": "edge-store-0001: healthy"}
    assert inspected["keyboard"]["tabsToCell"] > 1  # Tab from the top: the skip link, the stage's names, the cells


def test_the_first_tab_is_a_skip_link_to_the_table(inspected):
    first, skipped = inspected["keyboard"]["first"], inspected["keyboard"]["skipped"]
    assert first == {
        "tag": "a",
        "text": "Skip to the table of stacks that need a look",
        "href": "#attention",
        "inside": True,  # seen when focused
    }
    assert skipped == {"hash": "#attention", "target": "h2", "top": 0}  # Enter: the table's heading at the top


def test_axe_core_finds_no_wcag_violation(inspected):
    assert inspected["accessibility"]["rules"] >= 10  # the rules that applied to the page, passed or not
    assert inspected["accessibility"]["violations"] == []
