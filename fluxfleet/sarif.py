"""A fleet plan as SARIF 2.1.0, for GitHub code scanning: one rule per policy id (plus one for invalid input),
each result located at the stack file and, where the key is found, its line."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fluxfleet.plan import FleetPlan, spec_keys
from modules.spec import ISSUE_PART_MAX, StackFileLines, bounded, key_path_parts
from policies.rules import RULES

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SPEC_RULE = "stack-spec"  # invalid stack input: the errors `plan` exits 2 for
SARIF_LEVEL = {"mandatory": "error", "advisory": "warning"}


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
    results: list[dict[str, Any]] = []
    for stack in plan.stacks:
        if not stack.errors and not stack.violations:
            continue
        lines = StackFileLines(Path(stack.file))  # the file parsed once, however many results point into it
        for error in stack.errors:
            if at_line := re.fullmatch(r"line (\d+)", error.path):  # a YAML error: the line is known
                line = int(at_line[1])
            else:
                line = lines.line(key_path_parts(error.path)) if error.path != "-" else None
            text = f"{error.path}: {error.message}"
            results.append(_result(SPEC_RULE, index, "error", text, stack.file, line))
        for violation in stack.violations:
            result = _result(
                violation.policy,
                index,
                SARIF_LEVEL[violation.level],
                f"{violation.where}: {violation.message}",
                stack.file,
                lines.line(spec_keys(violation)),
            )
            result["locations"][0]["logicalLocations"] = [
                {"name": violation.resource, "fullyQualifiedName": violation.urn, "kind": "resource"}
            ]
            results.append(result)
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "fluxfleet", "rules": rules}}, "results": results}],
    }


def _result(rule_id: str, index: dict[str, int], level: str, text: str, file: str, line: int | None) -> dict[str, Any]:
    location: dict[str, Any] = {"artifactLocation": {"uri": Path(file).as_posix()}}
    if line:
        location["region"] = {"startLine": line}
    return {
        "ruleId": rule_id,
        "ruleIndex": index[rule_id],
        "level": level,
        "message": {"text": bounded(text, 2 * ISSUE_PART_MAX)},  # escaped, one bounded line
        "locations": [{"physicalLocation": location}],
    }
