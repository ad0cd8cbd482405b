"""`fluxfleet plan` over stacks that share profiles: a finding in a profile is reported once, where it was written,
with the stacks it reaches; planning in worker processes gives the same report as in one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fluxfleet.plan import plan_fleet
from fluxfleet.plan.report import render
from modules.spec import stack_files
from tests.conftest import DEV_SHARED, ROOT, add_stack_on_the_dev_cluster, fixture_file
from tests.fluxfleet.plan import run, sarif_file

STORES = 12


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    """The example stacks and profiles, and STORES more stores over the edge-store profile."""
    stacks = tmp_path / "stacks"
    shutil.copytree(ROOT / "stacks", stacks)
    for index in range(2, STORES + 2):
        (stacks / f"Pulumi.edge-store-{index:03d}.yaml").write_text(
            "config:\n  fluxfleet:profiles: [edge-store]\n"
            f"  fluxfleet:cluster: {{name: store-{index:03d}, resourceGroup: rg-stores}}\n"
        )
    return stacks


def edit_profile(stacks: Path, old: str, new: str) -> Path:
    profile = stacks / "profiles" / "edge-store.yaml"
    assert old in profile.read_text()
    profile.write_text(profile.read_text().replace(old, new))
    return profile


def stores(report: dict) -> list[str]:
    return sorted(stack["stack"] for stack in report["stacks"] if stack["stack"].startswith("edge-store-"))


def test_an_error_in_a_profile_is_reported_once_with_the_stacks_it_reaches(fleet):
    profile = edit_profile(fleet, "dependsOn: [infra]", "dependsOn: [infrastructure]")
    result = run("--stacks-dir", str(fleet), "--format", "json", "--jobs", "1")
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    [error] = report["profiles"]["errors"]
    assert error["file"] == str(profile)
    assert error["path"] == "fluxfleet:flux.configurations.gitops-demo.kustomizations.apps.dependsOn[0]"
    assert error["message"] == "unknown kustomization 'infrastructure' (known: apps, infra)"
    assert sorted(error["stacks"]) == stores(report) and len(error["stacks"]) == STORES + 1
    for stack in report["stacks"]:
        assert stack["errors"] == [] and stack["ok"] is not stack["stack"].startswith("edge-store-")
    lines = [line for line in result.stderr.splitlines() if "infrastructure" in line]
    assert lines == [
        f"{profile}: {error['path']}: {error['message']} ({STORES + 1} stacks: edge-store-001, edge-store-002, "
        f"edge-store-003, edge-store-004, edge-store-005, … ({STORES + 1} in all))"
    ]
    text = run("--stacks-dir", str(fleet)).stdout
    assert text.count("unknown kustomization 'infrastructure'") == 1
    assert text.count("1 error(s) in its profiles, below") == STORES + 1


def test_sarif_points_at_the_line_in_the_profile_once(fleet):
    profile = edit_profile(fleet, "dependsOn: [infra]", "dependsOn: [infrastructure]")
    sarif = json.loads(run("--stacks-dir", str(fleet), "--format", "sarif").stdout)
    [result] = [r for r in sarif["runs"][0]["results"] if "infrastructure" in r["message"]["text"]]
    location = result["locations"][0]["physicalLocation"]
    assert sarif_file(sarif, result) == profile.resolve()
    assert "dependsOn: [infrastructure]" in profile.read_text().splitlines()[location["region"]["startLine"] - 1]
    assert len(result["properties"]["stacks"]) == STORES + 1


def test_a_policy_violation_of_a_profile_value_is_located_in_the_profile(fleet):
    profile = edit_profile(
        fleet, "apps: {path: ./apps/staging, prune: true", "apps: {path: ./apps/staging, prune: false"
    )
    report = json.loads(run("--stacks-dir", str(fleet), "--format", "json").stdout)
    [shared] = report["profiles"]["violations"]
    assert (shared["policy"], shared["file"], shared["path"]) == (
        "flux-prune",
        str(profile),
        "kustomizations.apps.prune",
    )
    assert sorted(shared["stacks"]) == stores(report)
    store = next(s for s in report["stacks"] if s["stack"] == "edge-store-002")
    assert [v["file"] for v in store["violations"]] == [str(profile)]  # still listed per stack, for tools
    sarif = json.loads(run("--stacks-dir", str(fleet), "--format", "sarif").stdout)
    [result] = [r for r in sarif["runs"][0]["results"] if r["ruleId"] == "flux-prune"]
    location = result["locations"][0]["physicalLocation"]
    assert sarif_file(sarif, result) == profile.resolve()
    assert "prune: false" in profile.read_text().splitlines()[location["region"]["startLine"] - 1]


def test_a_source_path_check_names_the_profile(fleet):
    checkout = fixture_file("gitops-example")
    profile = edit_profile(fleet, "apps: {path: ./apps/staging", "apps: {path: ./apps/stagin")
    url = "https://github.com/fluxcd/flux2-kustomize-helm-example"
    report = json.loads(run("--stacks-dir", str(fleet), "--source", f"{url}={checkout}", "--format", "json").stdout)
    [error] = report["profiles"]["errors"]
    assert (error["file"], error["path"]) == (
        str(profile),
        "fluxfleet:flux.configurations.gitops-demo.kustomizations.apps.path",
    )
    assert error["message"].startswith(f"'./apps/stagin' is not a directory of {checkout} ")


def test_workers_give_the_report_of_one_process(fleet):
    edit_profile(fleet, "apps: {path: ./apps/staging, prune: true", "apps: {path: ./apps/staging, prune: false")
    (fleet / "Pulumi.broken.yaml").write_text("config:\n  fluxfleet:profiles: [edge-store]\n  fluxfleet:cluster: {}\n")
    paths = stack_files(fleet)
    seen: list[str] = []
    serial = plan_fleet(paths, relative_to=fleet.parent, jobs=1)
    parallel = plan_fleet(paths, relative_to=fleet.parent, jobs=2, on_planned=lambda stack: seen.append(stack.stack))
    assert seen == [stack.stack for stack in serial.stacks]  # in order, as each is done
    for fmt in ("json", "text", "markdown", "sarif"):
        assert render(parallel, fmt) == render(serial, fmt), fmt
    assert serial.exit_code == parallel.exit_code == 2


def test_without_worker_processes_the_plan_runs_in_this_one(fleet, monkeypatch):
    import fluxfleet.plan

    def no_pool(*args, **kwargs):
        raise OSError(38, "Function not implemented")  # no /dev/shm: multiprocessing cannot make its semaphores

    monkeypatch.setattr(fluxfleet.plan, "ProcessPoolExecutor", no_pool)
    paths = stack_files(fleet)
    parallel = plan_fleet(paths, relative_to=fleet.parent, jobs=2)
    assert render(parallel, "json") == render(plan_fleet(paths, relative_to=fleet.parent, jobs=1), "json")


def test_plan_shows_where_each_configurations_ref_comes_from(fleet):
    fleet_file = fleet / "fleet.yaml"
    fleet_file.write_text(
        fleet_file.read_text().replace(
            "  - name: staging\n", "  - name: staging\n    pins: {platform: {tag: v1.4.0}}\n"
        )
    )
    report = json.loads(run("--stacks-dir", str(fleet), "--format", "json", "dev", "staging", "prod-weu").stdout)
    refs = {stack["stack"]: stack["refs"]["platform"] for stack in report["stacks"]}
    assert refs == {
        "dev": {"ref": "branch main", "file": str(fleet / "profiles" / "aks-platform.yaml")},
        "staging": {"ref": "tag v1.4.0", "file": str(fleet_file)},
        "prod-weu": {"ref": "tag v1.0.0", "file": str(fleet / "Pulumi.prod-weu.yaml")},
    }
    text = run("--stacks-dir", str(fleet), "staging").stdout
    assert "flux configuration platform  at tag v1.4.0" in text


def test_the_same_stacks_give_byte_identical_json_from_run_to_run(fleet):
    """options.dependsOn came in set order: two runs of the same plan differed."""
    first = run("--stacks-dir", str(fleet), "--format", "json", "--jobs", "1").stdout
    assert first == run("--stacks-dir", str(fleet), "--format", "json", "--jobs", "1").stdout
    assert first == run("--stacks-dir", str(fleet), "--format", "json", "--jobs", "2").stdout


def test_two_stacks_of_one_cluster_are_invalid_input(fleet):
    (fleet / "Pulumi.edge-store-099.yaml").write_text(
        "config:\n  fluxfleet:profiles: [edge-store]\n  fluxfleet:cluster: {name: STORE-002, resourceGroup: RG-Stores}\n"
    )
    result = run("--stacks-dir", str(fleet), "--format", "json")
    assert result.exit_code == 2
    by_name = {stack["stack"]: stack for stack in json.loads(result.stdout)["stacks"]}
    assert not by_name["edge-store-002"]["ok"] and not by_name["edge-store-099"]["ok"]  # neither may be applied
    assert by_name["edge-store-002"]["errors"][0]["message"].startswith(
        "the same cluster as stack edge-store-099 (rg-stores/store-002)"
    )
    assert by_name["edge-store-099"]["errors"] == [
        {
            "file": str(fleet / "Pulumi.edge-store-099.yaml"),
            "path": "fluxfleet:cluster.name",
            "message": "the same cluster as stack edge-store-002 (RG-Stores/STORE-002): two stacks would update one "
            "cluster; keep one",
        }
    ]


def test_plan_of_one_stack_finds_the_other_stack_of_its_cluster_even_an_invalid_one(fleet):
    add_stack_on_the_dev_cluster(fleet)
    result = run("--stacks-dir", str(fleet), "dev", "--format", "json")
    assert result.exit_code == 2
    [dev] = json.loads(result.stdout)["stacks"]
    assert dev["errors"] == [
        {"file": str(fleet / "Pulumi.dev.yaml"), "path": "fluxfleet:cluster.name", "message": DEV_SHARED}
    ]


def test_a_finding_on_the_clusters_upgrades_is_located_where_cluster_upgrade_is_written(tmp_path):
    """The maintenance-window policy reads autoUpgradeProfile, which the spec writes from `cluster.upgrade`: a profile
    that sets its channels without windows has the finding, at its `upgrade` line."""
    stacks = tmp_path / "stacks"
    shutil.copytree(ROOT / "stacks", stacks)
    profile = stacks / "profiles" / "aks-platform.yaml"
    text = profile.read_text()
    profile.write_text(
        text.replace(
            '    kubernetesVersion: "1.35"\n', '    kubernetesVersion: "1.35"\n    upgrade: {channel: stable}\n'
        )
    )
    report = json.loads(run("--stacks-dir", str(stacks), "--format", "json").stdout)
    [shared] = [v for v in report["profiles"]["violations"] if v["policy"] == "aks-maintenance-window"]
    assert (shared["file"], shared["path"], shared["stacks"]) == (str(profile), "autoUpgradeProfile", ["prod-weu"])
    sarif = json.loads(run("--stacks-dir", str(stacks), "--format", "sarif").stdout)
    [result] = [r for r in sarif["runs"][0]["results"] if r["ruleId"] == "aks-maintenance-window"]
    line = result["locations"][0]["physicalLocation"]["region"]["startLine"]
    assert sarif_file(sarif, result) == profile.resolve()
    assert profile.read_text().splitlines()[line - 1] == "    upgrade: {channel: stable}"
