"""`fluxfleet workflows`'s work, callable without the command line: deploy.yml's stage jobs written from fleet.yaml,
or, with `check`, whether the file holds what fleet.yaml gives."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from fluxfleet.exits import CommandError, ExitCode, InvalidInput
from fluxfleet.inputs import check_output
from fluxfleet.workflows import MATRIX_JOB, DeployFileError, stage_jobs, write_deploy
from modules.spec import FLEET_FILE, SpecError

DEPLOY_FILE = Path(".github/workflows/deploy.yml")


@dataclass(frozen=True)
class WorkflowsRequest:
    """`fluxfleet workflows`'s options, as typed values."""

    stacks_dir: Path = Path("stacks")
    fleet_file: Path | None = None  # default: STACKS_DIR/fleet.yaml
    output: Path = DEPLOY_FILE  # the workflow whose stage jobs are written (it must exist: the rest of it is kept)
    check: bool = False  # only compare: the file is left as it is

    @property
    def fleet_path(self) -> Path:
        return self.fleet_file or self.stacks_dir / FLEET_FILE


@dataclass(frozen=True)
class WorkflowsResult:
    line: str  # what was done or found, for stderr
    exit_code: ExitCode = ExitCode.OK


def run_workflows(request: WorkflowsRequest) -> WorkflowsResult:
    """The stage jobs fleet.yaml gives, written into `output` (or compared with it, for `check`). InvalidInput
    (exit 2) for a fleet.yaml or deploy.yml that cannot give them; with `check`, exit 1 when the file differs."""
    from fluxfleet.plan import display_path
    from fluxfleet.rollout.orchestrator import load_inputs

    if not request.stacks_dir.is_dir():
        raise _invalid(f"{request.stacks_dir}: no such directory")
    if not request.check:
        check_output("workflows", "--output", request.output)
    try:
        text = request.output.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _invalid(
            f"--output {request.output}: no such file: the stage jobs are written into an existing deploy.yml, which "
            "keeps its triggers, env and `stages` job (start from fluxfleet's own .github/workflows/deploy.yml)"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise _invalid(
            f"--output {request.output}: cannot be read: {getattr(error, 'strerror', None) or error}"
        ) from None
    fleet_name = display_path(request.fleet_path)
    try:
        fleet, _ = load_inputs(request.stacks_dir, request.fleet_path, display_path)
        written = write_deploy(text, stage_jobs(fleet), display_path(request.output))
    except SpecError as error:
        raise InvalidInput.of(error, "fluxfleet workflows: ") from None
    except DeployFileError as error:
        raise _invalid(str(error)) from None
    if request.check:
        if written == text:
            return WorkflowsResult(f"{request.output}: its stage jobs are what {fleet_name} gives")
        return WorkflowsResult(
            f"fluxfleet workflows: {request.output} is not what {fleet_name} gives ({_difference(text, written)}): "
            "run `fluxfleet workflows` and commit the file",
            ExitCode.FAILED,
        )
    if written == text:
        return WorkflowsResult(f"{request.output}: up to date with {fleet_name}")
    try:
        request.output.write_text(written, encoding="utf-8")
    except OSError as error:
        raise CommandError(f"fluxfleet workflows: --output {request.output}: {error.strerror or error}") from None
    return WorkflowsResult(f"wrote {request.output}: {len(fleet.stages)} stage job(s), from {fleet_name}")


def _difference(committed: str, written: str) -> str:
    """One line on how the file differs: the stage jobs it has against fleet.yaml's, else the lines that differ."""
    have, want = _stage_names(committed), _stage_names(written)
    if have is not None and have != want:
        return f"its stage jobs: {', '.join(have) or 'none'}; fleet.yaml's stages: {', '.join(want)}"
    matcher = difflib.SequenceMatcher(a=committed.splitlines(), b=written.splitlines(), autojunk=False)
    changes = [op for op in matcher.get_opcodes() if op[0] != "equal"]
    lines = sum(max(i2 - i1, j2 - j1) for _, i1, i2, j1, j2 in changes)
    return f"{lines} line(s) differ, the first at line {changes[0][1] + 1}"


def _stage_names(text: str) -> list[str] | None:
    try:
        jobs = YAML(typ="safe").load(text).get("jobs")
    except (YAMLError, AttributeError):
        return None
    return [name for name in jobs if name != MATRIX_JOB] if isinstance(jobs, dict) else None


def _invalid(message: str) -> InvalidInput:
    return InvalidInput(f"fluxfleet workflows: {message}")
