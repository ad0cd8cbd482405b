"""Renders a fleet plan as text (a rich tree), JSON (for tools), Markdown (for a CI job summary) or SARIF (for
code scanning)."""

from __future__ import annotations

import io
import json
from typing import Any, Literal

from rich.console import Console
from rich.markup import escape
from rich.text import Text
from rich.tree import Tree

from fluxfleet.mock_engine import RecordedResource
from fluxfleet.plan import FleetPlan, StackPlan
from fluxfleet.sarif import to_sarif

Format = Literal["text", "json", "markdown", "sarif"]


def render(plan: FleetPlan, fmt: Format, color: bool = False, width: int = 120) -> str:
    if fmt == "json":
        return json.dumps(to_json(plan), indent=2) + "\n"
    if fmt == "sarif":
        return json.dumps(to_sarif(plan), indent=2) + "\n"
    if fmt == "markdown":
        return to_markdown(plan)
    return to_text(plan, color=color, width=width)


def to_json(plan: FleetPlan) -> dict[str, Any]:
    return {
        "ok": plan.ok,
        "compliant": all(stack.compliant for stack in plan.stacks),
        "stacks": [
            {
                "stack": stack.stack,
                "file": stack.file,
                "ok": stack.ok,
                "errors": [{"file": e.file, "path": e.path, "message": e.message} for e in stack.errors],
                "violations": [
                    {"policy": v.policy, "level": v.level, "resource": v.resource, "path": v.path, "message": v.message}
                    for v in stack.violations
                ],
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
                    }
                    for r in stack.resources
                ],
                "kustomizations": {
                    configuration: [{"name": s.name, "path": s.path, "dependsOn": list(s.depends_on)} for s in steps]
                    for configuration, steps in stack.graphs.items()
                },
            }
            for stack in plan.stacks
        ],
    }


def _tree(stack: StackPlan) -> Tree:
    mark = "[green]✔[/green]" if stack.ok else "[red]✗[/red]"
    root = Tree(f"{mark} [bold]{escape(stack.stack)}[/bold]  {escape(stack.file)}")
    if stack.resources:
        nodes: dict[str | None, Tree] = {None: root.add("[bold]resources[/bold]")}
        for resource in stack.resources:
            label = f"{escape(resource.type)}  [cyan]{escape(resource.name)}[/cyan]"
            if resource.read:
                label += "  [dim](adopted, read only)[/dim]"
            if resource.secrets:
                label += f"  [yellow]secret: {escape(', '.join(resource.secrets))}[/yellow]"
            nodes[resource.urn] = nodes.get(resource.parent, nodes[None]).add(label)
    for configuration, steps in stack.graphs.items():
        branch = root.add(f"[bold]flux configuration {escape(configuration)}[/bold]  kustomizations in apply order")
        for index, step in enumerate(steps, 1):
            after = f"  after {', '.join(step.depends_on)}" if step.depends_on else ""
            branch.add(f"{index}. [cyan]{escape(step.name)}[/cyan]  {escape(step.path or './')}{escape(after)}")
    return root


def to_text(plan: FleetPlan, color: bool = False, width: int = 120) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=color, no_color=not color, width=width, highlight=False)
    for stack in plan.stacks:
        console.print(_tree(stack))
        for error in stack.errors:  # one line each, never wrapped: people grep and copy them
            console.print(Text(f"  ✗ {error}", style="red"), soft_wrap=True)
        for violation in stack.violations:
            mandatory = violation.level == "mandatory"
            line = f"  {'✗' if mandatory else '!'} {violation.level} {violation}"
            console.print(Text(line, style="red" if mandatory else "yellow"), soft_wrap=True)
    invalid = sum(not stack.ok for stack in plan.stacks)
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
    secret = ", ".join(f"`{path}`" for path in resource.secrets)
    return f"| {'&nbsp;&nbsp;' * level}`{resource.type}` | {resource.name}{note} | {secret} |"


def to_markdown(plan: FleetPlan) -> str:
    lines = ["# fluxfleet plan", "", "| stack | file | result | resources |", "|---|---|---|---|"]
    for stack in plan.stacks:
        mandatory = sum(v.level == "mandatory" for v in stack.violations)
        result = f"❌ {len(stack.errors)} error(s)" if stack.errors else f"❌ {mandatory} mandatory violation(s)"
        if stack.ok and stack.compliant:
            result = "✅ valid"
        lines.append(f"| {stack.stack} | `{stack.file}` | {result} | {len(stack.resources)} |")
    for stack in plan.stacks:
        lines += ["", f"## {stack.stack}", ""]
        lines += [f"- ❌ `{e.path}`: {e.message}" for e in stack.errors]
        if stack.violations:
            lines += ["| policy | level | resource | path | what to do |", "|---|---|---|---|---|"]
            lines += [
                f"| `{v.policy}` | {'❌' if v.level == 'mandatory' else '⚠️'} {v.level} | {v.resource} "
                f"| `{v.path or '-'}` | {_cell(v.message)} |"
                for v in stack.violations
            ]
            lines.append("")
        if stack.resources:
            depth: dict[str, int] = {}
            lines += ["| resource | name | secret inputs |", "|---|---|---|"]
            lines += [_resource_row(resource, depth) for resource in stack.resources]
        for configuration, steps in stack.graphs.items():
            lines += ["", f"Flux configuration `{configuration}`:", "", "```mermaid", "graph LR"]
            for step in steps:
                lines.append(f'  {_node(configuration, step.name)}["{step.name}<br/>{step.path or "./"}"]')
                lines += [
                    f"  {_node(configuration, dep)} --> {_node(configuration, step.name)}" for dep in step.depends_on
                ]
            lines.append("```")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _node(configuration: str, kustomization: str) -> str:
    return f"{configuration}__{kustomization}".replace("-", "_")  # Mermaid ids: no hyphens
