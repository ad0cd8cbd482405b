"""The rules of `policies.rules` as CrossGuard policies, one per rule id, at the rule's default level.

Levels are set per policy id in the pack's config (`pulumi preview --policy-pack policies
--policy-pack-config levels.json`, e.g. `{"flux-prune": "mandatory"}`), the same file `fluxfleet plan
--policy-config` reads.
"""

from __future__ import annotations

from collections.abc import Callable

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies.rules import RULES, Resource, Rule, resource_violations, stack_violations

ENFORCEMENT = {
    "mandatory": EnforcementLevel.MANDATORY,
    "advisory": EnforcementLevel.ADVISORY,
    "disabled": EnforcementLevel.DISABLED,
}


def policies() -> list[ResourceValidationPolicy | StackValidationPolicy]:
    return [
        (StackValidationPolicy if rule.stack_rule else ResourceValidationPolicy)(
            name=rule.id,
            description=rule.description,
            validate=stack_validation(rule) if rule.stack_rule else resource_validation(rule),
            enforcement_level=ENFORCEMENT[rule.level],
        )
        for rule in RULES
    ]


def resource_validation(rule: Rule) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        # Secrets reach policies unwrapped, so only the always-encrypted properties count as secret here.
        resource = Resource(args.resource_type, args.name, args.props, args.urn)
        for violation in resource_violations(rule, resource, rule.level):
            report_violation(f"{violation.where}: {violation.message}", None)

    return validate


def stack_validation(rule: Rule) -> Callable[[StackValidationArgs, ReportViolation], None]:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [
            Resource(r.resource_type, r.name, r.props, r.urn, depends_on=frozenset(d.urn for d in r.dependencies))
            for r in args.resources
        ]
        for violation in stack_violations(rule, resources, rule.level, args.stack_tags):
            report_violation(f"{violation.where}: {violation.message}", violation.urn or None)

    return validate
