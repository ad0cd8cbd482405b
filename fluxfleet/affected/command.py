"""`fluxfleet affected`'s work, callable without the command line: the stacks a change affects between two commits
(or a commit and the working tree), each with why, as text or JSON."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fluxfleet import markdown as md
from fluxfleet.affected import Affected, affected, tree
from fluxfleet.affected.trees import GitError, commit_of, program_changes, repository, write_stacks
from fluxfleet.exits import InvalidInput
from fluxfleet.inputs import check_output
from modules.spec import SpecError, printable

Format = Literal["text", "json", "markdown"]
WORKING_TREE = "the working tree"
MATRIX_JOBS = 256  # GitHub Actions runs at most this many jobs of one matrix
MARKDOWN_BUDGET = 60_000  # characters: a pull request comment holds 65,536, with room for the workflow's own lines
NAMES_SHOWN = 50  # stacks named in one row of the Markdown; then how many more


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

    @property
    def legs(self) -> list[list[str]]:
        """The stacks to preview in at most MATRIX_JOBS groups, as even as they divide and in order: one stack per
        job of a matrix until there are more stacks than a matrix holds jobs."""
        stacks = self.previewed
        size = -(-len(stacks) // MATRIX_JOBS)  # ceiling
        return [stacks[start : start + size] for start in range(0, len(stacks), size)] if stacks else []


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
            "legs": report.legs,
        }
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if fmt == "markdown":
        return markdown(report)
    lines = []
    for item in report.stacks:
        renamed = f" (was {item.renamed_from})" if item.renamed_from else ""
        lines.append(printable(f"{item.stack}: {item.change}{renamed}"))
        lines += [printable(f"  {reason}") for reason in item.reasons]
    lines.append(printable(_count_line(report, between(report))))
    return "\n".join(lines) + "\n"


def between(report: AffectedReport, quote: Callable[[str], str] = str) -> str:
    head = WORKING_TREE if report.head is None else f"{quote(report.head)} ({quote(report.head_commit[:12])})"
    return f"between {quote(report.base)} ({quote(report.base_commit[:12])}) and {head}"


def _count_line(report: AffectedReport, span: str) -> str:
    count = len(report.stacks)
    return f"{count} stack{'' if count == 1 else 's'} affected {span}" if count else f"no stack affected {span}"


def markdown(report: AffectedReport) -> str:
    """For a pull request's comment and a job summary: a table of the affected stacks, those with the same change and
    the same reasons in one row (a profile or a program change is one row, however many stacks it reaches). At most
    NAMES_SHOWN names a row and MARKDOWN_BUDGET characters in all: the rest is counted, and listed by the text or
    JSON report."""
    lines = [f"### {_count_line(report, between(report, md.code))}"]
    groups: dict[tuple[str, tuple[str, ...]], list[Affected]] = {}
    for item in report.stacks:
        change = f"renamed from {md.code(item.renamed_from)}" if item.renamed_from else item.change
        groups.setdefault((change, item.reasons), []).append(item)
    if not groups:
        return lines[0] + "\n"
    lines += ["", "| Stacks | Change | Why |", "| --- | --- | --- |"]
    used = sum(len(line) + 1 for line in lines)
    rows = list(groups.items())
    for index, ((change, reasons), items) in enumerate(rows):
        names = ", ".join(md.code(item.stack) for item in items[:NAMES_SHOWN])
        if len(items) > NAMES_SHOWN:
            names += f" and {len(items) - NAMES_SHOWN} more"
        row = f"| {names} | {change} | {'<br>'.join(md.text(reason) for reason in reasons)} |"
        if used + len(row) + 1 + 100 > MARKDOWN_BUDGET:  # 100: room for the line that counts the rest
            left = sum(len(items) for _, items in rows[index:])
            lines += ["", f"And {left} more stack{'' if left == 1 else 's'}: `fluxfleet affected` lists them all."]
            break
        lines.append(row)
        used += len(row) + 1
    return "\n".join(lines) + "\n"
