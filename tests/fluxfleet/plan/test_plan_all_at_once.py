"""`fluxfleet plan` shows every problem of a stack at once: the issue's case (shape errors in a profile, a dependsOn
typo in the same configuration, a mandatory policy violation) on the real example stacks and profiles, and the
two files of a rule that pairs their values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fluxfleet.plan.report import POLICIES_NOT_RUN
from tests.fluxfleet.plan import run

PLATFORM = "fluxfleet:flux.configurations.platform"


@pytest.fixture
def stacks(example_stacks: Path) -> Path:
    return example_stacks


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new))


def test_shape_errors_in_a_profile_hide_neither_a_dependson_typo_nor_a_violation(stacks, tmp_path):
    profile = stacks / "profiles" / "aks-platform.yaml"
    edit(profile, "prune: true, wait: true}", "prune: maybe, wait: true, retryIntervall: 2m}")  # two shape errors
    edit(
        stacks / "Pulumi.dev.yaml", "apps: {retryInterval: 2m}", "apps: {retryInterval: 2m, dependsOn: [infra-config]}"
    )
    edit(
        stacks / "profiles" / "edge-store.yaml",
        "apps: {path: ./apps/staging, prune: true",
        "apps: {path: ./apps/staging, prune: false",
    )
    levels = tmp_path / "levels.yaml"
    levels.write_text("flux-prune: mandatory\n")
    result = run("--stacks-dir", str(stacks), "--policy-config", str(levels), "--format", "json")
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    by_name = {stack["stack"]: stack for stack in report["stacks"]}
    kustomization = f"{PLATFORM}.kustomizations.infra-controllers"
    assert [(e["file"], e["path"], e["message"], sorted(e["stacks"])) for e in report["profiles"]["errors"]] == [
        (
            str(profile),
            f"{kustomization}.prune",
            "Input should be a valid boolean",
            ["dev", "prod-weu", "staging"],
        ),
        (
            str(profile),
            f"{kustomization}.retryIntervall",
            "unknown key (did you mean 'retryInterval'?)",
            ["dev", "prod-weu", "staging"],
        ),
    ]
    assert by_name["dev"]["errors"] == [
        {
            "file": f"{stacks}/Pulumi.dev.yaml",
            "path": f"{PLATFORM}.kustomizations.apps.dependsOn[0]",
            "message": "unknown kustomization 'infra-config' (known: apps, infra-configs, infra-controllers)",
        }
    ]
    # the policy rules check what the program declares: an invalid stack's violations are unknown, and said so
    assert [s["stack"] for s in report["stacks"] if not s["policiesRun"]] == ["dev", "prod-weu", "staging"]
    store = by_name["edge-store-001"]
    assert store["valid"] and not store["ok"] and not report["ok"]
    assert [v["policy"] for v in store["violations"] if v["level"] == "mandatory"] == ["flux-prune"]
    text = run("--stacks-dir", str(stacks), "--policy-config", str(levels)).stdout
    assert "✔" not in text
    assert text.count(f"  i {POLICIES_NOT_RUN}\n") == 3
    markdown = run("--stacks-dir", str(stacks), "--policy-config", str(levels), "--format", "markdown").stdout
    assert markdown.count(f"- ℹ️ {POLICIES_NOT_RUN}\n") == 3


def test_a_pair_split_over_a_profile_and_a_stack_names_both_files_and_where_the_missing_value_goes(stacks):
    """aks-platform sets httpsUser for every stack; a stack over https without its httpsKey is told where it goes."""
    edit(
        stacks / "Pulumi.staging.yaml", "httpsKey: {keyVault: kv-fleet-staging, secret: github-pat}", "syncInterval: 5m"
    )
    result = run("staging", "--stacks-dir", str(stacks), "--format", "json")
    assert result.exit_code == 2
    [stack] = json.loads(result.stdout)["stacks"]
    profile = f"{stacks}/profiles/aks-platform.yaml"
    assert stack["errors"] == [
        {
            "file": f"{stacks}/Pulumi.staging.yaml",
            "path": f"{PLATFORM}.git.httpsKey",
            "message": f"httpsUser is set in {profile} ({PLATFORM}.git.httpsUser) but httpsKey is missing: add it to "
            f"{stacks}/Pulumi.staging.yaml under {PLATFORM}.git.httpsKey (httpsUser and httpsKey go together)",
        }
    ]
