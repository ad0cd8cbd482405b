"""plan's cache: every input that can change a stack's plan changes its key and nothing else does; an entry that
cannot be trusted is ignored and rewritten; the report is the same, byte for byte, with the cache or without."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fluxfleet.plan import cache as plan_cache
from fluxfleet.plan import plan_fleet
from fluxfleet.plan.cache import PlanCache, dependency_versions, source_digest
from fluxfleet.plan.report import render
from modules.spec import ProfileLibrary
from tests.conftest import ROOT


def key(stacks: Path, stack: str, cache_dir: Path, levels: dict | None = None) -> str | None:
    cache = PlanCache(cache_dir, levels)
    path = stacks / f"Pulumi.{stack}.yaml"
    return cache.stack_key(path, f"stacks/{path.name}", ProfileLibrary(stacks, "stacks"))


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} is not in {path}"
    path.write_text(text.replace(old, new, 1))


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.mark.parametrize(
    ("file", "old", "new"),
    [
        ("profiles/edge-store.yaml", "branch: main", "branch: release"),  # a profile value
        ("Pulumi.edge-store-001.yaml", "resourceGroup: flux-demo-rg", "resourceGroup: flux-demo-rg2"),  # its own
        ("fleet.yaml", "    maxConcurrency: 10\n", "    maxConcurrency: 10\n    pins: {gitops-demo: {tag: v1.4.0}}\n"),
    ],
    ids=["profile-value", "stack-value", "fleet-pin"],
)
def test_a_value_the_stack_runs_with_changes_its_key(example_stacks, cache_dir, file, old, new):
    before = key(example_stacks, "edge-store-001", cache_dir)
    edit(example_stacks / file, old, new)
    assert before is not None and key(example_stacks, "edge-store-001", cache_dir) not in (before, None)


@pytest.mark.parametrize(
    ("file", "old", "new"),
    [
        ("profiles/edge-store.yaml", "config:\n", "# a comment\nconfig:\n"),
        ("Pulumi.edge-store-001.yaml", "config:\n", "config:  # a comment\n"),
        # the order keys are written in where it reaches nothing: azure-native:location after fluxfleet's keys
        (
            "Pulumi.edge-store-001.yaml",
            "  azure-native:location: eastus\n  fluxfleet:profiles: [edge-store]\n",
            "  fluxfleet:profiles: [edge-store]\n  azure-native:location: eastus\n",
        ),
    ],
    ids=["profile-comment", "stack-comment", "key-order"],
)
def test_what_the_stack_does_not_run_with_leaves_its_key(example_stacks, cache_dir, file, old, new):
    before = key(example_stacks, "edge-store-001", cache_dir)
    edit(example_stacks / file, old, new)
    assert key(example_stacks, "edge-store-001", cache_dir) == before is not None


def test_a_files_mtime_leaves_its_key(example_stacks, cache_dir):
    before = key(example_stacks, "edge-store-001", cache_dir)
    for path in (example_stacks / "Pulumi.edge-store-001.yaml", example_stacks / "profiles" / "edge-store.yaml"):
        os.utime(path, (1_000_000_000, 1_000_000_000))
    assert key(example_stacks, "edge-store-001", cache_dir) == before


def test_a_policy_level_changes_the_key_and_the_order_levels_are_written_in_does_not(example_stacks, cache_dir):
    plain = key(example_stacks, "dev", cache_dir)
    levels = {"flux-prune": "disabled", "aks-network-policy": "mandatory"}
    with_levels = key(example_stacks, "dev", cache_dir, levels)
    assert with_levels != plain
    assert key(example_stacks, "dev", cache_dir, dict(reversed(levels.items()))) == with_levels


def test_a_dependency_version_changes_the_key(example_stacks, cache_dir, monkeypatch):
    versions = dependency_versions()
    names = {version.partition("==")[0] for version in versions}
    assert {"fluxfleet", "pulumi", "pulumi-azure-native", "pydantic", "ruamel-yaml"} <= names
    before = key(example_stacks, "dev", cache_dir)
    bumped = [("pulumi-azure-native==9.9.9" if v.startswith("pulumi-azure-native==") else v) for v in versions]
    monkeypatch.setattr(plan_cache, "dependency_versions", lambda: bumped)
    assert key(example_stacks, "dev", cache_dir) != before


def test_a_program_file_changes_the_source_digest_and_its_mtime_does_not(tmp_path):
    for name in ("modules", "policies", "fluxfleet/plan"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("__main__.py", "Pulumi.yaml", "fluxfleet/mock_engine.py", "fluxfleet/redact.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    before = source_digest(tmp_path)
    os.utime(tmp_path / "modules" / "stack.py", (1_000_000_000, 1_000_000_000))
    (tmp_path / "modules" / "__pycache__").mkdir()
    (tmp_path / "modules" / "__pycache__" / "stack.cpython-311.pyc").write_bytes(b"compiled")
    assert source_digest(tmp_path) == before
    edit(tmp_path / "modules" / "stack.py", "\n", "\n# changed\n")
    assert source_digest(tmp_path) != before
    edit(tmp_path / "modules" / "stack.py", "\n# changed\n", "\n")
    edit(tmp_path / "policies" / "rules.py", "\n", "\n# changed\n")
    assert source_digest(tmp_path) != before


def test_the_key_is_not_taken_by_a_stack_of_another_name_or_file(example_stacks, cache_dir):
    (example_stacks / "Pulumi.edge-store-002.yaml").write_text(
        (example_stacks / "Pulumi.edge-store-001.yaml").read_text()
    )
    assert key(example_stacks, "edge-store-002", cache_dir) != key(example_stacks, "edge-store-001", cache_dir)


def plan(stacks: Path, cache: PlanCache | None) -> dict[str, str]:
    fleet = plan_fleet(sorted(stacks.glob("Pulumi.*.yaml")), relative_to=stacks.parent, cache=cache)
    return {fmt: render(fleet, fmt) for fmt in ("text", "json", "markdown", "sarif")}


def test_reports_are_byte_identical_with_and_without_the_cache_in_every_format(example_stacks, cache_dir):
    edit(example_stacks / "Pulumi.staging.yaml", "config:\n", "config:\n  fluxfleet:unknownKey: 1\n")  # an error
    without = plan(example_stacks, None)
    cold = PlanCache(cache_dir)
    assert plan(example_stacks, cold) == without
    assert cold.hits == 0
    warm = PlanCache(cache_dir)
    assert plan(example_stacks, warm) == without
    assert warm.hits == 4  # every example stack, the invalid one too


def test_checks_across_stacks_still_run_on_stacks_from_the_cache(example_stacks, cache_dir):
    plan(example_stacks, PlanCache(cache_dir))
    # another stack file names edge-store-001's cluster: both stacks are in error, though neither changed
    (example_stacks / "Pulumi.edge-store-002.yaml").write_text(
        (example_stacks / "Pulumi.edge-store-001.yaml").read_text()
    )
    warm = PlanCache(cache_dir)
    reports = plan(example_stacks, warm)
    assert warm.hits == 4
    assert reports == plan(example_stacks, None)
    assert "the same cluster as stack edge-store-002" in reports["text"]


def test_a_cold_cache_is_keyed_and_filled_by_the_workers_and_gives_the_same_plan(tmp_path, cache_dir):
    """With nothing kept for this program yet, each worker keys, plans and keeps its stacks (the keys are not made
    one after the other first); the next plan, in one process, takes every stack from what they kept."""
    stacks = tmp_path / "fleet"
    stacks.mkdir()
    dev = (ROOT / "stacks" / "Pulumi.dev.yaml").read_text()
    for number in range(20):  # enough for two workers
        (stacks / f"Pulumi.dev-{number:02}.yaml").write_text(dev.replace("aks-dev-weu", f"aks-dev-{number:02}"))
    shutil.copytree(ROOT / "stacks" / "profiles", stacks / "profiles")
    paths = sorted(stacks.glob("Pulumi.*.yaml"))
    without = render(plan_fleet(paths, relative_to=tmp_path), "json")
    cold = PlanCache(cache_dir)
    assert not cold.warm(paths[0], "fleet/Pulumi.dev-00.yaml")
    assert render(plan_fleet(paths, relative_to=tmp_path, jobs=2, cache=cold), "json") == without
    assert cold.hits == 0 and cold.warm(paths[0], "fleet/Pulumi.dev-00.yaml")
    warm = PlanCache(cache_dir)
    assert render(plan_fleet(paths, relative_to=tmp_path, jobs=1, cache=warm), "json") == without
    assert warm.hits == 20


@pytest.mark.parametrize(
    "damage",
    [
        lambda data, other: b"not json at all",
        lambda data, other: data[: len(data) // 2],  # truncated
        lambda data, other: data.replace(
            b'"errors":[]', b'"errors":[{"$":"c","n":"modules.spec.errors.SpecIssue","v":{}}]'
        ),
        lambda data, other: other,  # another key's entry, whole
        lambda data, other: data.replace(b'"format":', b'"formats":'),
    ],
    ids=["corrupt", "truncated", "body-edited", "foreign", "header-edited"],
)
def test_an_entry_that_cannot_be_trusted_is_ignored_and_rewritten(example_stacks, cache_dir, damage):
    expected = plan(example_stacks, PlanCache(cache_dir))
    dev, staging = key(example_stacks, "dev", cache_dir), key(example_stacks, "staging", cache_dir)
    entry = cache_dir / f"{dev}.json"
    good = entry.read_bytes()
    entry.write_bytes(damage(good, (cache_dir / f"{staging}.json").read_bytes()))
    warm = PlanCache(cache_dir)
    assert plan(example_stacks, warm) == expected
    assert warm.hits == 3  # dev planned again
    assert entry.read_bytes() == good  # and kept again, whole


def test_a_cache_directory_that_cannot_be_used_is_one_problem_and_a_plan_without_it(example_stacks, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    cache = PlanCache(blocked / "plan")
    assert plan(example_stacks, cache) == plan(example_stacks, None)
    assert cache.problem is not None and str(blocked / "plan") in cache.problem and cache.hits == 0


def test_the_least_recently_used_entries_go_past_the_bound(example_stacks, cache_dir):
    plan(example_stacks, PlanCache(cache_dir))  # two entries a stack: its plan, its file's parse
    entries = sorted(cache_dir.glob("*.json"))
    assert len(entries) == 8
    for age, entry in enumerate(entries):
        os.utime(entry, (1_000_000 + age, 1_000_000 + age))
    (cache_dir / ".tmp-crashed.json").write_text("{")
    os.utime(cache_dir / ".tmp-crashed.json", (1_000_000, 1_000_000))
    PlanCache(cache_dir).evict(max_entries=3)
    assert sorted(cache_dir.iterdir()) == entries[-3:]
    PlanCache(cache_dir).evict(max_bytes=entries[-1].stat().st_size)
    assert sorted(cache_dir.iterdir()) == entries[-1:]


def test_a_stack_planned_with_a_source_is_not_cached(example_stacks, cache_dir, tmp_path):
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    cache = PlanCache(cache_dir)
    plan_fleet(sorted(example_stacks.glob("Pulumi.*.yaml")), checkouts={"https://x.test/r": checkout}, cache=cache)
    assert cache.hits == 0 and not list(cache_dir.iterdir())


def test_plan_says_on_stderr_what_it_planned_and_took_from_the_cache(example_stacks, cache_dir, monkeypatch):
    from fluxfleet.cli.app import app

    monkeypatch.setenv("FLUXFLEET_CACHE_DIR", str(cache_dir))
    command = ["plan", "--stacks-dir", str(example_stacks), "--format", "json"]
    runs = [CliRunner().invoke(app, [*command, *more]) for more in ([], [], ["--no-cache"])]
    assert [run.exit_code for run in runs] == [0, 0, 0]
    assert runs[0].stdout == runs[1].stdout == runs[2].stdout
    assert runs[0].stderr.splitlines()[-1] == "planned 4 stack(s), 0 from the cache"
    assert runs[1].stderr.splitlines()[-1] == "planned 0 stack(s), 4 from the cache"
    assert runs[2].stderr.splitlines()[-1] == "planned 4 stack(s), none from the cache (--no-cache)"


def test_an_unusable_cache_directory_is_one_warning_line(example_stacks, tmp_path, monkeypatch):
    from fluxfleet.cli.app import app

    (tmp_path / "file").write_text("")
    monkeypatch.setenv("FLUXFLEET_CACHE_DIR", str(tmp_path / "file" / "plan"))
    run = CliRunner().invoke(app, ["plan", "--stacks-dir", str(example_stacks), "--format", "json"])
    assert run.exit_code == 0
    warnings = [line for line in run.stderr.splitlines() if line.startswith(("fluxfleet plan:", "planned"))]
    assert warnings == [
        f"fluxfleet plan: the plan cache {tmp_path / 'file' / 'plan'} cannot be used (Not a directory): every stack "
        "is planned",
        "planned 4 stack(s), 0 from the cache",
    ]


def test_two_plans_at_once_share_the_cache(example_stacks, cache_dir, tmp_path):
    fluxfleet = Path(sys.executable).parent / "fluxfleet"
    environment = {**os.environ, "FLUXFLEET_CACHE_DIR": str(cache_dir)}

    def start(name: str, *more: str) -> subprocess.Popen:
        command = [str(fluxfleet), "plan", "--stacks-dir", str(example_stacks), "--format", "json", "--jobs", "1"]
        return subprocess.Popen(
            [*command, "--output", str(tmp_path / name), *more], env=environment, stderr=subprocess.PIPE, text=True
        )

    first, second = start("first.json"), start("second.json")
    assert (first.wait(), second.wait()) == (0, 0)
    assert start("fresh.json", "--no-cache").wait() == 0
    third = start("third.json")
    assert third.wait() == 0 and third.stderr.read().splitlines()[-1] == "planned 0 stack(s), 4 from the cache"
    reports = {(tmp_path / name).read_bytes() for name in ("first.json", "second.json", "third.json", "fresh.json")}
    assert len(reports) == 1 and json.loads(reports.pop())["valid"]
    assert not list(cache_dir.glob(".tmp-*"))


def test_values_come_back_as_they_were_written():
    value = {"a": (1, [2.5, None]), 3: {"$x": frozenset({"s"})}, "t": True, "": {"b": ("c",)}}
    back = plan_cache.decode(json.dumps(plan_cache.encode(value)))
    assert back == value
    assert type(back["a"]) is tuple and type(back[3]["$x"]) is frozenset and list(back) == ["a", 3, "t", ""]


def test_an_entry_names_no_class_outside_the_plans_own():
    with pytest.raises(KeyError):
        plan_cache.decode('{"$": "c", "n": "os.system", "v": {"command": "true"}}')
    with pytest.raises(TypeError):
        plan_cache.encode({"a": {1, 2}})  # a value the cache does not keep: that stack is planned each time
