"""`fluxfleet affected` (fluxfleet/affected/) over a real git history each test builds: the repository's stacks
committed in a fresh repository, then changed. Each kind of change affects exactly the stacks whose stack file,
effective config, stage or program it changes, each with why; a comment or a value every user overrides affects none;
renamed, deleted and new stacks are listed as such; a ref git does not know, no repository, an invalid affected stack
at head are one line and exit 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fluxfleet.affected import Affected
from fluxfleet.affected.command import AffectedReport, AffectedRequest, render, run_affected
from fluxfleet.cli import app
from fluxfleet.exits import ExitCode, InvalidInput
from tests.conftest import ROOT
from tests.git import commit, fleet_repository, git

EVERY_STACK = {"dev", "edge-store-001", "prod-weu", "staging"}


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    """A git repository holding a project and a copy of the repository's stacks, committed as `base`; the working
    directory."""
    root = fleet_repository(tmp_path / "repo")
    monkeypatch.chdir(root)
    return root


def edit(root: Path, path: str, old: str, new: str) -> None:
    file = root / path
    text = file.read_text()
    assert old in text, f"{old!r} is not in {path}"
    file.write_text(text.replace(old, new, 1))


def changes(head: str | None = None, base: str = "base") -> dict[str, tuple[str, tuple[str, ...]]]:
    """stack -> (its change, why)."""
    report = run_affected(AffectedRequest(base, head))
    return {item.stack: (item.change, item.reasons) for item in report.stacks}


# --------------------------------------------------------------------------------------------- stack files, profiles


def test_a_stack_file_change_affects_that_stack(repo):
    edit(repo, "stacks/Pulumi.dev.yaml", "count: 2", "count: 3")
    commit(repo, "dev: three nodes")
    found = changes("HEAD")
    assert set(found) == {"dev"}
    assert found["dev"] == (
        "changed",
        ("stacks/Pulumi.dev.yaml changed", "stacks/Pulumi.dev.yaml: fluxfleet:cluster.nodePools changed"),
    )


def test_a_profile_value_affects_every_stack_whose_effective_config_it_changes(repo):
    edit(
        repo,
        "stacks/profiles/aks-platform.yaml",
        "path: ./infrastructure/configs, prune: true",
        "path: ./infrastructure/configs, prune: false",
    )
    commit(repo, "platform: infra-configs without prune")
    found = changes("HEAD")
    assert set(found) == {"dev", "staging", "prod-weu"}  # not the store: it does not use aks-platform
    key = "fluxfleet:flux.configurations.platform.kustomizations.infra-configs.prune"
    assert found["dev"] == ("changed", (f"stacks/profiles/aks-platform.yaml: {key} changed",))


def test_a_profile_value_a_stack_overrides_does_not_affect_it(repo):
    # prod-weu sets its own apps path: the profile's apps path is not what it runs
    edit(repo, "stacks/profiles/aks-platform.yaml", "apps: {path: ./apps/staging", "apps: {path: ./apps/base")
    commit(repo, "platform: apps from base")
    assert set(changes("HEAD")) == {"dev", "staging"}


def test_a_profile_value_every_user_overrides_affects_none(repo):
    # edge-store-001 is the only user of edge-store, and it names its own cluster
    edit(repo, "stacks/profiles/edge-store.yaml", "    kind: arc\n", "    kind: arc\n    name: a-default\n")
    commit(repo, "stores: a default cluster name")
    assert changes("HEAD") == {}


def test_a_comment_in_a_profile_affects_none(repo):
    edit(repo, "stacks/profiles/aks-platform.yaml", "# aks-platform:", "# aks-platform (reviewed):")
    edit(repo, "stacks/profiles/aks-platform.yaml", "branch: main", "branch: main   # the default branch")
    commit(repo, "platform: comments")
    assert changes("HEAD") == {}
    result = CliRunner().invoke(app, ["affected", "--base", "base", "--head", "HEAD"])
    assert result.exit_code == 0 and result.stdout.startswith("no stack affected between base (")


def test_a_profile_used_through_another_profile_affects_the_stacks_of_both(repo):
    (repo / "stacks/profiles/platform-base.yaml").write_text("config:\n  fluxfleet:cluster:\n    kind: aks\n")
    edit(repo, "stacks/profiles/aks-platform.yaml", "config:\n", "config:\n  fluxfleet:profiles: [platform-base]\n")
    commit(repo, "platform-base")
    git(repo, "tag", "-f", "base")
    edit(repo, "stacks/profiles/platform-base.yaml", "kind: aks", "kind: aks\n    tags: {tier: platform}")
    commit(repo, "platform-base: standard tier")
    found = changes("HEAD")
    assert set(found) == {"dev", "staging", "prod-weu"}
    assert found["dev"][1] == ("stacks/profiles/platform-base.yaml: fluxfleet:cluster.tags.tier changed",)


def test_the_working_tree_is_the_default_head_and_its_uncommitted_change_counts(repo):
    edit(repo, "stacks/Pulumi.staging.yaml", "timeout: 5m", "timeout: 6m")
    assert set(changes()) == {"staging"}
    assert changes("HEAD") == {}


# --------------------------------------------------------------------------------------------- fleet.yaml


def test_a_pin_affects_the_stacks_of_its_stage(repo):
    edit(
        repo, "stacks/fleet.yaml", "    approval: true", "    approval: true\n    pins:\n      platform: {tag: v1.0.0}"
    )
    commit(repo, "production pinned")
    git(repo, "tag", "-f", "base")
    edit(repo, "stacks/fleet.yaml", "{tag: v1.0.0}", "{tag: v1.1.0}")
    commit(repo, "promote platform v1.1.0 to production")
    found = changes("HEAD")
    assert set(found) == {"prod-weu"}
    assert found["prod-weu"] == (
        "changed",
        (
            "stacks/fleet.yaml: fluxfleet:flux.configurations.platform.git.tag changed",
            "stacks/fleet.yaml: stage production pins platform at tag v1.1.0 (was tag v1.0.0)",
        ),
    )


def test_a_stack_that_changes_stage_is_affected_and_no_other(repo):
    edit(repo, "stacks/fleet.yaml", "    stacks: [dev]\n", "    stacks: [dev, staging]\n")
    edit(
        repo,
        "stacks/fleet.yaml",
        "  - name: staging\n    stacks: [staging]\n    afterStageWait: 30m  # bake before the edge and production\n",
        "",
    )
    commit(repo, "staging rolls out with dev")
    assert changes("HEAD") == {"staging": ("changed", ("stacks/fleet.yaml: moves from stage staging to stage dev",))}


@pytest.mark.parametrize(
    ("new", "rule"),
    [
        ("maxFailures: 3", "maxFailures"),
        ("maxFailures: 10%", "maxFailures"),
        ("maxFailures: 2\n    minSuccess: 95%", "minSuccess"),
        ('maxFailures: 2\n    windows: [{cron: "0 22 * * 1-4", duration: 4h, timezone: Europe/Amsterdam}]', "windows"),
    ],
)
def test_a_stage_rule_affects_the_stacks_of_that_stage(repo, new, rule):
    edit(repo, "stacks/fleet.yaml", "maxFailures: 2", new)
    commit(repo, "edge: a rule")
    assert changes("HEAD") == {"edge-store-001": ("changed", (f"stacks/fleet.yaml: stage edge's {rule} changed",))}


def test_the_fleet_wide_gate_affects_every_staged_stack(repo):
    edit(repo, "stacks/fleet.yaml", "timeout: 20m", "timeout: 30m")
    commit(repo, "a longer gate")
    found = changes("HEAD")
    assert set(found) == EVERY_STACK
    assert found["dev"] == ("changed", ("stacks/fleet.yaml: gate changed",))


def test_a_comment_in_fleet_yaml_affects_none(repo):
    edit(repo, "stacks/fleet.yaml", "# The rollout plan", "# Our rollout plan")
    commit(repo, "comment")
    assert changes("HEAD") == {}


# --------------------------------------------------------------------------------------------- the program


@pytest.mark.parametrize(
    "path",
    ["modules/stack.py", "__main__.py", "policies/__main__.py", "pyproject.toml", "Pulumi.yaml", "requirements.lock"],
)
def test_a_change_to_the_program_affects_every_stack(repo, path):
    file = repo / path
    file.write_text((file.read_text() if file.exists() else "") + "# changed\n")
    commit(repo, f"{path} changed")
    found = changes("HEAD")
    assert set(found) == EVERY_STACK
    assert all(reasons == (f"the program changed: {path}",) for _, reasons in found.values())


def test_an_untracked_module_of_the_working_tree_is_a_change_of_the_program(repo):
    (repo / "modules" / "new_component.py").write_text("X = 1\n")
    assert set(changes()) == EVERY_STACK


def test_a_file_outside_the_program_affects_none(repo):
    (repo / "README.md").write_text("# fleet, documented\n")
    (repo / "stacks" / "NOTES.md").write_text("notes\n")
    commit(repo, "docs")
    assert changes("HEAD") == {}


# --------------------------------------------------------------------------------------------- new, renamed, deleted


@pytest.fixture
def two_stores(repo) -> Path:
    """The base has a second store, edge-store-002."""
    (repo / "stacks/Pulumi.edge-store-002.yaml").write_text(
        "config:\n  azure-native:location: eastus\n  fluxfleet:profiles: [edge-store]\n"
        "  fluxfleet:cluster: {name: store-002, resourceGroup: rg-stores}\n"
    )
    commit(repo, "store 002")
    git(repo, "tag", "-f", "base")
    return repo


def test_a_renamed_stack_is_listed_as_renamed(two_stores):
    git(two_stores, "mv", "stacks/Pulumi.edge-store-002.yaml", "stacks/Pulumi.edge-store-102.yaml")
    commit(two_stores, "store 002 is 102")
    [item] = run_affected(AffectedRequest("base", "HEAD")).stacks
    assert (item.stack, item.change, item.renamed_from) == ("edge-store-102", "renamed", "edge-store-002")
    assert item.reasons == ("stacks/Pulumi.edge-store-002.yaml renamed to stacks/Pulumi.edge-store-102.yaml",)


def test_a_stack_renamed_and_edited_is_renamed_when_it_names_the_same_cluster(two_stores):
    (two_stores / "stacks/Pulumi.edge-store-002.yaml").unlink()
    (two_stores / "stacks/Pulumi.store-0002.yaml").write_text(
        "# store 0002, renamed to the new scheme\nconfig:\n  azure-native:location: eastus\n"
        "  fluxfleet:profiles: [edge-store]\n  fluxfleet:cluster: {name: STORE-002, resourceGroup: RG-Stores}\n"
    )
    commit(two_stores, "store names: the new scheme")
    [item] = run_affected(AffectedRequest("base", "HEAD")).stacks
    assert (item.stack, item.change, item.renamed_from) == ("store-0002", "renamed", "edge-store-002")
    assert item.reasons[1] == "stacks/Pulumi.store-0002.yaml differs from stacks/Pulumi.edge-store-002.yaml"


def test_a_deleted_stack_and_a_new_stack_are_listed_as_such(two_stores):
    (two_stores / "stacks/Pulumi.edge-store-002.yaml").unlink()
    (two_stores / "stacks/Pulumi.edge-store-003.yaml").write_text(
        "config:\n  azure-native:location: westus\n  fluxfleet:profiles: [edge-store]\n"
        "  fluxfleet:cluster:\n    name: store-003-in-seattle\n    resourceGroup: rg-stores-west\n"
    )
    commit(two_stores, "store 002 closed, store 003 opened")
    report = run_affected(AffectedRequest("base", "HEAD"))
    assert [(item.stack, item.change, item.reasons) for item in report.stacks] == [
        ("edge-store-002", "deleted", ("stacks/Pulumi.edge-store-002.yaml is gone",)),
        ("edge-store-003", "new", ("stacks/Pulumi.edge-store-003.yaml is new",)),
    ]
    assert report.previewed == ["edge-store-003"]


# --------------------------------------------------------------------------------------------- invalid input


def test_a_stack_invalid_at_base_and_valid_at_head_is_changed_with_why(repo):
    edit(repo, "stacks/Pulumi.dev.yaml", "count: 2", "count: 0")
    commit(repo, "dev: broken")
    git(repo, "tag", "-f", "base")
    edit(repo, "stacks/Pulumi.dev.yaml", "count: 0", "count: 2")
    commit(repo, "dev: fixed")
    change, reasons = changes("HEAD")["dev"]
    assert change == "changed"
    assert reasons[-1].startswith(
        "invalid at base: stacks/Pulumi.dev.yaml: fluxfleet:cluster.nodePools[0]: a System node pool needs at least one node"
    )


def test_an_affected_stack_invalid_at_head_is_one_line_naming_file_and_key(repo):
    edit(repo, "stacks/Pulumi.dev.yaml", "count: 2", "count: 0")
    with pytest.raises(InvalidInput) as raised:
        run_affected(AffectedRequest("base"))
    [line] = raised.value.lines
    assert line.startswith(
        "fluxfleet affected: stacks/Pulumi.dev.yaml: fluxfleet:cluster.nodePools[0]: a System node pool needs at least one node"
    )


def test_an_invalid_fleet_yaml_at_head_is_invalid_input(repo):
    edit(repo, "stacks/fleet.yaml", "maxFailures: 2", "maxFailures: -1")
    with pytest.raises(InvalidInput) as raised:
        run_affected(AffectedRequest("base"))
    assert [line.split(": ")[1] for line in raised.value.lines] == ["stacks/fleet.yaml"]


@pytest.mark.parametrize("option", [["--base", "no-such-branch"], ["--base", "base", "--head", "--upload-pack=x"]])
def test_a_ref_git_does_not_know_is_one_line_and_exit_2(repo, option):
    result = CliRunner().invoke(app, ["affected", *option])
    assert result.exit_code == ExitCode.INVALID_INPUT, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("fluxfleet affected: ") and "no such commit" in line


def test_a_stacks_directory_in_no_git_repository_is_one_line_and_exit_2(tmp_path, monkeypatch):
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    result = CliRunner().invoke(app, ["affected", "--base", "main"])
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert result.stderr == "fluxfleet affected: stacks: not in a git repository (or git cannot read it)\n"


# --------------------------------------------------------------------------------------------- the report


def test_the_report_is_the_same_each_time_and_from_a_commit_or_the_working_tree(repo):
    edit(repo, "stacks/profiles/aks-platform.yaml", 'kubernetesVersion: "1.35"', 'kubernetesVersion: "1.34"')
    (repo / "modules" / "stack.py").write_text("def build_stack():\n    return None\n")
    working = [CliRunner().invoke(app, ["affected", "--base", "base", "--format", "json"]).stdout for _ in range(2)]
    assert working[0] == working[1]
    commit(repo, "platform: 1.34, and the program")
    committed = json.loads(
        CliRunner().invoke(app, ["affected", "--base", "base", "--head", "HEAD", "--format", "json"]).stdout
    )
    from_working = json.loads(working[0])
    assert committed["stacks"] == from_working["stacks"]
    assert committed["preview"] == sorted(EVERY_STACK)
    assert committed["head"] == {"ref": "HEAD", "commit": git(repo, "rev-parse", "HEAD")}
    assert from_working["head"] == {"ref": None, "commit": None}


def test_the_text_report_says_each_stack_its_change_and_why(two_stores):
    git(two_stores, "mv", "stacks/Pulumi.edge-store-002.yaml", "stacks/Pulumi.edge-store-102.yaml")
    edit(two_stores, "stacks/Pulumi.dev.yaml", "count: 2", "count: 3")
    report = run_affected(AffectedRequest("base"))
    commit_id = git(two_stores, "rev-parse", "base")[:12]
    assert render(report, "text") == (
        "dev: changed\n"
        "  stacks/Pulumi.dev.yaml changed\n"
        "  stacks/Pulumi.dev.yaml: fluxfleet:cluster.nodePools changed\n"
        "edge-store-102: renamed (was edge-store-002)\n"
        "  stacks/Pulumi.edge-store-002.yaml renamed to stacks/Pulumi.edge-store-102.yaml\n"
        f"2 stacks affected between base ({commit_id}) and the working tree\n"
    )


def test_output_is_written_where_asked(repo, tmp_path):
    edit(repo, "stacks/Pulumi.dev.yaml", "count: 2", "count: 3")
    result = CliRunner().invoke(app, ["affected", "--base", "base", "--format", "json", "--output", "affected.json"])
    assert result.exit_code == 0 and result.stdout == ""
    assert json.loads((repo / "affected.json").read_text())["preview"] == ["dev"]


def test_the_markdown_report_is_one_row_per_change_and_reasons(repo):
    # A profile change reaches three stacks for one reason: one row, not three. A stack file change is its own row.
    edit(
        repo,
        "stacks/profiles/aks-platform.yaml",
        "path: ./infrastructure/configs, prune: true",
        "path: ./infrastructure/configs, prune: false",
    )
    edit(repo, "stacks/Pulumi.edge-store-001.yaml", "location: ", "location:  ")
    git(repo, "mv", "stacks/Pulumi.edge-store-001.yaml", "stacks/Pulumi.store-001.yaml")
    report = run_affected(AffectedRequest("base"))
    commit_id = git(repo, "rev-parse", "base")[:12]
    key = "fluxfleet:flux.configurations.platform.kustomizations.infra-configs.prune"
    [store] = [item for item in report.stacks if item.stack == "store-001"]
    assert render(report, "markdown") == (
        f"### 4 stacks affected between `base` (`{commit_id}`) and the working tree\n"
        "\n"
        "| Stacks | Change | Why |\n"
        "| --- | --- | --- |\n"
        f"| `dev`, `prod-weu`, `staging` | changed | stacks/profiles/aks-platform.yaml: {key} changed |\n"
        f"| `store-001` | renamed from `edge-store-001` | {'<br>'.join(store.reasons)} |\n"
    )


def test_the_markdown_report_of_nothing_affected_is_one_line(repo):
    report = run_affected(AffectedRequest("base"))
    assert render(report, "markdown").startswith("### no stack affected between `base` (")
    assert render(report, "markdown").count("\n") == 1


def report_of(count: int, reasons=lambda n: (f"stacks/Pulumi.store-{n:04}.yaml changed",)) -> AffectedReport:
    stacks = tuple(
        Affected(f"store-{n:04}", "changed", f"stacks/Pulumi.store-{n:04}.yaml", reasons(n)) for n in range(count)
    )
    return AffectedReport("base", "a" * 40, "HEAD", "b" * 40, stacks)


def test_a_markdown_report_of_thousands_of_stacks_fits_a_pull_request_comment_and_counts_the_rest():
    # Each stack its own reason: 3,000 rows would not fit the 65,536 characters of a comment.
    text = render(report_of(3000), "markdown")
    assert len(text) <= 60_000
    rows = [line for line in text.splitlines() if line.startswith("| `store-")]
    last = text.splitlines()[-1]
    assert last == f"And {3000 - len(rows)} more stacks: `fluxfleet affected` lists them all."
    # One reason for all of them (the program changed): one row, fifty names, the rest counted.
    program = render(report_of(3000, lambda n: ("the program changed: modules/stack.py",)), "markdown")
    [row] = [line for line in program.splitlines() if line.startswith("| `store-")]
    assert row.count("`store-") == 50 and " and 2950 more | changed | the program changed: " in row


@pytest.mark.parametrize(
    ("count", "per_leg", "legs"), [(0, 0, 0), (1, 1, 1), (256, 1, 256), (257, 2, 129), (1000, 4, 250)]
)
def test_the_preview_legs_fit_one_matrix_and_hold_each_stack_once_in_order(count, per_leg, legs):
    report = report_of(count)
    assert len(report.legs) == legs <= 256
    assert all(len(leg) <= per_leg for leg in report.legs)
    assert [stack for leg in report.legs for stack in leg] == report.previewed
    assert json.loads(render(report, "json"))["legs"] == report.legs


def test_deleted_stacks_are_in_no_leg(two_stores):
    (two_stores / "stacks/Pulumi.edge-store-002.yaml").unlink()
    edit(two_stores, "stacks/Pulumi.dev.yaml", "count: 2", "count: 3")
    assert run_affected(AffectedRequest("base")).legs == [["dev"]]
