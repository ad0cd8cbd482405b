"""`fluxfleet promote CONFIG --to REF`: pin a Flux configuration's git ref for the next stage that does not run it yet
(or a named one), in fleet.yaml, whose git history is then the audit trail of every promotion.

Before anything is written:
- the stage before the one promoted must be healthy (its stacks' Flux configurations Compliant at the ref it pins,
  read through the fleet reader) and must run REF already: a revision goes stage by stage (`--force` skips both);
- with a local checkout of the repository (`--source URL=DIR`), REF must exist there and every kustomization path of
  the configuration, in every stack of the stage, must be a directory at REF.
The edit keeps fleet.yaml as written but for the pin (ruamel's round trip).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fluxfleet.azure.fleet_graph import FleetReads
from fluxfleet.status.build import fleet_status
from fluxfleet.status.model import Health
from fluxfleet import markdown as md
from modules.spec import Fleet, PinSpec, Stack, printable, repository_key, shown
from modules.spec.fleet import check_promotion, with_pin

GIT_TIMEOUT = 60  # seconds for one git command on a local checkout


@dataclass
class Promotion:
    config: str
    pin: PinSpec
    stage: str | None  # the stage whose pin is written; None: every stage runs the ref already
    previous: str | None = None  # what the stage pinned before, if anything
    before: str | None = None  # the stage before it, whose health decides
    fleet_text: str | None = None  # fleet.yaml with the pin
    problems: list[str] = field(default_factory=list)  # why the promotion is refused

    @property
    def rollout(self) -> str:
        return f"fluxfleet rollout --stage {self.stage}"


def plan_promotion(
    fleet: Fleet, fleet_path: Path, config: str, pin: PinSpec, stage: str | None, stacks: Mapping[str, Stack]
) -> Promotion:
    """Which stage gets the pin, and fleet.yaml's text with it. A SpecError for a stage or configuration that is not
    there."""
    check_promotion(fleet, config, stage, {name for s in stacks.values() for name in s.spec.flux.configurations})
    pending = [s for s in fleet.stages if str(s.pins.get(config)) != str(pin)]
    target = next((s for s in fleet.stages if s.name == stage), None) if stage else (pending[0] if pending else None)
    promotion = Promotion(config, pin, target.name if target else None)
    if target is None:
        return promotion
    index = fleet.stages.index(target)
    promotion.previous = str(target.pins[config]) if config in target.pins else None
    promotion.before = fleet.stages[index - 1].name if index else None
    promotion.fleet_text = with_pin(fleet_path, fleet.file, target.name, config, pin)
    return promotion


def check_order_and_health(
    promotion: Promotion,
    fleet: Fleet,
    stacks: Mapping[str, Stack],
    reads: FleetReads,
    default_subscription: str | None,
) -> None:
    """Refuse (`problems`) a promotion past a stage that does not run REF yet, or whose stacks are not healthy."""
    if promotion.before is None:
        return
    before = next(s for s in fleet.stages if s.name == promotion.before)
    runs = before.pins.get(promotion.config)
    if str(runs) != str(promotion.pin):
        at = f"runs {runs}" if runs else "pins no ref"
        promotion.problems.append(
            f"stage {before.name} {at} for {promotion.config}, not {promotion.pin}: promote it there first"
        )
        return
    members = [stacks[name] for name in before.stacks if name in stacks]
    status = fleet_status(members, reads, lambda name: before.name, default_subscription)
    for stack in status.stacks:
        if stack.health is not Health.healthy:
            promotion.problems.append(f"stage {before.name}: {stack.stack} is {stack.health.value}: {stack.summary}")
    promotion.problems += [f"stage {before.name}: {line}" for line in (*status.denied, *status.errors)]


def check_source(
    promotion: Promotion, fleet: Fleet, stacks: Mapping[str, Stack], checkouts: Mapping[str, Path]
) -> None:
    """With a local checkout of the configuration's repository: REF exists there, and every kustomization path of the
    configuration (in each stack of the promoted stage) is a directory at REF."""
    target = next(s for s in fleet.stages if s.name == promotion.stage)
    roots = {repository_key(url): Path(directory) for url, directory in checkouts.items()}
    rev = promotion.pin.commit or f"refs/tags/{promotion.pin.tag}"
    checked: set[tuple[Path, str]] = set()  # (checkout, path): each looked up once, however many stacks share it
    for name in target.stacks:
        configuration = stacks[name].spec.flux.configurations.get(promotion.config) if name in stacks else None
        if configuration is None or configuration.git is None:
            continue
        root = roots.get(repository_key(configuration.git.url))
        if root is None:
            continue
        if (
            not any(seen == root for seen, _ in checked)
            and _git(root, "rev-parse", "--verify", f"{rev}^{{commit}}") is None
        ):
            promotion.problems.append(f"{promotion.pin} is not in {root}: fetch it (git fetch --tags), or push it")
            return
        for kustomization_name, kustomization in configuration.kustomizations.items():
            path = os.path.normpath(kustomization.path or ".")
            if (root, path) in checked:
                continue
            checked.add((root, path))
            kind = "tree" if path == "." else _git(root, "cat-file", "-t", f"{rev}:{path}")
            if kind != "tree":
                promotion.problems.append(
                    f"{name}: kustomization {kustomization_name}: {shown(kustomization.path or './')} is not a "
                    f"directory at {promotion.pin} (checked in {root})"
                )


def _git(root: Path, *args: str) -> str | None:
    """A git command's output in `root`, or None when it fails (an unknown ref, a missing path, no repository)."""
    try:
        result = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=GIT_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


# --------------------------------------------------------------------------------------------- promote --status


@dataclass(frozen=True)
class Lagging:
    stack: str
    revision: str | None  # what it runs, as Azure reports it
    state: str  # why it does not count as running the pin: Non-Compliant, Pending, unknown, ...


@dataclass(frozen=True)
class StageRevision:
    stage: str
    pinned: str | None  # the stage's pin for the configuration; None: the stacks' own refs
    stacks: int  # stacks of the stage that declare the configuration
    running: int  # of them, Compliant at their pinned ref
    lagging: tuple[Lagging, ...]


def promotion_status(
    config: str, fleet: Fleet, stacks: Mapping[str, Stack], reads: FleetReads, default_subscription: str | None
) -> list[StageRevision]:
    """Per stage, the ref it pins for `config` and how many of its stacks run it (one fleet read for all)."""
    stage_of = {name: stage.name for stage in fleet.stages for name in stage.stacks}
    members = [stack for name, stack in stacks.items() if name in stage_of and config in stack.spec.flux.configurations]
    status = {s.stack: s for s in fleet_status(members, reads, stage_of.get, default_subscription).stacks}
    result = []
    for stage in fleet.stages:
        lagging, count = [], 0
        for name in stage.stacks:
            if name not in status:
                continue
            count += 1
            found = next((c for c in status[name].configurations if c.name == config), None)
            if found is None or found.health is not Health.healthy:
                state = found.compliance if found else status[name].summary
                lagging.append(Lagging(name, found.revision if found else None, state))
        pinned = stage.pins.get(config)
        result.append(
            StageRevision(stage.name, str(pinned) if pinned else None, count, count - len(lagging), tuple(lagging))
        )
    return result


def render_status(config: str, stages: list[StageRevision], fmt: str) -> str:
    if fmt == "json":
        import json

        document = {
            "config": config,
            "stages": [
                {
                    "stage": s.stage,
                    "pinned": s.pinned,
                    "stacks": s.stacks,
                    "running": s.running,
                    "lagging": [{"stack": x.stack, "revision": x.revision, "state": x.state} for x in s.lagging],
                }
                for s in stages
            ],
        }
        return json.dumps(document, indent=2) + "\n"
    if fmt == "markdown":
        lines = [f"# {md.text(config)}: revisions by stage", ""]
        lines += ["| stage | pinned | running | lagging |", "|---|---|---|---|"]
        for s in stages:
            behind = ", ".join(f"{x.stack} ({x.state} @ {x.revision or '-'})" for x in s.lagging) or "-"
            cells = [s.stage, s.pinned or "-", f"{s.running}/{s.stacks}", behind]
            lines.append("| " + " | ".join(md.text(cell) for cell in cells) + " |")
        return "\n".join(lines) + "\n"
    lines = []
    for s in stages:
        lines.append(f"{s.stage}: {s.pinned or 'not pinned'}: {s.running}/{s.stacks} running it")
        lines += [f"  behind: {x.stack}: {x.state} @ {x.revision or '-'}" for x in s.lagging]
    return printable("\n".join(lines), lines=True) + "\n"
