"""A fleet plan as SARIF 2.1.0, for GitHub code scanning: one rule per policy id (plus one for invalid input),
each result located at the stack file and, where the key is found, its line."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fluxfleet.plan import FleetPlan, spec_keys
from modules.spec import ISSUE_PART_MAX, StackFileLines, bounded, key_path_parts, listed
from policies.rules import RULES

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SPEC_RULE = "stack-spec"  # invalid stack input: the errors `plan` exits 2 for
SARIF_LEVEL = {"mandatory": "error", "advisory": "warning"}
EXIT_CODES = {0: "valid and compliant", 1: "a mandatory policy violated", 2: "invalid input"}


def to_sarif(plan: FleetPlan) -> dict[str, Any]:
    rules = [
        {
            "id": SPEC_RULE,
            "name": "StackSpec",
            "shortDescription": {"text": "The stack file is valid fluxfleet input."},
            "defaultConfiguration": {"level": "error"},
        },
        *(
            {
                "id": rule.id,
                "name": "".join(word.capitalize() for word in rule.id.split("-")),
                "shortDescription": {"text": rule.description},
                "defaultConfiguration": {"level": SARIF_LEVEL[rule.level]},
                "properties": {"enforcementLevel": rule.level},
            }
            for rule in RULES
        ),
    ]
    index = {rule["id"]: position for position, rule in enumerate(rules)}
    lines = _Lines()
    found: dict[tuple[Any, ...], list[str]] = {}  # one result per finding, with the stacks it reaches
    for stack in plan.stacks:
        for error in stack.errors:
            if at_line := re.fullmatch(r"line (\d+)", error.path):  # a YAML error: the line is known
                line = int(at_line[1])
            else:
                line = lines.line(error.file, key_path_parts(error.path)) if error.path != "-" else None
            text = f"{error.path}: {error.message}"
            found.setdefault((SPEC_RULE, "error", text, error.file, line, None), []).append(stack.stack)
        for violation in stack.violations:
            file = stack.file_of(violation)
            line = lines.line(file, spec_keys(violation))
            text = f"{violation.where}: {violation.message}"
            key = (violation.policy, SARIF_LEVEL[violation.level], text, file, line, violation.resource)
            found.setdefault(key, []).append(stack.stack)
    results = [
        _result(rule_id, index, level, text, file, line, resource, stacks)
        for (rule_id, level, text, file, line, resource), stacks in found.items()
    ]
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "fluxfleet", "rules": rules}},
                # the exit code `plan` gives: what the results add up to, as the other formats' `ok` says
                "invocations": [
                    {
                        "executionSuccessful": True,
                        "exitCode": plan.exit_code,
                        "exitCodeDescription": EXIT_CODES[plan.exit_code],
                    }
                ],
                "results": results,
            }
        ],
    }


class _Lines:
    """Where keys are in each file results point into: every file parsed once, however many results it has."""

    def __init__(self) -> None:
        self._files: dict[str, StackFileLines] = {}

    def line(self, file: str, keys: list[str | int]) -> int | None:
        if file not in self._files:
            self._files[file] = StackFileLines(Path(file))
        return self._files[file].line(keys)


def _result(
    rule_id: str,
    index: dict[str, int],
    level: str,
    text: str,
    file: str,
    line: int | None,
    resource: str | None,
    stacks: list[str],
) -> dict[str, Any]:
    location: dict[str, Any] = {"artifactLocation": {"uri": Path(file).as_posix()}}
    if line:
        location["region"] = {"startLine": line}
    if len(stacks) > 1:  # written in a profile: one result for every stack that uses it
        text += f" ({len(stacks):,} stacks: {listed(stacks, 5)})"
    result: dict[str, Any] = {
        "ruleId": rule_id,
        "ruleIndex": index[rule_id],
        "level": level,
        "message": {"text": bounded(text, 2 * ISSUE_PART_MAX)},  # escaped, one bounded line
        "locations": [{"physicalLocation": location}],
        "properties": {"stacks": stacks},
    }
    if resource is not None:
        result["locations"][0]["logicalLocations"] = [{"name": resource, "kind": "resource"}]
    return result
