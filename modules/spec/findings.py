"""What the spec's cross-field rules yield: a finding at a key path, either a message or a `Partner` (a value that
needs another, which is missing; the two may be written in two files)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from modules.spec.errors import Loc, shown


@dataclass(frozen=True)
class Partner:
    """A rule's finding that a value set at `present` needs the one it is yielded at, which is missing: the two may be
    written in two files (Origins.missing_partner says which and where the missing one goes)."""

    present: Loc
    rule: str  # "httpsUser and httpsKey go together"


Finding = tuple[Loc, "str | Partner"]  # where a rule found a problem, and what it is


def duplicate_issues(loc: Loc, values: Sequence[str]) -> Iterator[tuple[Loc, str]]:
    """Each value of the list at `loc` that an earlier one repeats, at its index."""
    seen: set[str] = set()
    for index, value in enumerate(values):
        if value in seen:
            yield (*loc, index), f"duplicate {shown(value)}"
        seen.add(value)
