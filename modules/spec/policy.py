"""The policy config file: which level each policy rule is enforced at."""

from __future__ import annotations

import difflib
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Literal


from modules.spec.errors import KEY_PART_MAX, SpecError, SpecIssue, bounded, shown
from modules.spec.files import read_yaml


PolicyLevel = Literal["mandatory", "advisory", "disabled"]
POLICY_LEVELS: tuple[str, ...] = typing.get_args(PolicyLevel)


def load_policy_levels(path: Path, known: Sequence[str]) -> dict[str, str]:
    """A policy config file (YAML or JSON), the shape the CrossGuard pack takes: policy id → level, or
    policy id → {enforcementLevel: level}."""
    file = str(path)
    document = read_yaml(path, file)
    if not isinstance(document, dict):
        raise SpecError([SpecIssue(file, "-", "a map of policy id to mandatory, advisory or disabled")])
    levels: dict[str, str] = {}
    issues: list[SpecIssue] = []
    for policy, value in document.items():
        where = bounded(str(policy), KEY_PART_MAX)
        if policy not in known:
            hint = difflib.get_close_matches(str(policy), known, n=1) if len(str(policy)) <= KEY_PART_MAX else []
            issues.append(SpecIssue(file, where, "unknown policy" + (f" (did you mean {hint[0]!r}?)" if hint else "")))
            continue
        if isinstance(value, dict):
            where, value = f"{where}.enforcementLevel", value.get("enforcementLevel")
        if value not in POLICY_LEVELS:
            issues.append(SpecIssue(file, where, f"{shown(value)}: use one of {', '.join(POLICY_LEVELS)}"))
            continue
        levels[policy] = value
    if issues:
        raise SpecError(issues)
    return levels
