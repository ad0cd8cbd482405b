"""`fluxfleet affected`'s work, callable without the command line: the stacks a change affects between two commits
(or a commit and the working tree), each with why, as text or JSON."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fluxfleet.affected import Affected, affected, tree
from fluxfleet.affected.trees import GitError, commit_of, program_changes, repository, write_stacks
from fluxfleet.exits import InvalidInput
from fluxfleet.inputs import check_output
from modules.spec import SpecError, printable

Format = Literal["text", "json"]
WORKING_TREE = "the working tree"


@dataclass(frozen=True)
class AffectedRequest:
    """`fluxfleet affected`'s options, as typed values."""

    base: str
    head: str | None = None  # None: the working tree
    stacks_dir: Path = Path("stacks")
    output: Path | None = None  # checked before any work


@dataclass(frozen=True)
class AffectedReport:
    base: str
    base_commit: str
    head: str | None  # None: the working tree
    head_commit: str | None
    stacks: tuple[Affected, ...]

    @property
    def previewed(self) -> list[str]:
        """The stacks of head to preview: every affected one but the deleted."""
        return [item.stack for item in self.stacks if item.change != "deleted"]


def _invalid(line: str) -> InvalidInput:
    return InvalidInput(f"fluxfleet affected: {printable(line)}")


def run_affected(request: AffectedRequest) -> AffectedReport:
    """The stacks affected between `base` and `head`. InvalidInput (exit 2, one line each) for a ref git does not
    know, a stacks directory in no git repository, an affected stack of head that is invalid, or head's fleet.yaml."""
    from fluxfleet.plan import display_path

    check_output("affected", "--output", request.output)
    if not request.stacks_dir.is_dir():
        raise _invalid(f"{request.stacks_dir}: no such directory")
    display = str(Path(display_path(request.stacks_dir / "_")).parent)
    try:
        repo = repository(request.stacks_dir)
        base = commit_of(repo, request.base)
        head = commit_of(repo, request.head) if request.head is not None else None
        program = program_changes(repo, base, head)
        with tempfile.TemporaryDirectory(prefix="fluxfleet-affected-") as scratch:
            base_dir = write_stacks(repo, base, Path(scratch) / "base")
            head_dir = request.stacks_dir if head is None else write_stacks(repo, head, Path(scratch) / "head")
            try:
                before = tree(base_dir, display, head=False)
                after = tree(head_dir, display, head=True, parsed=before.parsed)
                stacks = affected(before, after, program)
            except SpecError as error:
                raise InvalidInput.of(error, "fluxfleet affected: ") from None
    except GitError as error:
        raise _invalid(str(error)) from None
    return AffectedReport(request.base, base, request.head, head, tuple(stacks))


def render(report: AffectedReport, fmt: Format) -> str:
    if fmt == "json":
        document = {
            "base": {"ref": report.base, "commit": report.base_commit},
            "head": {"ref": report.head, "commit": report.head_commit},
            "stacks": [
                {
                    "stack": item.stack,
                    "change": item.change,
                    "file": item.file,
                    **({"renamedFrom": item.renamed_from} if item.renamed_from else {}),
                    "reasons": list(item.reasons),
                }
                for item in report.stacks
            ],
            "preview": report.previewed,
        }
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    lines = []
    for item in report.stacks:
        renamed = f" (was {item.renamed_from})" if item.renamed_from else ""
        lines.append(printable(f"{item.stack}: {item.change}{renamed}"))
        lines += [printable(f"  {reason}") for reason in item.reasons]
    head = WORKING_TREE if report.head is None else f"{report.head} ({report.head_commit[:12]})"
    between = f"between {report.base} ({report.base_commit[:12]}) and {head}"
    count = len(report.stacks)
    lines.append(
        printable(
            f"{count} stack{'' if count == 1 else 's'} affected {between}" if count else f"no stack affected {between}"
        )
    )
    return "\n".join(lines) + "\n"
