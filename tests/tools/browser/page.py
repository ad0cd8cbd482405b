"""A page as headless Chromium sees it: `inspect.cjs` opens an HTML file, takes a screenshot, and reports what the
page loaded and logged, what it drew, what the keyboard reaches and what axe-core (WCAG 2.2 A/AA) finds. The browser
comes from this folder's npm packages (`make test` installs them); the status page's and the run timeline's browser
tests both go through `inspect_page`."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

BROWSER = Path(__file__).resolve().parent


def inspect_page(html: str, folder: Path, name: str, width: int, height: int) -> dict:
    """`html` written to FOLDER/NAME.html and inspected in the browser at `width` x `height`: inspect.cjs's report,
    with `report` (the page's URI) and `screenshot` (the PNG's path) added."""
    node = shutil.which("node")
    if node is None or not (BROWSER / "node_modules").is_dir():
        pytest.fail("the browser is not installed: run `make test`, which installs it with npm (Node.js needed)")
    report, screenshot = folder / f"{name}.html", folder / f"{name}.png"
    report.write_text(html, encoding="utf-8")
    result = subprocess.run(
        [node, str(BROWSER / "inspect.cjs"), str(report), str(screenshot), str(width), str(height)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    found["report"] = report.as_uri()
    found["screenshot"] = str(screenshot)
    return found


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])
