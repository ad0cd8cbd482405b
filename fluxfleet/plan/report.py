"""Renders a fleet plan as text (a rich tree), JSON (for tools), Markdown (for a CI job summary) or SARIF (for
code scanning)."""

from __future__ import annotations

import io
import re
from json.encoder import INFINITY, encode_basestring_ascii
from typing import Any, Literal

from rich.console import Console
from rich.markup import escape
from rich.text import Text
from rich.tree import Tree

from fluxfleet.mock_engine import RecordedResource
from fluxfleet.plan import FleetPlan, Shared, StackPlan, migration_commands, pool_import_commands
from modules.flux_configuration_v2025 import TYPE as V2025_TYPE
from fluxfleet.plan.sarif import to_sarif
from fluxfleet import markdown as md
from modules.spec import listed, printable
from policies.rules import Violation

Format = Literal["text", "json", "markdown", "sarif"]
# An invalid stack's violations are unknown, not none: said where its errors are.
POLICIES_NOT_RUN = "policy rules not run: they check what the program declares, and it needs the errors fixed first"


def render(plan: FleetPlan, fmt: Format, color: bool = False, width: int = 120) -> str:
    if fmt == "json":
        return json_text(to_json(plan)) + "\n"
    if fmt == "sarif":
        return json_text(to_sarif(plan)) + "\n"
    if fmt == "markdown":
        return to_markdown(plan)
    return to_text(plan, color=color, width=width)


def json_text(value: Any) -> str:
    """`json.dumps(value, indent=2)`, byte for byte, in a third of its time: with an indent, json encodes in Python
    generators, and a thousand stacks' report is megabytes (a warm plan of them would spend most of its time here)."""
    parts: list[str] = []
    append = parts.append

    def write(value: Any, indent: str) -> None:
        if isinstance(value, str):
            append(encode_basestring_ascii(value))
        elif value is None or value is True or value is False:
            append("null" if value is None else "true" if value else "false")
        elif isinstance(value, int):
            append(int.__repr__(value))
        elif isinstance(value, float):
            append(_json_float(value))
        elif isinstance(value, list | tuple):
            if not value:
                append("[]")
                return
            inner = indent + "  "
            append("[" + inner)
            write(value[0], inner)
            for item in value[1:]:
                append("," + inner)
                write(item, inner)
            append(indent + "]")
        elif isinstance(value, dict):
            if not value:
                append("{}")
                return
            inner = indent + "  "
            separator = "{" + inner
            for key, item in value.items():
                append(separator + encode_basestring_ascii(_json_key(key)) + ": ")
                write(item, inner)
                separator = "," + inner
            append(indent + "}")
        else:
            raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")

    write(value, "\n")
    return "".join(parts)


def _json_float(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (INFINITY, -INFINITY):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


def _json_key(key: Any) -> str:
    """A map key as json writes it: text as it is, a number, a boolean or null as its JSON text."""
    if isinstance(key, str):
        return key
    if key is None or key is True or key is False:
        return "null" if key is None else "true" if key else "false"
    if isinstance(key, float):
        return _json_float(key)
    if isinstance(key, int):
        return int.__repr__(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {key.__class__.__name__}")


def shared_line(shared: Shared) -> str:
    """A finding written in a profile, once, with the stacks it reaches."""
    finding = shared.finding
    text = f"{shared.file}: {finding.level} {finding}" if isinstance(finding, Violation) else str(finding)
    count = len(shared.stacks)
    return f"{text} ({count:,} stack{'s' if count > 1 else ''}: {listed(shared.stacks, 5)})"


def plan_lines(plan: FleetPlan) -> list[str]:
    """Every error and violation as one line (for stderr): a stack's own, then each of the profiles' once."""
    lines = []
    for stack in plan.stacks:
        lines += [str(error) for error in stack.own_errors]
        lines += [f"{stack.file}: {violation.level} {violation}" for violation in stack.own_violations]
    lines += [shared_line(shared) for shared in (*plan.shared_errors(), *plan.shared_violations())]
    return lines + [f"warning: {warning}" for warning in plan.warnings] + [f"note: {note}" for note in plan.notes]


def to_json(plan: FleetPlan) -> dict[str, Any]:
    return {
        "ok": plan.ok,  # valid and compliant: exit code 0
        "valid": plan.valid,
        "compliant": plan.compliant,
        "warnings": plan.warnings,  # worth fixing, no error: a stack in no stage of fleet.yaml
        "notes": plan.notes,  # worth knowing, no error (a file `--source` skipped), each once
        # Findings written in profiles: each once, with the stacks it reaches (not repeated in stacks[].errors).
        "profiles": {
            "errors": [
                {"file": s.file, "path": s.finding.path, "message": s.finding.message, "stacks": list(s.stacks)}
                for s in plan.shared_errors()
            ],
            "violations": [
                {**_violation(s.finding, s.file), "stacks": list(s.stacks)} for s in plan.shared_violations()
            ],
        },
        "stacks": [
            {
                "stack": stack.stack,
                "file": stack.file,
                "ok": stack.ok,
                "valid": stack.valid,
                "compliant": stack.compliant,
                "policiesRun": stack.policies_run,  # false: its errors stop the program the rules check
                "errors": [{"file": e.file, "path": e.path, "message": e.message} for e in stack.own_errors],
                "violations": [_violation(v, stack.file_of(v)) for v in stack.violations],
                "resources": [
                    {
                        "type": r.type,
                        "name": r.name,
                        "urn": r.urn,
                        "parent": r.parent,
                        "read": r.read,
                        "inputs": r.inputs,
                        "secrets": r.secrets,
                        "options": r.options,
                        "destructiveOnChange": destructive_on_change(r, stack.resources),
                    }
                    for r in stack.resources
                ],
                "kustomizations": {
                    configuration: [{"name": s.name, "path": s.path, "dependsOn": list(s.depends_on)} for s in steps]
                    for configuration, steps in stack.graphs.items()
                },
                "refs": {name: {"ref": ref.ref, "file": ref.file} for name, ref in stack.refs.items()},
                # which resource declares each configuration, at which API, and why (README: Which resource)
                "fluxConfigurations": {
                    name: {
                        "api": choice.api,
                        "resource": choice.type,
                        "because": list(choice.because),
                        "adoptLiveConfiguration": choice.adopts,
                    }
                    for name, choice in stack.flux_resources.items()
                },
            }
            for stack in plan.stacks
        ],
    }


def _violation(violation: Violation, file: str) -> dict[str, Any]:
    v = violation
    return {
        "policy": v.policy,
        "level": v.level,
        "resource": v.resource,
        "path": v.path,
        "message": v.message,
        "file": file,
    }


def _tree(stack: StackPlan) -> Tree:
    mark = "[green]✔[/green]" if stack.ok else "[red]✗[/red]"
    root = Tree(f"{mark} [bold]{_safe(stack.stack)}[/bold]  {_safe(stack.file)}")
    if stack.resources:
        nodes: dict[str | None, Tree] = {None: root.add("[bold]resources[/bold]")}
        for resource in stack.resources:
            label = f"{_safe(resource.type)}  [cyan]{_safe(resource.name)}[/cyan]"
            if resource.read:
                label += "  [dim](adopted, read only)[/dim]"
            if resource.secrets:
                label += f"  [yellow]secret: {_safe(', '.join(resource.secrets))}[/yellow]"
            if warning := destructive_on_change(resource, stack.resources):
                label += f"  [red]{_safe(warning)}[/red]"
            nodes[resource.urn] = nodes.get(resource.parent, nodes[None]).add(label)
    for configuration, steps in stack.graphs.items():
        ref = stack.refs.get(configuration)
        source = f"  at {_safe(ref.ref)} [dim]({_safe(ref.file)})[/dim]" if ref else ""
        choice = stack.flux_resources.get(configuration)
        api = f"  [magenta]{_safe(choice.label)}[/magenta]" if choice else ""
        branch = root.add(
            f"[bold]flux configuration {_safe(configuration)}[/bold]{source}{api}  kustomizations in apply order"
        )
        for index, step in enumerate(steps, 1):
            after = f"  after {', '.join(step.depends_on)}" if step.depends_on else ""
            branch.add(f"{index}. [cyan]{_safe(step.name)}[/cyan]  {_safe(step.path or './')}{_safe(after)}")
    return root


FLUX_TYPES = frozenset(
    {
        "azure-native:kubernetesconfiguration:Extension",
        "azure-native:kubernetesconfiguration:FluxConfiguration",
        V2025_TYPE,  # fluxfleet's own Flux configuration, at API 2025-04-01
    }
)


def destructive_on_change(resource: RecordedResource, resources: list[RecordedResource]) -> str | None:
    """What a change to this resource would destroy, from the options the program registered it with: a property
    in `replaceOnChanges` replaces it (deleted first), and replacing Flux while a kustomization prunes deletes
    everything Flux applied on the cluster. `rollout` refuses such an update (refuseFluxReplacement)."""
    properties = resource.options.get("replaceOnChanges") or []
    if not properties:
        return None
    warning = f"replaced if {', '.join(properties)} change(s)"
    if resource.type == V2025_TYPE:
        # Its type is not azure-native's: a configuration moving between the two is a new resource under one name.
        warning += " or it moves to or from azure-native's resource (API 2023-05-01)"
    if resource.type in FLUX_TYPES and _prunes(resource, resources):
        warning += ": that deletes everything Flux applied (prune)"
    return warning


def _prunes(resource: RecordedResource, resources: list[RecordedResource]) -> bool:
    """Whether the configuration (or, for the extension, any configuration of the stack) prunes."""
    configurations = (
        [resource]
        if resource.type.endswith(":FluxConfiguration")
        else [r for r in resources if r.type.endswith(":FluxConfiguration")]
    )
    return any(
        isinstance(k, dict) and k.get("prune")
        for r in configurations
        for k in (r.inputs.get("kustomizations") or {}).values()
    )


def _safe(text: str) -> str:
    """Text from a stack file as the text report shows it: control characters escaped, then rich markup."""
    return escape(printable(text))


def to_text(plan: FleetPlan, color: bool = False, width: int = 120) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=color, no_color=not color, width=width, highlight=False)
    for stack in plan.stacks:
        console.print(_tree(stack))
        for error in stack.own_errors:  # one line each, never wrapped: people grep and copy them
            console.print(Text(f"  ✗ {error}", style="red"), soft_wrap=True)
        for violation in stack.own_violations:
            mandatory = violation.level == "mandatory"
            line = f"  {'✗' if mandatory else '!'} {violation.level} {printable(str(violation))}"
            console.print(Text(line, style="red" if mandatory else "yellow"), soft_wrap=True)
        if inherited := len(stack.errors) - len(stack.own_errors):
            console.print(Text(f"  ✗ {inherited} error(s) in its profiles, below", style="red"), soft_wrap=True)
        if not stack.policies_run:
            console.print(Text(f"  i {POLICIES_NOT_RUN}", style="dim"), soft_wrap=True)
        for command in pool_import_commands(stack):  # node pools that were inline in the cluster before
            line = f"  i a stack whose cluster had this pool inline imports it once before pulumi up: {command}"
            console.print(Text(printable(line), style="dim"), soft_wrap=True)
        for command in migration_commands(stack):  # configurations moving to API 2025-04-01
            line = f"  i adopting a live configuration: once, before pulumi up, forget the old resource: {command}"
            console.print(Text(printable(line), style="yellow"), soft_wrap=True)
    shared = [*plan.shared_errors(), *plan.shared_violations()]
    if shared:
        console.print("[bold]in profiles[/bold] (each once, with the stacks it reaches)")
    for finding in shared:
        mandatory = not isinstance(finding.finding, Violation) or finding.finding.level == "mandatory"
        line = f"  {'✗' if mandatory else '!'} {printable(shared_line(finding))}"
        console.print(Text(line, style="red" if mandatory else "yellow"), soft_wrap=True)
    for warning in plan.warnings:
        console.print(Text(f"  ! warning: {printable(warning)}", style="yellow"), soft_wrap=True)
    for note in plan.notes:
        console.print(Text(f"  i {printable(note)}", style="dim"), soft_wrap=True)
    invalid = sum(not stack.valid for stack in plan.stacks)
    violations = [v for stack in plan.stacks for v in stack.violations]
    mandatory = sum(v.level == "mandatory" for v in violations)
    console.print(
        f"{len(plan.stacks)} stack(s) planned, {invalid} invalid; "
        f"{mandatory} mandatory and {len(violations) - mandatory} advisory policy violation(s)"
    )
    return buffer.getvalue()


def _resource_row(resource: RecordedResource, depth: dict[str, int]) -> str:
    level = depth.get(resource.parent or "", -1) + 1
    depth[resource.urn] = level
    note = " (adopted)" if resource.read else ""
    secret = ", ".join(md.code(path) for path in resource.secrets)
    return f"| {'&nbsp;&nbsp;' * level}{md.code(resource.type)} | {md.text(resource.name)}{note} | {secret} |"


def to_markdown(plan: FleetPlan) -> str:
    lines = ["# fluxfleet plan", "", "| stack | file | result | resources |", "|---|---|---|---|"]
    for stack in plan.stacks:
        mandatory = sum(v.level == "mandatory" for v in stack.violations)
        result = f"❌ {len(stack.errors)} error(s)" if stack.errors else f"❌ {mandatory} mandatory violation(s)"
        if stack.ok:
            result = "✅ valid"
        lines.append(f"| {md.text(stack.stack)} | {md.code(stack.file)} | {result} | {len(stack.resources)} |")
    if shared := [*plan.shared_errors(), *plan.shared_violations()]:
        lines += ["", "## In profiles", "", "Each once, with the stacks it reaches.", ""]
        lines += [f"- {'⚠️' if _advisory(s) else '❌'} {md.text(shared_line(s))}" for s in shared]
    if plan.warnings:
        lines += ["", "## Warnings", ""] + [f"- ⚠️ {md.text(warning)}" for warning in plan.warnings]
    if plan.notes:
        lines += ["", "## Notes", ""] + [f"- ℹ️ {md.text(note)}" for note in plan.notes]
    for stack in plan.stacks:
        lines += ["", f"## {md.text(stack.stack)}", ""]
        lines += [f"- ❌ {md.code(e.path)}: {md.text(e.message)}" for e in stack.own_errors]
        if inherited := len(stack.errors) - len(stack.own_errors):
            lines.append(f"- ❌ {inherited} error(s) in its profiles (above)")
        if not stack.policies_run:
            lines.append(f"- ℹ️ {POLICIES_NOT_RUN}")
        if own := stack.own_violations:
            lines += ["| policy | level | resource | path | what to do |", "|---|---|---|---|---|"]
            lines += [
                f"| `{v.policy}` | {'❌' if v.level == 'mandatory' else '⚠️'} {v.level} | {md.text(v.resource)} "
                f"| {md.code(v.path or '-')} | {md.text(v.message)} |"
                for v in own
            ]
            lines.append("")
        if stack.resources:
            depth: dict[str, int] = {}
            lines += ["| resource | name | secret inputs |", "|---|---|---|"]
            lines += [_resource_row(resource, depth) for resource in stack.resources]
        for configuration, steps in stack.graphs.items():
            ref = stack.refs.get(configuration)
            at = f" at {md.code(ref.ref)} ({md.code(ref.file)})" if ref else ""
            choice = stack.flux_resources.get(configuration)
            at += f", {choice.label}" if choice else ""  # fluxfleet's own words
            lines += ["", f"Flux configuration {md.code(configuration)}{at}:", "", "```mermaid", "graph LR"]
            for step in steps:
                label = f"{md.mermaid_label(step.name)}<br/>{md.mermaid_label(step.path or './')}"
                lines.append(f'  {_node(configuration, step.name)}["{label}"]')
                lines += [
                    f"  {_node(configuration, dep)} --> {_node(configuration, step.name)}" for dep in step.depends_on
                ]
            lines.append("```")
    return "\n".join(lines) + "\n"


def _advisory(shared: Shared) -> bool:
    return isinstance(shared.finding, Violation) and shared.finding.level != "mandatory"


def _node(configuration: str, kustomization: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", f"{configuration}__{kustomization}")  # Mermaid ids: letters, digits, _
