"""`plan --source URL=DIR` checks each kustomization path at the ref the stack runs (its own, its profile's or its
stage's pin), read with git, never in the checkout's work tree: the real example stacks, profiles and fleet.yaml
against a git copy of the real GitOps example whose history adds and removes the overlays."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import fixture_file
from tests.fluxfleet.plan import run
from tests.fluxfleet.plan.test_api_scan import commit
from tests.git import git

URL = "https://github.com/fluxcd/flux2-kustomize-helm-example"
PLATFORM = "fluxfleet:flux.configurations.platform"
APPS_PATH = f"{PLATFORM}.kustomizations.apps.path"


@pytest.fixture
def stacks(example_stacks: Path) -> Path:
    return example_stacks


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """An empty git repository on branch main, for the example's files."""
    root = tmp_path / "flux2-kustomize-helm-example"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    return root


def the_example(root: Path, *without: str) -> None:
    """The example's files in the work tree, without the directories `without`."""
    for entry in root.iterdir():
        if entry.name != ".git":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    shutil.copytree(fixture_file("gitops-example"), root, dirs_exist_ok=True)
    for path in root.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)  # the fixture is read-only
    for directory in without:
        shutil.rmtree(root / directory)


def plan(stacks: Path, repo: Path, *names: str) -> tuple[int, dict]:
    result = run(*names, "--stacks-dir", str(stacks), "--source", f"{URL}={repo}", "--format", "json")
    return result.exit_code, json.loads(result.stdout)


def errors(report: dict, stack: str) -> list[tuple[str, str, str]]:
    [found] = [s for s in report["stacks"] if s["stack"] == stack]
    shared = [e for e in report["profiles"]["errors"] if stack in e["stacks"]]
    return [(e["file"], e["path"], e["message"]) for e in [*found["errors"], *shared]]


def test_a_path_at_the_pinned_tag_passes_though_the_work_tree_lacks_it(stacks, repo):
    the_example(repo)
    commit(repo, "the example", tag="v1.0.0")  # prod-weu's tag (ssh://: the same repository)
    the_example(repo, "apps/production")
    commit(repo, "production moves out")  # main, and the work tree, lack it
    code, report = plan(stacks, repo, "prod-weu")
    assert (code, errors(report, "prod-weu")) == (0, [])


def test_a_path_the_pinned_tag_lacks_and_the_work_tree_has_fails_at_the_refs_key(stacks, repo):
    the_example(repo, "apps/production")
    commit(repo, "before production", tag="v1.0.0")
    the_example(repo)
    commit(repo, "production")  # main, and the work tree, have it
    code, report = plan(stacks, repo, "prod-weu")
    assert code == 2
    prod = f"{stacks}/Pulumi.prod-weu.yaml"
    assert errors(report, "prod-weu") == [
        (
            prod,
            f"{PLATFORM}.git.tag",
            f"tag v1.0.0 lacks './apps/production' ({APPS_PATH} in {prod}), which the work tree of {repo} has: pin a "
            "ref that has it, or change the path",
        )
    ]


def test_a_path_neither_the_ref_nor_the_work_tree_has_fails_at_its_own_key(stacks, repo):
    the_example(repo)
    commit(repo, "the example", tag="v1.0.0")
    edit = stacks / "Pulumi.prod-weu.yaml"
    edit.write_text(edit.read_text().replace("./apps/production", "./apps/prodution"))
    code, report = plan(stacks, repo, "prod-weu")
    assert (code, errors(report, "prod-weu")) == (
        2,
        [
            (
                str(edit),
                APPS_PATH,
                f"'./apps/prodution' is not a directory of {repo} at tag v1.0.0 ({PLATFORM}.git.tag in {edit})",
            )
        ],
    )


def test_the_ref_of_the_profile_and_of_the_stage_pin(stacks, repo):
    the_example(repo, "apps/staging")
    commit(repo, "before staging", tag="v0.9.0")
    the_example(repo)
    commit(repo, "staging", tag="v1.0.0")
    the_example(repo, "apps/staging")
    commit(repo, "staging moves out")  # main lacks it
    the_example(repo)  # the work tree has it (uncommitted)
    fleet = stacks / "fleet.yaml"
    text = fleet.read_text()
    for stage, pin in (
        ("stacks: [staging]", "platform: {tag: v0.9.0}"),
        ("- name: edge", "gitops-demo: {tag: v1.0.0}"),
    ):
        assert stage in text
        text = text.replace(stage, f"{stage}\n    pins: {{{pin}}}", 1)
    fleet.write_text(text)
    code, report = plan(stacks, repo)
    assert code == 2
    profile = f"{stacks}/profiles/aks-platform.yaml"
    lacks = f"lacks './apps/staging' ({APPS_PATH} in {profile}), which the work tree of {repo} has"
    # dev runs the profile's branch main, which lacks apps/staging: the profile's ref answers for it
    assert errors(report, "dev") == [
        (profile, f"{PLATFORM}.git.branch", f"branch main {lacks}: pin a ref that has it, or change the path")
    ]
    # staging runs its stage's pin, v0.9.0, which lacks it too: fleet.yaml's pin answers for it
    assert errors(report, "staging") == [
        (
            f"{stacks}/fleet.yaml",
            f"{PLATFORM}.git.tag",
            f"tag v0.9.0 {lacks}: pin a ref that has it, or change the path",
        )
    ]
    # the store's stage pins v1.0.0, which has it (its profile's branch main does not); prod-weu's own tag has all
    assert errors(report, "edge-store-001") == errors(report, "prod-weu") == []


def test_a_commit_git_cannot_list_is_an_error_at_the_ref_not_every_path_missing(stacks, repo):
    the_example(repo)
    commit(repo, "the example", tag="v1.0.0")
    tree = git(repo, "rev-parse", "v1.0.0^{tree}")
    (repo / ".git" / "objects" / tree[:2] / tree[2:]).unlink()  # a broken repository: the commit without its tree
    code, report = plan(stacks, repo, "prod-weu")
    assert code == 2
    assert errors(report, "prod-weu") == [
        (
            f"{stacks}/Pulumi.prod-weu.yaml",
            "fluxfleet:flux.configurations.platform.git.tag",
            f"git could not list {repo} at tag v1.0.0: its files were not checked",
        )
    ]
