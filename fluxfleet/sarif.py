"""A fleet plan as SARIF 2.1.0, for GitHub code scanning: one rule per policy id (plus one for invalid input),
each result located at the stack file and, where the key is found, its line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fluxfleet.plan import FleetPlan, spec_keys
from modules.spec import key_path_parts, stack_file_line
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
        for error in stack.errors:
            line = stack_file_line(Path(stack.file), key_path_parts(error.path)) if error.path != "-" else None
            results.append(_result(SPEC_RULE, index, "error", f"{error.path}: {error.message}", stack.file, line))
        for violation in stack.violations:
            line = stack_file_line(Path(stack.file), spec_keys(violation))
            result = _result(
                violation.policy,
                index,
                SARIF_LEVEL[violation.level],
                f"{violation.where}: {violation.message}",
                stack.file,
                line,
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
        "message": {"text": text},
        "locations": [{"physicalLocation": location}],
    }
