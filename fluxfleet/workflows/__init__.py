"""The stage jobs of `.github/workflows/deploy.yml`, written from fleet.yaml's stages: the `stages` job's outputs (one
matrix a stage), the stage names its matrix step loops over, and one job a stage, in fleet.yaml's order, each needing
the one before and calling deploy-stage.yml. Everything else of the file (its comments, triggers, permissions, env
and the `stages` job's steps) is kept as written: the file is read and written with ruamel.yaml's round trip, and
the stage jobs are the same text for the same stages, so `--check` compares bytes."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import LiteralScalarString

from modules.spec import Fleet, SpecError, SpecIssue
from modules.spec.extension import go_duration

MATRIX_JOB = "stages"  # the job that prints each stage's matrix; every other job of deploy.yml is a stage's
MATRIX_STEP = "matrix"  # the id of its step that loops over the stages
STAGE_LOOP = re.compile(r"for stage in [^;\n]*; do")
JOB_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")  # what GitHub takes as a job id
CALLED = "./.github/workflows/deploy-stage.yml"
APP_KEY = "FLUXFLEET_APP_PRIVATE_KEY"  # the one secret deploy-stage.yml takes: the GitHub App's, for its pull requests


class DeployFileError(ValueError):
    """deploy.yml cannot take the stage jobs: the file, the key path and what is wrong, in one line."""


@dataclass(frozen=True)
class StageJob:
    """What deploy.yml says of a stage: its name, the stage before it, and what deploy-stage.yml will do with it."""

    name: str
    previous: str | None
    approval: bool
    rollback: bool
    bake: int  # seconds before the next stage; 0 after the last

    def describe(self) -> str:
        """The comment above the stage's job: how deploy-stage.yml runs it."""
        parts = [f"the reviewers of fleet-{self.name} approve it"] if self.approval else []
        parts.append("one job, which can roll the stage back" if self.rollback else "a matrix, a leg a stack")
        if self.bake:
            parts.append(f"then a bake of {go_duration(self.bake)}")
        return f"stage {self.name}: " + ", ".join(parts)


def stage_jobs(fleet: Fleet) -> list[StageJob]:
    """fleet.yaml's stages as deploy.yml's jobs, in order; SpecError (fleet.yaml, the stage's key path) for a stage
    whose name cannot be a job of the workflow."""
    issues = [
        SpecIssue(fleet.file, f"stages[{index}].name", problem)
        for index, stage in enumerate(fleet.stages)
        if (problem := _job_name_problem(stage.name))
    ]
    if issues:
        raise SpecError(issues)
    names = [stage.name for stage in fleet.stages]
    return [
        StageJob(
            name=stage.name,
            previous=names[index - 1] if index else None,
            approval=stage.approval,
            rollback=stage.rollback,
            bake=stage.after_stage_wait if index + 1 < len(names) else 0,
        )
        for index, stage in enumerate(fleet.stages)
    ]


def _job_name_problem(name: str) -> str | None:
    if name == MATRIX_JOB:
        return f"a stage cannot be named {MATRIX_JOB!r} in CI: deploy.yml's job {MATRIX_JOB!r} plans the stages"
    if not JOB_ID.fullmatch(name):
        return f"{name!r} cannot name a job of deploy.yml: a job's name starts with a letter or '_'"
    return None


def write_deploy(text: str, jobs: list[StageJob], file: str) -> str:
    """deploy.yml (`text`, read from `file`) with its stage jobs written for `jobs`; the rest as it was. A file that
    is no workflow with a `stages` job and its matrix step raises DeployFileError."""
    yaml = _yaml()
    try:
        document = yaml.load(text)
    except YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "jobs"
        raise DeployFileError(f"{file}: {where}: not YAML: {getattr(error, 'problem', None) or error}") from None
    planner = _matrix_job(document, file)
    planner["outputs"] = CommentedMap((job.name, f"${{{{ steps.{MATRIX_STEP}.outputs.{job.name} }}}}") for job in jobs)
    step = _matrix_step(planner, file)
    loop = f"for stage in {' '.join(job.name for job in jobs)}; do"
    step["run"] = LiteralScalarString(STAGE_LOOP.sub(loop, str(step["run"]), count=1))
    for name in [name for name in document["jobs"] if name != MATRIX_JOB]:
        del document["jobs"][name]
    written = io.StringIO()
    yaml.dump(document, written)
    # what stayed of the old stage jobs' comments (ruamel keeps a comment with the node before it) goes with them
    kept = written.getvalue().splitlines()
    while kept and (not kept[-1].strip() or re.match(r" {0,2}#", kept[-1])):
        kept.pop()
    return "\n".join(kept) + "\n" + "".join(_job_text(job) for job in jobs)


def _job_text(job: StageJob) -> str:
    """The stage's job, two spaces in under `jobs:`. A stage runs when it has stacks the run has not applied, or the
    run applied some (its bake may be left to wait); after the stage before it passed, or was skipped."""
    plan = f"fromJSON(needs.{MATRIX_JOB}.outputs.{job.name})"
    has_work = f"{plan}.matrix.stack[0] != null || {plan}.run.succeeded > 0"
    needs = MATRIX_JOB if job.previous is None else f"[{MATRIX_JOB}, {job.previous}]"
    condition = has_work if job.previous is None else f"!cancelled() && !failure() && ({has_work})"
    return (
        f"\n  # {job.describe()}\n"
        f"  {job.name}:\n"
        f"    needs: {needs}\n"
        f"    if: ${{{{ {condition} }}}}\n"
        f"    uses: {CALLED}\n"
        f"    with:\n"
        f"      stage: {job.name}\n"
        f"      plan: ${{{{ needs.{MATRIX_JOB}.outputs.{job.name} }}}}\n"
        f"    permissions:\n"
        f"      contents: read\n"
        f"      id-token: write  # OIDC login to Azure\n"
        f"      actions: read    # the approval checks that the environment has required reviewers\n"
        f"    secrets:\n"
        f"      {APP_KEY}: ${{{{ secrets.{APP_KEY} }}}}  # the pull request of a restored pin\n"
    )


def _yaml() -> YAML:
    yaml = YAML()  # round trip: comments, quotes and flow style as written
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096  # a long line stays one line
    yaml.preserve_quotes = True
    return yaml


def _matrix_job(document: object, file: str) -> CommentedMap:
    jobs = document.get("jobs") if isinstance(document, CommentedMap) else None
    if not isinstance(jobs, CommentedMap) or not isinstance(jobs.get(MATRIX_JOB), CommentedMap):
        raise DeployFileError(f"{file}: jobs.{MATRIX_JOB}: no such job: it prints each stage's matrix")
    if next(iter(jobs)) != MATRIX_JOB:
        raise DeployFileError(f"{file}: jobs.{MATRIX_JOB}: not the first job: the stage jobs follow it")
    return jobs[MATRIX_JOB]


def _matrix_step(job: CommentedMap, file: str) -> CommentedMap:
    steps = job.get("steps")
    found = [s for s in steps or () if isinstance(s, CommentedMap) and s.get("id") == MATRIX_STEP]
    where = f"{file}: jobs.{MATRIX_JOB}.steps"
    if len(found) != 1:
        raise DeployFileError(f"{where}: no single step with `id: {MATRIX_STEP}`: it prints each stage's matrix")
    if not STAGE_LOOP.search(str(found[0].get("run", ""))):
        raise DeployFileError(f"{where}[id={MATRIX_STEP}].run: no `for stage in ...; do`: the stages are named there")
    return found[0]
