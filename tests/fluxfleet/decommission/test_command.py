"""`fluxfleet decommission` over the scripted `pulumi` with a persistent backend (tests/tools/decommission_project.py):
what it deletes, in which order, what remains, and what it refuses."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from fluxfleet.cli import app
from modules.spec import load_fleet
from tests.tools.decommission_project import AKS, CONNECTED, EXTENSION, FLUX, REGISTRATION, Project, make_project

STEPS = ["configurations", "extension", "destroy", "stack-rm", "stack-file", "fleet"]


@pytest.fixture
def project(tmp_path, monkeypatch):
    def make(kinds: dict[str, str], **options) -> Project:
        made = make_project(tmp_path, kinds, **options)
        for key, value in made.env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK", raising=False)
        monkeypatch.chdir(tmp_path)
        return made

    return make


def decommission(*args: str):
    return CliRunner().invoke(app, ["decommission", *args])


def pulumi_commands(project: Project) -> list[str]:
    """The state-changing commands the scripted pulumi ran, each with its stack and, for a destroy, its targets'
    types."""
    commands = []
    for call in (json.loads(line) for line in (project.root / "calls.jsonl").read_text().splitlines()):
        argv = [arg for arg in call["argv"] if arg != "--non-interactive"]
        stack = argv[argv.index("--stack") + 1] if "--stack" in argv else "?"
        if argv[:1] == ["destroy"]:
            targets = [argv[i + 1].split("::")[2].rsplit("$", 1)[-1] for i, a in enumerate(argv) if a == "--target"]
            commands.append(f"destroy {stack} {' '.join(targets) or 'all'}".strip())
        elif argv[:2] == ["stack", "rm"]:
            commands.append(f"stack rm {stack} {'--force' if '--force' in argv else ''}".strip())
    return commands


def test_an_aks_stack_and_an_arc_stack_are_retired_step_by_step_in_order_and_the_arc_cluster_stays(project):
    made = project({"aks-1": "aks", "store-1": "arc"}, extra_stacks=("store-2",))
    result = decommission("aks-1", "store-1", "--yes", "--run-id", "retire-1")
    assert result.exit_code == 0, result.output
    assert pulumi_commands(made) == [
        f"destroy aks-1 {FLUX}",
        f"destroy aks-1 {EXTENSION}",
        "destroy aks-1 all",
        "stack rm aks-1",
        f"destroy store-1 {FLUX}",
        f"destroy store-1 {EXTENSION}",
        "destroy store-1 all",
        "stack rm store-1",
    ]
    deleted = [f"{urn.split('::')[2].rsplit('$', 1)[-1]} {urn.split('::')[0].split(':')[2]}" for urn in made.deleted()]
    assert deleted == [
        f"{FLUX} aks-1",
        f"{EXTENSION} aks-1",
        f"{REGISTRATION} aks-1",
        f"{AKS} aks-1",
        f"{FLUX} store-1",
        f"{EXTENSION} store-1",
        f"{REGISTRATION} store-1",
    ]  # the Arc cluster (read with `get`) is never deleted: it only leaves the state
    assert not any(CONNECTED in urn for urn in made.deleted())
    assert made.left_in_state("aks-1") is None and made.left_in_state("store-1") is None  # stacks removed
    # Each destroy is in its stack's history with the step's message, as the journal's doubt is settled from it.
    history = json.loads((made.backend / "aks-1.history.json").read_text())
    assert [(h["kind"], h["message"]) for h in reversed(history)] == [
        ("destroy", f"fluxfleet decommission retire-1: aks-1 {step} #{attempt}")
        for attempt, step in enumerate(["configurations", "extension", "destroy"], 1)
    ]
    stacks = made.stacks_dir
    assert sorted(p.name for p in stacks.glob("Pulumi.*.yaml")) == ["Pulumi.store-2.yaml"]
    fleet_text = (stacks / "fleet.yaml").read_text()
    assert fleet_text == (
        "# The rollout plan.\ngate:\n  fluxCompliance: false\nstages:\n"
        "  - name: rest\n    maxConcurrency: 2\n    stacks: [store-2]\n"
    )  # aks-1's stage went with it; the rest as written
    assert [s.name for s in load_fleet(stacks / "fleet.yaml", ["store-2"]).stages] == ["rest"]
    assert "decommission retire-1: done" in result.stdout
    assert re.findall(r"^  (\S+): succeeded$", result.stdout, re.M) == STEPS * 2
    runs = CliRunner().invoke(app, ["runs", "--format", "json"])
    [run] = json.loads(runs.stdout)["runs"]
    assert (run["id"], run["kind"], run["status"], run["succeeded"]) == ("retire-1", "decommission", "done", 2)


def test_prune_is_said_per_configuration_and_nothing_happens_without_yes(project):
    made = project({"aks-1": "aks", "store-1": "arc"})
    result = decommission("aks-1", "store-1")
    assert result.exit_code == 1
    assert (
        "fluxfleet decommission: aks-1: Flux configuration platform: prune is on (kustomizations apps, infra): "
        "deleting it deletes everything Flux applied from it on the cluster"
    ) in result.stderr
    assert "store-1: Flux configuration platform: prune is on (kustomizations apps)" in result.stderr
    assert "nothing done" in result.stderr and "--yes" in result.stderr
    assert not (made.root / "calls.jsonl").exists()  # pulumi never started
    assert not (made.root / ".fluxfleet").exists()  # no run
    assert (made.stacks_dir / "Pulumi.aks-1.yaml").exists()


def test_without_prune_it_says_what_stays_on_the_cluster(project):
    project({"aks-1": "aks", "aks-2": "aks"}, prune=False)
    result = decommission("aks-1", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Flux configuration platform: prune is off: what Flux applied from it stays on the cluster" in result.stdout


def test_a_protected_cluster_is_refused_in_one_line_and_nothing_runs(project):
    made = project({"aks-1": "aks", "store-1": "arc"}, protect=frozenset({"aks-1"}))
    result = decommission("store-1", "aks-1", "--yes")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "fluxfleet decommission: stacks/Pulumi.aks-1.yaml: fluxfleet:cluster.protect is true (the default): "
        "refused; set `protect: false` and apply it (`pulumi up`: the cluster's protect flag is in the state) to "
        "decommission aks-1"
    ]
    assert not (made.root / "calls.jsonl").exists() and not (made.root / ".fluxfleet").exists()


def test_dry_run_shows_each_step_in_order_and_what_is_kept_and_writes_nothing(project):
    made = project({"aks-1": "aks", "store-1": "arc"})
    before = {p.name: p.read_bytes() for p in made.stacks_dir.iterdir()}
    result = decommission("store-1", "aks-1", "--dry-run")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "store-1 (arc cluster arc-store-1 (rg-stores)): would delete, in order:"
    assert [re.match(r"  \d\. (\S+):", line)[1] for line in lines if re.match(r"  \d\. ", line)] == STEPS * 2
    assert (
        "  keeps: the Arc-connected cluster arc-store-1 (rg-stores): it stays connected (adopted, never created)"
        in lines
    )
    assert "  6. fleet: fleet.yaml: stage rest: store-1" in lines
    assert (
        "  3. destroy: pulumi destroy: the AKS cluster aks-aks-1 (rg-aks-1) and everything else the stack's state lists"
        in lines
    )
    assert {p.name: p.read_bytes() for p in made.stacks_dir.iterdir()} == before
    assert not (made.root / "calls.jsonl").exists() and not (made.root / ".fluxfleet").exists()


def test_a_failed_destroy_halts_the_run_and_resume_goes_on_from_that_step(project):
    made = project({"aks-1": "aks", "store-1": "arc"}, protect=frozenset())
    scenario = json.loads((made.root / "scenario.json").read_text())
    scenario["stacks"]["aks-1"]["destroy"] = {"exit": 255, "stderr": "error: the cluster is busy"}
    (made.root / "scenario.json").write_text(json.dumps(scenario))
    result = decommission("aks-1", "store-1", "--yes", "--run-id", "r")
    assert result.exit_code == 1
    assert "decommission r: halted (aks-1: configurations: the cluster is busy)" in result.stdout
    assert pulumi_commands(made) == [f"destroy aks-1 {FLUX}"]
    scenario["stacks"]["aks-1"]["destroy"] = {}
    (made.root / "scenario.json").write_text(json.dumps(scenario))
    resumed = decommission("--resume", "r")
    assert resumed.exit_code == 0, resumed.output
    assert pulumi_commands(made)[1:3] == [f"destroy aks-1 {FLUX}", f"destroy aks-1 {EXTENSION}"]
    assert len(pulumi_commands(made)) == 9


@pytest.mark.parametrize(
    ("option", "way"),
    [
        ("--resume", ["--resume", "d-1"]),
        ("--run-id", ["--run-id", "d-1"]),
        ("--run-id", ["--matrix", "first", "--run-id", "d-1"]),
        ("--run-id", ["--run-id", "d-1", "--soak", "first"]),
    ],
)
def test_a_rollout_never_continues_joins_or_reads_a_decommission_run(project, option, way):
    made = project({"aks-1": "aks", "store-1": "arc"})
    assert decommission("store-1", "--yes", "--run-id", "d-1").exit_code == 0
    rollout = CliRunner().invoke(app, ["rollout", *way])
    assert rollout.exit_code == 2
    assert rollout.stderr.startswith(f"fluxfleet rollout: {option} d-1: that run is a decommission")
    assert "that run is a decommission: continue it with `fluxfleet decommission --resume d-1`" in rollout.stderr
    assert made.left_in_state("aks-1") is not None


def test_bad_input_is_one_line_naming_the_file_or_the_option_and_nothing_runs(project):
    made = project({"aks-1": "aks", "store-1": "arc"})
    (made.stacks_dir / "fleet.yaml").write_text("stages: [\n")
    result = decommission("aks-1", "--yes")
    assert result.exit_code == 2
    assert result.stderr == (
        "fluxfleet decommission: stacks/fleet.yaml: line 2: not valid YAML: expected the node content, but found "
        "'<stream end>'\n"
    )
    unknown = decommission("aks-9", "--dry-run")
    assert (unknown.exit_code, unknown.stderr) == (2, "fluxfleet decommission: stacks: no stack file for 'aks-9'\n")
    both = decommission("aks-1", "--resume", "r-1")
    assert both.exit_code == 2 and "--resume continues the run as it began" in both.stderr
    assert not (made.root / "calls.jsonl").exists() and not (made.root / ".fluxfleet").exists()
