"""`fluxfleet plan` against fleet.yaml's stages: a stack in no stage is never rolled out, and plan warns about it as
`rollout` does, in every format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fluxfleet import markdown as md
from fluxfleet.cli import app
from tests.fluxfleet.plan import run


@pytest.fixture
def stacks(example_stacks: Path) -> Path:
    """The example stacks, profiles and fleet.yaml, and a stack no stage selects."""
    copy = example_stacks
    (copy / "Pulumi.sandbox.yaml").write_text(
        "config:\n  azure-native:location: westeurope\n  fluxfleet:profiles: [aks-platform]\n"
        "  fluxfleet:cluster:\n    name: aks-sandbox\n    resourceGroup: rg-sandbox\n"
        "    nodePools: [{name: system, vmSize: Standard_D4s_v5, count: 1, mode: System}]\n"
        "  fluxfleet:flux:\n    configurations:\n      platform:\n        git:\n"
        "          httpsKey: {keyVault: kv-sandbox, secret: github-pat}\n"
    )
    return copy


def test_a_stack_in_no_stage_is_a_warning_in_every_format_as_rollout_says_it(stacks):
    warning = f"stack sandbox is in no stage of {stacks}/fleet.yaml: never rolled out"
    result = run("--stacks-dir", str(stacks), "--format", "json")
    assert result.exit_code == 0, result.output  # a warning, no error
    assert json.loads(result.stdout)["warnings"] == [warning]
    assert f"warning: {warning}" in result.stderr.splitlines()
    text = run("--stacks-dir", str(stacks)).stdout.splitlines()
    assert f"  ! warning: {warning}" in text
    markdown = run("--stacks-dir", str(stacks), "--format", "markdown").stdout
    assert f"## Warnings\n\n- ⚠️ {md.text(warning)}\n" in markdown  # escaped as every Markdown report is
    rollout = CliRunner().invoke(app, ["rollout", "--stacks-dir", str(stacks), "--dry-run"])
    assert f"fluxfleet rollout: warning: {warning}" in rollout.stderr.splitlines()


def test_only_the_stacks_planned_are_warned_about_and_none_without_fleet_yaml(stacks):
    assert json.loads(run("dev", "--stacks-dir", str(stacks), "--format", "json").stdout)["warnings"] == []
    (stacks / "fleet.yaml").unlink()
    assert json.loads(run("--stacks-dir", str(stacks), "--format", "json").stdout)["warnings"] == []


def test_a_fleet_yaml_that_cannot_be_read_is_said(stacks):
    (stacks / "fleet.yaml").write_text("stages: []\n")
    report = json.loads(run("--stacks-dir", str(stacks), "--format", "json").stdout)
    assert report["warnings"] == [
        f"which stacks are in no stage is unknown: {stacks}/fleet.yaml: stages: List should have at least 1 item "
        "after validation, not 0"
    ]
