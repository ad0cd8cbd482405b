"""`fluxfleet plan` on hostile input: it ends within seconds with exit 2 and one bounded line per problem naming the
file, never a traceback; stack discovery refuses what Pulumi would not take; reports escape what they print."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fluxfleet.mock_engine import RecordedResource
from fluxfleet.plan import FleetPlan, KustomizationStep, StackPlan, plan_fleet
from fluxfleet.plan.report import render
from modules.spec import SpecError, SpecIssue, stack_files
from policies.rules import Violation
from tests.conftest import STANDALONE_STACKS, ROOT
from tests.fluxfleet.plan import run

DEV = (STANDALONE_STACKS / "Pulumi.dev.yaml").read_text()
LINE_MAX = 1600


def plan_in_a_child(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`fluxfleet plan` in a child process, so that a hang fails the test instead of stalling the suite."""
    command = [sys.executable, "-c", "from fluxfleet.cli import app; app()", "plan", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def laughs() -> str:
    anchors = ["&a0 [" + ", ".join(["lol"] * 10) + "]"]
    anchors += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    return "[" + ", ".join(anchors) + "]"


def hostile_stacks(tmp_path: Path, huge: bool) -> Path:
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    (stacks / "Pulumi.bomb.yaml").write_text(DEV.replace("dependsOn: [infra-configs]", f"dependsOn: {laughs()}"))
    (stacks / "Pulumi.deep.yaml").write_text(
        DEV.replace("dependsOn: [infra-configs]", "dependsOn: " + "[" * 1000 + "]" * 1000)
    )
    (stacks / "Pulumi.digits.yaml").write_text(DEV.replace("count: 2", f"count: {'9' * 5000}"))
    if huge:  # 5 MB: parsed in seconds, shown cut
        (stacks / "Pulumi.huge.yaml").write_text(DEV.replace("name: aks-dev-weu", f"name: {'x' * 5_000_000}"))
    (stacks / "Pulumi.typo.yaml").write_text(DEV.replace("fluxfleet:flux:", "fluxflet:flux:"))
    os.mkfifo(stacks / "Pulumi.fifo.yaml")
    (stacks / "Pulumi.zero.yaml").symlink_to("/dev/zero")
    (stacks / "Pulumi.loop.yaml").symlink_to("Pulumi.loop.yaml")
    return stacks


EXPECTED = {
    "bomb": ": fluxfleet:flux.configurations.platform.kustomizations.apps.dependsOn[",
    "deep": ": line 30: not read: nested deeper than 64 levels",
    "digits": ": line 13: not read: a number of more than 4,300 digits",
    "huge": ": fluxfleet:cluster.name: 'xxxx",
    "typo": ": fluxflet:flux: unknown namespace 'fluxflet' (did you mean 'fluxfleet'?)",
    "fifo": ": -: not a regular file",
    "zero": ": -: not a regular file",
    "loop": ": -: cannot read: Too many levels of symbolic links",
}


@pytest.mark.skipif(not hasattr(os, "mkfifo") or not Path("/dev/zero").exists(), reason="needs FIFOs and /dev/zero")
@pytest.mark.parametrize("fmt", ["text", "sarif"])
def test_hostile_stack_files_end_fast_with_exit_2_and_one_line_each(tmp_path, fmt):
    stacks = hostile_stacks(tmp_path, huge=fmt == "text")
    result = plan_in_a_child("--stacks-dir", str(stacks), "--format", fmt)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = (result.stdout if fmt == "text" else result.stderr).splitlines()
    assert all(len(line) < LINE_MAX for line in lines)
    for name, expect in EXPECTED.items():
        if name == "huge" and fmt != "text":
            continue
        [line] = [line for line in lines if f"Pulumi.{name}.yaml: " in line]
        assert f"stacks/Pulumi.{name}.yaml{expect}" in line, line
    if fmt == "sarif":
        json.loads(result.stdout)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_as_policy_config_is_refused(tmp_path):
    levels = tmp_path / "levels.yaml"
    os.mkfifo(levels)
    result = plan_in_a_child("dev", "--policy-config", str(levels), timeout=60)  # today: waits for a writer
    assert result.returncode == 2
    assert result.stderr == f"fluxfleet plan: --policy-config {levels}: -: not a regular file\n"


def test_a_stack_file_name_that_is_not_utf8_is_an_error(tmp_path):
    (tmp_path / "Pulumi.dev.yaml").write_text(DEV)
    try:
        os.close(os.open(os.path.join(os.fsencode(tmp_path), b"Pulumi.\xff.yaml"), os.O_CREAT | os.O_WRONLY))
    except OSError:
        pytest.skip("this file system refuses a file name that is not UTF-8")
    result = run("--stacks-dir", str(tmp_path))
    assert result.exit_code == 2, result.output  # today: a UnicodeEncodeError when it is printed
    assert (
        result.stderr
        == f"fluxfleet plan: {tmp_path}/Pulumi.\\xff.yaml: -: the file name is not UTF-8 text, or holds control characters: rename the file\n"
    )


def test_a_stack_with_a_yaml_and_a_yml_file_is_an_error(tmp_path):
    (tmp_path / "Pulumi.dev.yaml").write_text(DEV)
    (tmp_path / "Pulumi.dev.yml").write_text(DEV)
    result = run("--stacks-dir", str(tmp_path))  # today: two "dev" stacks
    assert result.exit_code == 2
    assert result.stderr == (
        f"fluxfleet plan: {tmp_path}/Pulumi.dev.yml: -: stack dev has two files, Pulumi.dev.yaml and Pulumi.dev.yml: "
        "keep one\n"
    )
    with pytest.raises(SpecError):
        stack_files(tmp_path, ["dev"])


@pytest.mark.parametrize("name", ["../../etc/x", "dev/x", "a" * 101, "dev\x1b[2J", ""])
def test_a_stack_named_on_the_command_line_must_be_a_stack_name(tmp_path, name):
    (tmp_path / "Pulumi.dev.yaml").write_text(DEV)
    result = run("--stacks-dir", str(tmp_path), "dev", name)
    assert result.exit_code == 2 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"fluxfleet plan: {tmp_path}: '") and line.endswith(
        ": not a stack name (letters, digits, '-', '_' and '.', at most 100 characters)"
    )
    assert "\x1b" not in line


def test_a_named_stack_whose_file_is_yml_is_found(tmp_path):
    (tmp_path / "Pulumi.dev.yml").write_text(DEV)
    result = run("--stacks-dir", str(tmp_path), "dev", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["stacks"][0]["stack"] == "dev"


def test_a_namespace_typo_fails_the_plan(tmp_path):
    (tmp_path / "Pulumi.dev.yaml").write_text(DEV.replace("fluxfleet:flux:", "FLUXFLEET:flux:"))
    result = run("--stacks-dir", str(tmp_path), "--format", "json")
    assert result.exit_code == 2  # today: green, with no Flux configuration
    assert result.stderr == (
        f"{tmp_path}/Pulumi.dev.yaml: FLUXFLEET:flux: unknown namespace 'FLUXFLEET' (did you mean 'fluxfleet'?)\n"
        "planned 1 stack(s), 0 from the cache\n"
    )


def test_sarif_parses_each_stack_file_once(tmp_path, monkeypatch):
    from ruamel.yaml.main import YAML

    deps = ", ".join(f"missing-{i}" for i in range(400))
    (tmp_path / "Pulumi.dev.yaml").write_text(DEV.replace("dependsOn: [infra-configs]", f"dependsOn: [{deps}]"))
    fleet = plan_fleet(stack_files(tmp_path))
    assert len(fleet.stacks[0].errors) == 400
    loads = []
    load = YAML.load
    monkeypatch.setattr(YAML, "load", lambda self, stream: loads.append(self.typ) or load(self, stream))
    sarif = json.loads(render(fleet, "sarif"))
    assert len(loads) == 1  # today: 400, one for each error (43 s)
    line = next(i for i, text in enumerate(DEV.splitlines(), 1) if "missing" in text or "infra-configs]" in text)
    results = sarif["runs"][0]["results"]
    assert len(results) == 400 and {r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in results} == {
        line
    }


def test_reports_escape_what_they_print():
    hostile = "x\x1b[2J\nforged line\u202e|"
    stack = StackPlan(
        stack=hostile,
        file=f"stacks/Pulumi.{hostile}.yaml",
        errors=[SpecIssue(f"stacks/{hostile}", hostile, hostile)],
        resources=[RecordedResource(f"urn:{hostile}", f"type{hostile}", hostile, None, True, False, {}, [hostile])],
        graphs={hostile: [KustomizationStep(hostile, f'./{hostile}"]', (hostile,))]},
        violations=[Violation("flux-prune", "advisory", hostile, "t", "urn", hostile, hostile)],
    )
    for fmt in ("text", "markdown"):
        output = render(FleetPlan([stack]), fmt)
        assert not any(c in output for c in "\x1b\u202e"), fmt
        assert not any(line.startswith("forged") for line in output.splitlines()), fmt
    markdown = render(FleetPlan([stack]), "markdown")
    assert "x\\x1b[2J\\nforged line\\u202e\\|" in markdown and '"]"]' not in markdown


def test_sarif_locates_errors_inside_yaml_nodes_that_keep_no_lines(tmp_path):
    (tmp_path / "Pulumi.dev.yaml").write_text(
        "config:\n  fluxfleet:cluster: !!omap [kind: eks, name: x, resourceGroup: rg]\n"
    )
    result = run("--stacks-dir", str(tmp_path), "--format", "sarif")  # today: a TypeError from the line lookup
    assert result.exit_code == 2, result.output
    [location] = {str(r["locations"][0]["physicalLocation"]) for r in json.loads(result.stdout)["runs"][0]["results"]}
    assert "'startLine': 2" in location  # the line of fluxfleet:cluster, the deepest key ruamel placed
