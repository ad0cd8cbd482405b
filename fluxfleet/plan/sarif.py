"""A fleet plan as SARIF 2.1.0, for GitHub code scanning: one rule per policy id (plus one for invalid input),
each result located at the stack file and, where the key is found, its line.

What GitHub's ingestion asks beyond the schema (the SARIF multitool's GitHub rules): every rule with a full
description and help (text and Markdown) and a `helpUri` at its section of docs/policies.md; the tool's version;
artifact URIs relative to `%SRCROOT%`, the directory `plan` runs in (the checkout, in CI); and a fingerprint per
result (rule, file, key path, message), so that two results on one line stay two alerts and a result keeps its
alert when lines move."""

from __future__ import annotations

import hashlib
import os
import re
from importlib.metadata import version
from pathlib import Path
from typing import Any

from fluxfleet.plan import FleetPlan, spec_keys
from modules.spec import ISSUE_PART_MAX, StackFileLines, bounded, key_path_parts, listed
from policies.rules import RULES

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SPEC_RULE = "stack-spec"  # invalid stack input: the errors `plan` exits 2 for
SARIF_LEVEL = {"mandatory": "error", "advisory": "warning"}
EXIT_CODES = {0: "valid and compliant", 1: "a mandatory policy violated", 2: "invalid input"}
SRCROOT = "%SRCROOT%"
ROOT = Path(__file__).resolve().parents[2]  # the repository: README.md and docs/ are read from here
POLICY_DOCS = "docs/policies.md"  # one section per rule, its heading the rule's id
FINGERPRINT = "fluxfleetFinding/v1"  # partialFingerprints key: a SHA-256 of rule, file, key path and message
SPEC_DESCRIPTION = "The stack file, its profiles and fleet.yaml are valid fluxfleet input."
LEVEL_HELP = {
    "mandatory": "Mandatory: a violation fails `fluxfleet plan` (exit 1) and `pulumi preview --policy-pack policies`.",
    "advisory": "Advisory: reported, never failing.",
}
KIND_HELP = {
    None: "the whole stack",
    "kubernetesconfiguration:FluxConfiguration": "each Flux configuration",
    "kubernetesconfiguration:Extension": "the microsoft.flux extension",
    "containerservice:ManagedCluster": "the AKS cluster",
}


def applies(kind: str | None) -> str:
    """What a rule checks, in words: the stack, or each resource of its kind."""
    return KIND_HELP.get(kind) or f"each {kind}"


def docs_base() -> str:
    """Where the repository's files are read: on GitHub (GITHUB_SERVER_URL and GITHUB_REPOSITORY, which Actions
    sets) its default branch, else this checkout on disk."""
    server, repository = os.environ.get("GITHUB_SERVER_URL"), os.environ.get("GITHUB_REPOSITORY")
    if server and repository:
        return f"{server.rstrip('/')}/{repository}/blob/HEAD/"
    return ROOT.as_uri() + "/"


def _rule(rule_id: str, description: str, level: str, applies_to: str | None, base: str) -> dict[str, Any]:
    """A rule with what GitHub shows of it: descriptions, help with its level and remedy, and its docs."""
    doc = f"{base}{POLICY_DOCS}#{rule_id}"
    if rule_id == SPEC_RULE:
        checks = "Checks the stack file, the profiles it uses and stacks/fleet.yaml: every key, type and value."
        remedy = "Fix the value at the key path the result names; docs/config.md describes every key."
        level_help = "Invalid input fails `fluxfleet plan` (exit 2); the policy rules do not run on the stack."
    else:
        checks = f"Checks {applies(applies_to)}, as `fluxfleet plan` and the CrossGuard pack do."
        remedy = "Change the value at the key path the result names, as its message says."
        level_help = LEVEL_HELP[level] + " `--policy-config` changes the level (docs/config.md, Policy levels)."
    text = f"{description} {checks} {remedy} {level_help} See {POLICY_DOCS}#{rule_id}."
    markdown = f"{description}\n\n{checks} {remedy}\n\n{level_help}\n\n[{rule_id} in {POLICY_DOCS}]({doc})"
    descriptor: dict[str, Any] = {
        "id": rule_id,
        "name": "".join(word.capitalize() for word in rule_id.split("-")),
        "shortDescription": {"text": description},
        "fullDescription": {"text": f"{description} {checks}"},
        "help": {"text": text, "markdown": markdown},
        "helpUri": doc,
        "defaultConfiguration": {"level": SARIF_LEVEL.get(level, "error")},  # invalid input: an error
    }
    if rule_id != SPEC_RULE:
        descriptor["properties"] = {"enforcementLevel": level}
    return descriptor


def to_sarif(plan: FleetPlan) -> dict[str, Any]:
    base = docs_base()
    rules = [
        _rule(SPEC_RULE, SPEC_DESCRIPTION, "invalid", None, base),
        *(_rule(rule.id, rule.description, rule.level, rule.applies_to, base) for rule in RULES),
    ]
    index = {rule["id"]: position for position, rule in enumerate(rules)}
    srcroot = Path.cwd()
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
        _result(rule_id, index, level, text, _uri(file, srcroot), line, resource, stacks)
        for (rule_id, level, text, file, line, resource), stacks in found.items()
    ]
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "fluxfleet",
                        "version": version("fluxfleet"),
                        "semanticVersion": version("fluxfleet"),
                        "informationUri": f"{base}README.md",
                        "rules": rules,
                    }
                },
                "originalUriBaseIds": {
                    SRCROOT: {
                        "description": {"text": "The directory fluxfleet plan ran in: the repository's root in CI."},
                    }
                },
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


def _uri(file: str, srcroot: Path) -> str:
    """The file relative to %SRCROOT%, as a URI reference, whether the stacks dir was given relative or absolute."""
    path = Path(file)
    try:
        relative = os.path.relpath(path if path.is_absolute() else srcroot / path, srcroot)
    except ValueError:  # another drive (Windows): no relative path
        return path.resolve().as_uri()
    return "/".join(_escape(part) for part in Path(relative).parts)


def _escape(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9._~!$&'()*+,;=:@-]", lambda m: "".join(f"%{b:02X}" for b in m[0].encode()), part)


def _fingerprint(rule_id: str, uri: str, text: str) -> str:
    """Stable across runs and line moves, distinct for two findings on one line: rule, file, key path, message."""
    return hashlib.sha256("\0".join((rule_id, uri, text)).encode()).hexdigest()


def _result(
    rule_id: str,
    index: dict[str, int],
    level: str,
    text: str,
    uri: str,
    line: int | None,
    resource: str | None,
    stacks: list[str],
) -> dict[str, Any]:
    location: dict[str, Any] = {"artifactLocation": {"uri": uri, "uriBaseId": SRCROOT}}
    if line:
        location["region"] = {"startLine": line}
    fingerprint = _fingerprint(rule_id, uri, text)  # the stacks a profile reaches may change; the finding not
    if len(stacks) > 1:  # written in a profile: one result for every stack that uses it
        text += f" ({len(stacks):,} stacks: {listed(stacks, 5)})"
    result: dict[str, Any] = {
        "ruleId": rule_id,
        "ruleIndex": index[rule_id],
        "level": level,
        "message": {"text": bounded(text, 2 * ISSUE_PART_MAX)},  # escaped, one bounded line
        "locations": [{"physicalLocation": location}],
        "partialFingerprints": {FINGERPRINT: fingerprint},
        "properties": {"stacks": stacks},
    }
    if resource is not None:
        result["locations"][0]["logicalLocations"] = [{"name": resource, "kind": "resource"}]
    return result
