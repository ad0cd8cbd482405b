"""`fluxfleet promote`: a pin written for the next stage, fleet.yaml otherwise byte for byte; refused past a stage not
at the ref or not healthy (unless --force); the ref and the kustomization paths checked in a real git checkout."""

from __future__ import annotations

import difflib
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fluxfleet.azure import fleet_graph
from fluxfleet.cli import app
from tests.conftest import ROOT
from tests.git import git
from tests.fluxfleet.status.test_status import SUB, FakeFleet, flux, healthy_fleet, snapshot, aks

URL = "https://github.com/fluxcd/flux2-kustomize-helm-example"


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def azure(monkeypatch) -> FakeFleet:
    fake = FakeFleet(healthy_fleet())
    monkeypatch.setattr(fleet_graph, "FleetGraphReader", lambda graph, arm, clock=None: fake)
    return fake


def promote(*args: str):
    return CliRunner().invoke(app, ["promote", "platform", "--subscription", SUB, *args])


def changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.ndiff(before.splitlines(), after.splitlines()) if line[:1] in "+-"]


def test_the_first_stage_gets_the_pin_and_the_rest_of_fleet_yaml_is_untouched(project, azure):
    fleet = project / "stacks" / "fleet.yaml"
    before = fleet.read_text()
    result = promote("--to", "v1.4.0")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "promote platform to tag v1.4.0 in stage dev (was not pinned)",
        "wrote stacks/fleet.yaml; next: fluxfleet rollout --stage dev",
    ]
    assert changed_lines(before, fleet.read_text()) == ["+     pins:", "+       platform: {tag: v1.4.0}"]
    assert azure.asked == []  # the first stage has no stage before it to be healthy


def test_the_next_stage_needs_the_one_before_healthy_at_the_ref(project, azure):
    assert promote("--to", "v1.4.0").exit_code == 0  # dev
    fleet = project / "stacks" / "fleet.yaml"
    before = fleet.read_text()
    azure.by_name["aks-dev-weu"] = snapshot(aks("aks-dev-weu"), configurations=(flux("platform", "Non-Compliant"),))
    result = promote("--to", "v1.4.0")
    assert result.exit_code == 1 and fleet.read_text() == before
    assert "fluxfleet promote: refused: stage dev: dev is unhealthy" in result.stderr
    # healthy at v1.4.0: staging gets it, and only the pin line changes
    azure.by_name["aks-dev-weu"] = snapshot(
        aks("aks-dev-weu"), configurations=(flux("platform", revision="v1.4.0/0ba6f0d"),)
    )
    result = promote("--to", "v1.4.0")
    assert result.exit_code == 0, result.output
    assert "in stage staging (was not pinned)" in result.stdout
    assert changed_lines(before, fleet.read_text()) == ["+     pins:", "+       platform: {tag: v1.4.0}"]


def test_a_stage_is_not_skipped_unless_forced_and_force_needs_no_azure(project, azure):
    result = promote("--to", "v1.4.0", "--stage", "staging")
    assert result.exit_code == 1
    assert "refused: stage dev pins no ref for platform, not tag v1.4.0: promote it there first" in result.stderr
    result = promote("--to", "v1.4.0", "--stage", "staging", "--force")
    assert result.exit_code == 0 and azure.asked == []


def test_dry_run_writes_nothing_and_shows_the_diff(project, azure):
    fleet = project / "stacks" / "fleet.yaml"
    before = fleet.read_text()
    result = promote("--to", "0ba6f0d5a8c3", "--branch", "main", "--dry-run")
    assert result.exit_code == 0 and fleet.read_text() == before
    assert "+      platform: {commit: 0ba6f0d5a8c3, branch: main}" in result.stdout


def test_a_promoted_pin_is_changed_in_place(project, azure):
    assert promote("--to", "v1.4.0").exit_code == 0
    fleet = project / "stacks" / "fleet.yaml"
    before = fleet.read_text()
    assert promote("--to", "v1.5.0", "--stage", "dev").exit_code == 0
    assert changed_lines(before, fleet.read_text()) == [
        "-       platform: {tag: v1.4.0}",
        "+       platform: {tag: v1.5.0}",
    ]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--to", "0ba6f0d5a8c3"], "a commit needs the branch it is on"),
        (["--to", "v1", "--stage", "nope"], "--stage: 'nope': no such stage"),
        (["--to", "v1", "--branch", "main"], "a tag or a digest is pinned alone"),
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(project, azure, args, said):
    result = promote(*args)
    assert result.exit_code == 2 and said in result.stderr and "Traceback" not in result.output


def test_an_unknown_configuration_is_exit_2(project, azure):
    result = CliRunner().invoke(app, ["promote", "platfrom", "--to", "v1"])
    assert result.exit_code == 2 and "no stack declares a Flux configuration 'platfrom'" in result.stderr


# ---------------------------------------------------------------------------------------------- against a git checkout


@pytest.fixture
def checkout(tmp_path) -> Path:
    """A repository with the example's layout at v1.4.0, and v1.5.0 without ./apps/staging."""
    root = tmp_path / "repo"
    for path in ("infrastructure/controllers", "infrastructure/configs", "apps/staging", "apps/production"):
        (root / path).mkdir(parents=True)
        (root / path / "kustomization.yaml").write_text("resources: []\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "layout")
    git(root, "tag", "v1.4.0")
    git(root, "rm", "-q", "-r", "apps/staging")
    git(root, "commit", "-q", "-m", "drop staging")
    git(root, "tag", "v1.5.0")
    return root


def test_the_ref_and_every_path_are_checked_in_the_checkout_before_writing(project, azure, checkout):
    fleet = project / "stacks" / "fleet.yaml"
    before = fleet.read_text()
    result = promote("--to", "v9.9.9", "--source", f"{URL}={checkout}")
    assert result.exit_code == 1 and fleet.read_text() == before
    assert f"refused: tag v9.9.9 is not in {checkout}" in result.stderr
    result = promote("--to", "v1.5.0", "--source", f"{URL}={checkout}")
    assert result.exit_code == 1 and fleet.read_text() == before
    assert "refused: dev: kustomization apps: './apps/staging' is not a directory at tag v1.5.0" in result.stderr
    result = promote("--to", "v1.4.0", "--source", f"{URL}={checkout}")
    assert result.exit_code == 0, result.output


def test_status_shows_per_stage_the_pin_and_who_lags(project, azure):
    assert promote("--to", "v1.4.0").exit_code == 0  # dev pinned; dev's cluster still runs main
    result = CliRunner().invoke(app, ["promote", "platform", "--status", "--subscription", SUB, "--format", "json"])
    assert result.exit_code == 1, result.output  # a stack lags
    stages = {s["stage"]: s for s in json.loads(result.stdout)["stages"]}
    assert (stages["dev"]["pinned"], stages["dev"]["running"], stages["dev"]["stacks"]) == ("tag v1.4.0", 0, 1)
    [lagging] = stages["dev"]["lagging"]
    assert lagging["stack"] == "dev" and lagging["revision"].startswith("main/")
    assert (stages["staging"]["pinned"], stages["staging"]["running"]) == (None, 1)
    assert stages["edge"]["stacks"] == 0  # the stores run another configuration
    azure.by_name["aks-dev-weu"] = snapshot(
        aks("aks-dev-weu"), configurations=(flux("platform", revision="v1.4.0/0ba6f0d"),)
    )
    result = CliRunner().invoke(app, ["promote", "platform", "--status", "--subscription", SUB])
    assert result.exit_code == 0 and "dev: tag v1.4.0: 1/1 running it" in result.stdout
    markdown = CliRunner().invoke(
        app, ["promote", "platform", "--status", "--subscription", SUB, "--format", "markdown"]
    )
    assert "| dev | tag v1.4.0 | 1/1 | - |" in markdown.stdout


@pytest.mark.parametrize("args", [["--to", "v1.4.0"], ["--status"]], ids=["promote", "status"])
def test_two_stacks_of_one_cluster_are_invalid_input_and_nothing_is_written(project, azure, args):
    dev = project / "stacks" / "Pulumi.dev.yaml"
    (project / "stacks" / "Pulumi.sandbox.yaml").write_text(dev.read_text())  # valid, on dev's cluster, in no stage
    fleet = (project / "stacks" / "fleet.yaml").read_text()
    result = promote(*args)
    assert result.exit_code == 2, result.output
    shared = "the same cluster as stack sandbox (rg-fleet-dev/aks-dev-weu): two stacks would update one cluster"
    assert f"fluxfleet promote: stacks/Pulumi.dev.yaml: fluxfleet:cluster.name: {shared}; keep one" in (
        result.stderr.splitlines()
    )
    assert (project / "stacks" / "fleet.yaml").read_text() == fleet and azure.asked == []
