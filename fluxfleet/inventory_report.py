"""How `fluxfleet inventory` reports: text for a terminal, JSON for tools (shape in schemas/inventory.schema.json;
sorted and free of timings, so the same clusters and stacks give byte-identical JSON), Markdown for a CI job
summary. Every format names the subscriptions that could not be read, the stacks undecided (unchecked, unconfirmed)
with the reason, and what each pruned stack left in Pulumi."""

from __future__ import annotations

import io
import json
from typing import Any

from rich.console import Console
from rich.text import Text

from fluxfleet.azure.resource_graph import DeniedSubscription
from fluxfleet import markdown as md
from fluxfleet.inventory import Inventory, Moved, NewMember, StackCluster, Undecided
from fluxfleet.inventory_state import LeftState
from modules.spec import printable


def denied_line(denied: DeniedSubscription) -> str:
    return (
        f"subscription {denied.subscription_id} could not be read ({denied.reason}): give the identity the "
        f"Reader role on /subscriptions/{denied.subscription_id}"
    )


def _new_note(member: NewMember, inventory: Inventory) -> str | None:
    if member.problem:
        return member.problem
    notes = [f"{member.collision}: named {member.stack}"] if member.collision else []
    if member.file in inventory.written:
        notes.append("written")
    return "; ".join(notes) or None


# --------------------------------------------------------------------------------------------- JSON


def to_json(inventory: Inventory) -> dict[str, Any]:
    return {
        "ok": inventory.exit_code == 0,
        "exitCode": inventory.exit_code,
        "selection": inventory.selection,
        "subscriptions": list(inventory.subscriptions),
        "denied": [{"subscriptionId": d.subscription_id, "reason": d.reason} for d in inventory.denied],
        "summary": {
            "inStep": len(inventory.in_step),
            "new": len(inventory.new),
            "moved": len(inventory.moved),
            "gone": len(inventory.gone),
            "unchecked": len(inventory.unchecked),
            "unconfirmed": len(inventory.unconfirmed),
        },
        "new": [_new_json(member, inventory) for member in inventory.new],
        "moved": [_moved_json(moved) for moved in inventory.moved],
        "gone": [_gone_json(stack, inventory) for stack in inventory.gone],
        "unchecked": [_undecided_json(u) for u in inventory.unchecked],
        "unconfirmed": [_undecided_json(u) for u in inventory.unconfirmed],
        "heldBack": inventory.held_back,
        "errors": list(inventory.errors),
    }


def _new_json(member: NewMember, inventory: Inventory) -> dict[str, Any]:
    cluster = member.cluster
    return {
        "stack": member.stack,
        "file": member.file,
        "kind": cluster.kind,
        "name": cluster.name,
        "resourceGroup": cluster.resource_group,
        "subscriptionId": cluster.subscription_id,
        "location": cluster.location,
        "collision": member.collision,
        "problem": member.problem,
        "written": member.file in inventory.written,
    }


def _gone_json(stack: StackCluster, inventory: Inventory) -> dict[str, Any]:
    left = _left_state_of(stack, inventory)
    state = None
    if left is not None:
        state = {"remains": left.remains, "resources": list(left.resources), "command": left.command, "note": left.line}
    proposal = left.proposal if left is not None and stack.file in inventory.proposed else None
    return {**_stack_json(stack), "pruned": stack.file in inventory.pruned, "pulumiState": state, "proposal": proposal}


def _left_state_of(stack: StackCluster, inventory: Inventory) -> LeftState | None:
    if stack.file not in inventory.pruned and stack.file not in inventory.proposed:
        return None
    return next((left for left in inventory.left_state if left.stack == stack.stack), None)


def _undecided_json(undecided: Undecided) -> dict[str, Any]:
    stack = undecided.stack
    return {"stack": stack.stack, "file": stack.file, "reason": undecided.reason}


def _stack_json(stack: StackCluster) -> dict[str, Any]:
    return {
        "stack": stack.stack,
        "file": stack.file,
        "kind": stack.kind,
        "name": stack.name,
        "resourceGroup": stack.resource_group,
        "subscriptionId": stack.subscription_id,
    }


def _moved_json(moved: Moved) -> dict[str, Any]:
    cluster = moved.cluster
    return {
        **_stack_json(moved.stack),
        "to": {
            "name": cluster.name,
            "resourceGroup": cluster.resource_group,
            "subscriptionId": cluster.subscription_id,
            "location": cluster.location,
        },
    }


# --------------------------------------------------------------------------------------------- text


def _where(resource_group: str, subscription_id: str) -> str:
    return f"{resource_group} in {subscription_id}"


def _lines(inventory: Inventory) -> list[tuple[str, str, str]]:
    """(mark, style, line) for everything to read, each line escaped: names come from Azure and from files."""
    lines = []
    for denied in inventory.denied:
        lines.append(("!", "yellow", denied_line(denied)))
    for member in inventory.new:
        cluster = member.cluster
        note = _new_note(member, inventory)
        text = f"new: {cluster.kind} {cluster.name} ({_where(cluster.resource_group, cluster.subscription_id)})"
        text += f" → {member.file}" + (f" ({note})" if note else "")
        lines.append(("+", "green" if not member.problem else "red", text))
    for moved in inventory.moved:
        stack, cluster = moved.stack, moved.cluster
        text = f"moved: {stack.stack} ({stack.file}): {stack.kind} {stack.name} is no longer in "
        text += f"{_where(stack.resource_group, stack.subscription_id)} but in "
        text += f"{_where(cluster.resource_group, cluster.subscription_id)}: edit the stack file"
        lines.append(("~", "yellow", text))
    for stack in inventory.gone:
        pruned = " (pruned)" if stack.file in inventory.pruned else ""
        pruned = " (kept: its Pulumi stack still holds state)" if stack.file in inventory.proposed else pruned
        text = f"gone: {stack.stack} ({stack.file}): no {stack.kind} cluster {stack.name} in the subscriptions "
        lines.append(("-", "red", text + f"looked in, and ARM answers 404{pruned}"))
        left = _left_state_of(stack, inventory)
        if left is not None:
            lines.append(("!" if left.remains is not False else " ", "yellow", f"  {left.line}"))
    for label, undecided in _undecided(inventory):
        lines.append(("?", "yellow", f"{label}: {undecided.stack.stack} ({undecided.stack.file}): {undecided.reason}"))
    if inventory.held_back:
        lines.append(("!", "yellow", inventory.held_back))
    for error in inventory.errors:
        lines.append(("✗", "red", f"error: {error}"))
    return [(mark, style, printable(line)) for mark, style, line in lines]


def _undecided(inventory: Inventory) -> list[tuple[str, Undecided]]:
    return [*(("unchecked", u) for u in inventory.unchecked), *(("unconfirmed", u) for u in inventory.unconfirmed)]


def attention_lines(inventory: Inventory) -> list[str]:
    """What a person must act on, one line each, for stderr beside a JSON or Markdown report (escaped)."""
    lines = [denied_line(denied) for denied in inventory.denied]
    lines += [f"{label}: {u.stack.stack} ({u.stack.file}): {u.reason}" for label, u in _undecided(inventory)]
    lines += [left.line for left in inventory.left_state if left.remains is not False]
    lines += [line for line in (inventory.held_back, *inventory.errors) if line]
    return [printable(line) for line in lines]


def headline(inventory: Inventory) -> str:
    looked = f"{len(inventory.subscriptions)} subscription(s) looked in"
    if inventory.denied:
        looked += f", {len(inventory.denied)} could not be read"
    return (
        f"{len(inventory.in_step)} stack(s) in step, {len(inventory.new)} new, {len(inventory.moved)} moved, "
        f"{len(inventory.gone)} gone, {len(inventory.unchecked)} unchecked, {len(inventory.unconfirmed)} unconfirmed; "
        f"{looked}"
    )


def to_text(inventory: Inventory, color: bool = False, width: int = 120) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=color, no_color=not color, width=width, highlight=False)
    console.print(Text(f"fluxfleet inventory {printable(inventory.selection)}", style="bold"), soft_wrap=True)
    for mark, style, line in _lines(inventory):
        console.print(Text.assemble((mark, style), f" {line}"), soft_wrap=True)
    mark, style = ("✔", "green") if inventory.exit_code == 0 else ("✗", "red")
    requests = f" ({inventory.requests} Resource Graph request(s))" if inventory.requests else ""
    console.print(Text.assemble((mark, style), f" {headline(inventory)}{requests}"), soft_wrap=True)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------- Markdown


def to_markdown(inventory: Inventory) -> str:
    lines = ["# fluxfleet inventory", "", f"Selection: {md.code(inventory.selection)}", "", headline(inventory)]
    if inventory.denied:
        lines += ["", "## Subscriptions that could not be read", ""]
        lines += [f"- ❌ {md.text(denied_line(denied))}" for denied in inventory.denied]
    if inventory.new:
        lines += ["", "## New members", "", "| stack | kind | cluster | resource group | subscription | note |"]
        lines.append("|---|---|---|---|---|---|")
        for member in inventory.new:
            c = member.cluster
            cells = [member.stack, c.kind, c.name, c.resource_group, c.subscription_id, _new_note(member, inventory)]
            lines.append("| " + " | ".join(md.text(cell or "") for cell in cells) + " |")
    if inventory.moved:
        lines += ["", "## Moved", "", "| stack | kind | cluster | from | to |", "|---|---|---|---|---|"]
        for moved in inventory.moved:
            s, c = moved.stack, moved.cluster
            cells = [s.stack, s.kind, s.name, _where(s.resource_group, s.subscription_id)]
            cells.append(_where(c.resource_group, c.subscription_id))
            lines.append("| " + " | ".join(md.text(cell) for cell in cells) + " |")
    if inventory.gone:
        lines += ["", "## Gone", "", "| stack | kind | cluster | resource group | subscription | pruned |"]
        lines.append("|---|---|---|---|---|---|")
        for s in inventory.gone:
            pruned = "yes" if s.file in inventory.pruned else "no"
            cells = [s.stack, s.kind, s.name, s.resource_group, s.subscription_id, pruned]
            lines.append("| " + " | ".join(md.text(cell) for cell in cells) + " |")
    if inventory.left_state:
        lines += ["", "## Left in Pulumi by the gone stacks", ""]
        lines += [
            f"- {'⚠️' if left.remains is not False else '✅'} {md.text(left.line)}" for left in inventory.left_state
        ]
    for title, undecided in (("Unchecked", inventory.unchecked), ("Unconfirmed", inventory.unconfirmed)):
        if undecided:
            lines += ["", f"## {title}", ""]
            lines += [f"- {md.text(u.stack.stack)} ({md.text(u.stack.file)}): {md.text(u.reason)}" for u in undecided]
    if inventory.held_back or inventory.errors:
        lines += ["", "## Stack files not changed", ""]
        lines += [f"- ⚠️ {md.text(line)}" for line in [inventory.held_back or "", *inventory.errors] if line]
    return "\n".join(lines) + "\n"


def render(inventory: Inventory, fmt: str, color: bool = False) -> str:
    if fmt == "json":
        return json.dumps(to_json(inventory), indent=2) + "\n"
    if fmt == "markdown":
        return to_markdown(inventory)
    return to_text(inventory, color=color)
