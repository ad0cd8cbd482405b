"""The HTML status report in a real browser: headless Chromium opens the page of a 1,000-cluster fleet, takes a
screenshot, and reports what it loaded, what it logged and the colours it computed for the cells.

The browser comes from the project's own files (tests/tools/browser: puppeteer-core and the Chromium that the npm
package @sparticuz/chromium carries, which `make test` installs with `npm ci`); Debian's `chromium` is used instead
when it is on PATH. inspect.cjs there says how it is found and started.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from fluxfleet.status.html import COLOURS, to_html
from fluxfleet.status.model import Health
from tests.conftest import ROOT
from tests.fluxfleet.status.test_html import ODD_EVERY, fleet

BROWSER = ROOT / "tests" / "tools" / "browser"
WIDTH, HEIGHT = 1280, 800
CLUSTERS = 1000


def rgb(colour: str) -> str:
    """#1a7f37 as getComputedStyle gives it: rgb(26, 127, 55)."""
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({red}, {green}, {blue})"


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def inspected(tmp_path_factory: pytest.TempPathFactory) -> dict:
    node = shutil.which("node")
    if node is None or not (BROWSER / "node_modules").is_dir():
        pytest.fail("the browser is not installed: run `make test`, which installs it with npm (Node.js needed)")
    folder = tmp_path_factory.mktemp("html-report")
    report, screenshot = folder / "status.html", folder / "status.png"
    report.write_text(to_html(fleet(CLUSTERS)), encoding="utf-8")
    result = subprocess.run(
        [node, str(BROWSER / "inspect.cjs"), str(report), str(screenshot), str(WIDTH), str(HEIGHT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    found["report"] = report.as_uri()
    return found


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


def test_each_cell_is_painted_in_the_colour_of_its_health(inspected):
    assert inspected["cells"] == CLUSTERS
    painted = {health: sorted(colours) for health, colours in inspected["colours"].items()}
    assert painted == {health.value: [rgb(COLOURS[health])] for health in Health}
    assert sum(sum(colours.values()) for colours in inspected["colours"].values()) == CLUSTERS


def test_the_odd_revisions_and_only_they_are_ringed_and_badged(inspected):
    odd = CLUSTERS // ODD_EVERY
    assert inspected["odd"] == {"cells": odd, "ringed": odd, "badged": odd, "othersRinged": 0, "othersBadged": 0}


def test_the_grid_wraps_within_the_window_and_no_detail_shows_unasked(inspected):
    assert inspected["overflowsWidth"] is False
    assert inspected["tipsShown"] == 0


def test_a_cell_shows_its_detail_on_hover_and_on_keyboard_focus(inspected):
    hover, focus = inspected["hover"], inspected["focus"]
    assert hover["stack"] == "edge-store-0007"  # the first cell that is not healthy
    assert hover["shown"] and hover["inside"], hover
    assert "✗ unhealthy" in hover["text"] and "kustomize build failed: accumulating resources" in hover["text"]
    assert focus["stack"] == "edge-store-0001", focus  # Tab from the top of the page: the first cell
    assert focus["shown"] and focus["inside"], focus
