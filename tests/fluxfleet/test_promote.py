"""`fluxfleet promote`: a pin written for the next stage, fleet.yaml otherwise byte for byte; refused past a stage not
at the ref or not healthy (unless --force); the ref and the kustomization paths checked in a real git checkout."""

from __future__ import annotations

import difflib
import json
import shutil
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from fluxfleet.azure import fleet_graph
from fluxfleet.cli import app
from tests.conftest import ROOT
from tests.git import git
from tests.fluxfleet.status.test_status import SUB, FakeFleet, flux, healthy_fleet, snapshot, aks, signed_in

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
    signed_in(monkeypatch)
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
    assert list(stages) == ["dev", "staging", "production"]  # the stores (edge) run another configuration
    azure.by_name["aks-dev-weu"] = snapshot(
        aks("aks-dev-weu"), configurations=(flux("platform", revision="v1.4.0/0ba6f0d"),)
    )
    result = CliRunner().invoke(app, ["promote", "platform", "--status", "--subscription", SUB])
    assert result.exit_code == 0 and "dev: tag v1.4.0: 1/1 running it" in result.stdout
    markdown = CliRunner().invoke(
        app, ["promote", "platform", "--status", "--subscription", SUB, "--format", "markdown"]
    )
    assert "| dev | tag v1.4.0 | 1/1 | - |" in markdown.stdout


# ---------------------------------------------------------------------------------------------- a configuration's stages


def test_a_configuration_goes_through_the_stages_that_run_it_only(project, azure):
    """gitops-demo runs on the edge stores only: its first stage is edge. platform runs in dev, staging and
    production: it reaches production from staging, without a pin in edge, which never runs it."""
    fleet = project / "stacks" / "fleet.yaml"
    result = CliRunner().invoke(app, ["promote", "gitops-demo", "--to", "v1.0.0", "--subscription", SUB])
    assert result.exit_code == 0, result.output
    assert "in stage edge (was not pinned)" in result.stdout
    for stage in ("dev", "staging"):
        assert promote("--to", "v1.4.0").exit_code == 0
        azure.by_name[f"aks-{stage}-weu"] = snapshot(
            aks(f"aks-{stage}-weu"), configurations=(flux("platform", revision="v1.4.0/0ba6f0d"),)
        )
    azure.asked.clear()
    result = promote("--to", "v1.4.0")
    assert result.exit_code == 0, result.output
    assert "in stage production (was not pinned)" in result.stdout
    pins = {stage["name"]: stage.get("pins") for stage in YAML(typ="safe").load(fleet.read_text())["stages"]}
    assert pins == {
        "dev": {"platform": {"tag": "v1.4.0"}},
        "staging": {"platform": {"tag": "v1.4.0"}},
        "edge": {"gitops-demo": {"tag": "v1.0.0"}},
        "production": {"platform": {"tag": "v1.4.0"}},
    }
    assert [[target.name for target in read] for read in azure.asked] == [["aks-staging-weu"]]  # the stage before


def test_a_stage_that_does_not_run_the_configuration_is_exit_2(project, azure):
    fleet = project / "stacks" / "fleet.yaml"
    before = fleet.read_text()
    result = promote("--to", "v1.4.0", "--stage", "edge", "--force")
    assert result.exit_code == 2 and fleet.read_text() == before
    assert (
        "--stage: 'edge': no stack of stage edge declares platform (the stages that run it: dev, staging, production)"
        in result.stderr
    )


def test_status_covers_the_stages_that_run_the_configuration(project, azure):
    result = CliRunner().invoke(app, ["promote", "gitops-demo", "--status", "--subscription", SUB, "--format", "json"])
    assert [stage["stage"] for stage in json.loads(result.stdout)["stages"]] == ["edge"]


# ---------------------------------------------------------------------------------------------- refusals, dry runs


def test_dry_run_is_refused_as_the_real_command_is_and_prints_no_diff(project, azure):
    fleet = project / "stacks" / "fleet.yaml"
    before = fleet.read_text()
    real = promote("--to", "v1.4.0", "--stage", "staging")
    dry = promote("--to", "v1.4.0", "--stage", "staging", "--dry-run")
    assert real.exit_code == dry.exit_code == 1 and fleet.read_text() == before
    for result in (real, dry):
        assert result.stdout == ""  # neither a success line nor a diff
        assert "refused: stage dev pins no ref for platform, not tag v1.4.0: promote it there first" in result.stderr
    assert promote("--to", "v1.4.0", "--stage", "staging", "--dry-run", "--force").exit_code == 0


def test_a_refusal_from_azure_prints_no_success_line(project, azure):
    assert promote("--to", "v1.4.0").exit_code == 0
    azure.by_name["aks-dev-weu"] = snapshot(aks("aks-dev-weu"), configurations=(flux("platform", "Non-Compliant"),))
    result = promote("--to", "v1.4.0")
    assert result.exit_code == 1 and result.stdout == ""
    assert "refused: stage dev: dev is unhealthy" in result.stderr


# ---------------------------------------------------------------------------------------------- promote --status


def test_status_says_a_cluster_it_could_not_read_is_unread_in_every_format(project, azure):
    azure.failed = {"aks-staging-weu": "cannot read aks-staging-weu: 500 InternalServerError"}
    azure.failed["aks-dev-weu"] = "cannot read aks-dev-weu: 503\nprod: tag v9: 1/1 running it"  # no forged line

    def status(fmt: str):
        return CliRunner().invoke(app, ["promote", "platform", "--status", "--subscription", SUB, "--format", fmt])

    text = status("text")
    assert text.exit_code == 1
    assert "staging: not pinned: 0/1 running it\n  unread: staging: cannot read aks-staging-weu: 500" in text.stdout
    assert "behind: staging" not in text.stdout
    assert "  unread: dev: cannot read aks-dev-weu: 503\\nprod: tag v9: 1/1 running it\n" in text.stdout
    stages = {s["stage"]: s for s in json.loads(status("json").stdout)["stages"]}
    assert stages["staging"]["lagging"] == [] and stages["staging"]["running"] == 0
    assert stages["staging"]["unread"] == [
        {"stack": "staging", "reason": "cannot read aks-staging-weu: 500 InternalServerError"}
    ]
    markdown = status("markdown").stdout
    assert "| stage | pinned | running | lagging | unread |" in markdown
    assert "| staging | - | 0/1 | - | staging (cannot read aks-staging-weu: 500 InternalServerError) |" in markdown


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_status_output_writes_the_report_to_the_file_and_nothing_to_stdout(project, azure, fmt):
    shown = CliRunner().invoke(app, ["promote", "platform", "--status", "--subscription", SUB, "--format", fmt])
    report = project / f"status.{fmt}"
    args = ["promote", "platform", "--status", "--subscription", SUB, "--format", fmt, "--output", str(report)]
    written = CliRunner().invoke(app, args)
    assert written.exit_code == shown.exit_code == 0, written.output
    assert written.stdout == "" and report.read_text() == shown.stdout != ""
    assert written.stderr == f"wrote {report}\n"


def test_output_without_status_is_refused_naming_it_and_nothing_is_written(project, azure):
    fleet = (project / "stacks" / "fleet.yaml").read_text()
    result = promote("--to", "v1.4.0", "--output", str(project / "promotion.txt"))
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == "fluxfleet promote: --output writes the --status report: add --status, or drop --output\n"
    assert (project / "stacks" / "fleet.yaml").read_text() == fleet and not (project / "promotion.txt").exists()


def test_status_output_that_cannot_be_written_is_refused_before_azure_is_read(project, azure):
    missing = project / "missing" / "status.md"
    result = promote("--status", "--output", str(missing))
    assert result.exit_code == 2 and result.stdout == "" and azure.asked == []
    assert result.stderr == f"fluxfleet promote: --output {missing}: {missing.parent}: No such file or directory\n"


# ---------------------------------------------------------------------------------------------- fleet.yaml as written


def shared_pins(fleet: Path) -> None:
    """dev and staging share their pins through a YAML anchor, as a team writes them to keep two stages together."""
    text = fleet.read_text()
    text = text.replace("  - name: dev\n", "  - name: dev\n    pins: &together {platform: {tag: v1.3.0}}\n")
    fleet.write_text(text.replace("  - name: staging\n", "  - name: staging\n    pins: *together\n"))


def test_promote_never_changes_a_stage_it_was_not_told_to_through_an_alias(project, azure):
    fleet = project / "stacks" / "fleet.yaml"
    shared_pins(fleet)
    result = promote("--to", "v1.4.0", "--stage", "staging", "--force")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1] == (
        "stages[1].pins were shared with another stage (a YAML alias or merge key): stage staging now has its own"
    )
    stages = {stage["name"]: stage for stage in YAML(typ="safe").load(fleet.read_text())["stages"]}
    assert stages["dev"]["pins"] == {"platform": {"tag": "v1.3.0"}}
    assert stages["staging"]["pins"] == {"platform": {"tag": "v1.4.0"}}


def test_a_symlinked_crlf_fleet_yaml_with_a_bom_and_markers_is_edited_at_its_target_as_written(project, azure):
    stacks = project / "stacks"
    target = project / "shared" / "fleet.yaml"
    target.parent.mkdir()
    text = "\ufeff---\n" + (stacks / "fleet.yaml").read_text() + "...\n# the end\n"
    target.write_bytes(text.replace("\n", "\r\n").encode("utf-8"))
    target.chmod(0o640)
    (stacks / "fleet.yaml").unlink()
    (stacks / "fleet.yaml").symlink_to(target)
    result = promote("--to", "v1.4.0")
    assert result.exit_code == 0, result.output
    assert (stacks / "fleet.yaml").is_symlink() and (stacks / "fleet.yaml").resolve() == target
    pinned = text.replace("    stacks: [dev]\n", "    stacks: [dev]\n    pins:\n      platform: {tag: v1.4.0}\n", 1)
    assert target.read_bytes() == pinned.replace("\n", "\r\n").encode("utf-8")
    assert target.stat().st_mode & 0o777 == 0o640


# ---------------------------------------------------------------------------------------------- two promotions at once


PROMOTIONS = 40


def test_two_promotions_at_once_lose_no_pin(project, tmp_path):
    """Two `fluxfleet promote` processes of different configurations, released at once, 40 times over: every pin
    each wrote is in fleet.yaml, and both exit 0."""
    from tests.tools.races import fluxfleet_command, together

    fleet = project / "stacks" / "fleet.yaml"
    original = fleet.read_text()
    for trial in range(PROMOTIONS):
        fleet.write_text(original)
        calls = [
            (fluxfleet_command, (str(project), ["promote", config, "--to", f"v{trial}.0.0", "--force"], log))
            for config, log in (
                ("platform", str(tmp_path / "platform.log")),
                ("gitops-demo", str(tmp_path / "demo.log")),
            )
        ]
        assert together(calls) == [0, 0], (tmp_path / "platform.log").read_text() + (tmp_path / "demo.log").read_text()
        stages = {stage["name"]: stage for stage in YAML(typ="safe").load(fleet.read_text())["stages"]}
        assert stages["dev"].get("pins") == {"platform": {"tag": f"v{trial}.0.0"}}, f"trial {trial}"
        assert stages["edge"].get("pins") == {"gitops-demo": {"tag": f"v{trial}.0.0"}}, f"trial {trial}"


def test_status_of_a_configuration_no_stack_declares_is_exit_2(project, azure):
    result = CliRunner().invoke(app, ["promote", "platfrom", "--status", "--subscription", SUB])
    assert result.exit_code == 2 and azure.asked == []
    assert "no stack declares a Flux configuration 'platfrom' (did you mean 'platform'?)" in result.stderr


def test_a_stage_before_rolled_back_while_its_health_is_read_refuses_the_promotion(project, azure, monkeypatch):
    """A rollback restores dev's pin while promote reads dev's health: the order is checked again under fleet.yaml's
    writer lock, and staging is not pinned past a stage that no longer runs the ref."""
    from fluxfleet import promote as promote_module

    assert promote("--to", "v1.4.0").exit_code == 0
    azure.by_name["aks-dev-weu"] = snapshot(
        aks("aks-dev-weu"), configurations=(flux("platform", revision="v1.4.0/0ba6f0d"),)
    )
    fleet = project / "stacks" / "fleet.yaml"
    restored = fleet.read_text().replace("platform: {tag: v1.4.0}", "platform: {tag: v1.3.0}")
    read_health = promote_module.fleet_status

    def rolled_back_meanwhile(*args, **kwargs):
        fleet.write_text(restored)
        return read_health(*args, **kwargs)

    monkeypatch.setattr(promote_module, "fleet_status", rolled_back_meanwhile)
    result = promote("--to", "v1.4.0")
    assert result.exit_code == 1 and result.stdout == "" and fleet.read_text() == restored
    assert "refused: stage dev's pin for platform changed while promoting: run it again" in result.stderr


def test_a_stage_renamed_while_promote_reads_azure_is_not_overwritten(project, azure, monkeypatch):
    from fluxfleet import promote as promote_module

    assert promote("--to", "v1.4.0").exit_code == 0
    azure.by_name["aks-dev-weu"] = snapshot(
        aks("aks-dev-weu"), configurations=(flux("platform", revision="v1.4.0/0ba6f0d"),)
    )
    fleet = project / "stacks" / "fleet.yaml"
    renamed = fleet.read_text().replace("name: staging", "name: qa")
    read_health = promote_module.fleet_status

    def renamed_meanwhile(*args, **kwargs):
        fleet.write_text(renamed)
        return read_health(*args, **kwargs)

    monkeypatch.setattr(promote_module, "fleet_status", renamed_meanwhile)
    result = promote("--to", "v1.4.0")
    assert result.exit_code == 2 and fleet.read_text() == renamed and result.stdout == ""
    assert (
        "stacks/fleet.yaml: stages: no stage 'staging' with pins to set (changed since it was read?)" in result.stderr
    )


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
