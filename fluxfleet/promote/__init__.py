"""`fluxfleet promote CONFIG --to REF`: pin a Flux configuration's git ref for the next stage that does not run it yet
(or a named one), in fleet.yaml, whose git history is then the audit trail of every promotion.

A configuration goes through its stages only: those with a stack that declares it, in fleet.yaml's order.

Before anything is written:
- the configuration's stage before the one promoted must pin REF already (offline: --dry-run checks it too) and be
  healthy (its stacks' Flux configurations Compliant at that ref, read through the fleet reader): a revision goes
  stage by stage (`--force` skips both);
- with a local checkout of the repository (`--source URL=DIR`), REF must exist there and every kustomization path of
  the configuration, in every stack of the stage, must be a directory at REF.
The pin is written under fleet.yaml's writer lock, to the file as it is then (fluxfleet/fleet_file.py), keeping the
rest of it as written (ruamel's round trip); the order is checked again there.

`kubernetes` and `flux-extension` (the platform's versions) are promoted the same way, through the stages with an
AKS stack (kubernetes) or with any stack (flux-extension), the stage before running the version too; a Kubernetes
minor one at a time (check_versions, check_installed), an extension version along its upgrade path from the version
installed (check_installed) and, with a checkout, past the API-version scan (check_served_apis).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from fluxfleet.azure.fleet_graph import FleetReads
from fluxfleet.fleet_file import rewrite_fleet
from fluxfleet.runstate.store import this_process
from fluxfleet.status.build import fleet_status
from fluxfleet.status.model import Health
from fluxfleet import markdown as md
from modules.spec import Fleet, PinSpec, Stack, printable, read_text, repository_key, shown
from modules.spec.cluster import is_version
from modules.spec.fleet import (
    EXTENSION_PIN,
    KUBERNETES_PIN,
    PLATFORM_PINS,
    Stage,
    arc_skipped,
    check_platform_promotion,
    check_promotion,
    one_minor_problem,
    pin_in,
    stages_running,
    with_pin,
)

GIT_TIMEOUT = 60  # seconds for one git command on a local checkout


@dataclass
class Promotion:
    config: str  # a Flux configuration, or kubernetes / flux-extension (the platform's versions)
    pin: PinSpec | str  # a version for kubernetes / flux-extension
    stage: str | None  # the stage whose pin is written; None: every stage runs the ref already
    previous: str | None = None  # what the stage pinned before, if anything
    before: str | None = None  # the configuration's stage before it, whose pin and health decide
    fleet_text: str | None = None  # fleet.yaml with the pin
    unshared: str | None = None  # the stage's pins were shared with another stage, and are written out for it
    problems: list[str] = field(default_factory=list)  # why the promotion is refused
    notes: list[str] = field(default_factory=list)  # what it leaves alone: the Arc stacks a kubernetes pin skips

    @property
    def rollout(self) -> str:
        return f"fluxfleet rollout --stage {self.stage}"

    @property
    def pin_keys(self) -> dict[str, str]:
        """The pin as pin_in reads it from fleet.yaml."""
        return {"version": self.pin} if isinstance(self.pin, str) else self.pin.ref_keys


def declared_by(stacks: Mapping[str, Stack]) -> dict[str, tuple[str, ...]]:
    """Stack -> the Flux configurations it declares."""
    return {name: tuple(stack.spec.flux.configurations) for name, stack in stacks.items()}


def aks_stacks(stacks: Mapping[str, Stack]) -> set[str]:
    """The stacks whose cluster is an AKS one: the others' (Arc) Kubernetes version is not Azure's to set."""
    return {name for name, stack in stacks.items() if stack.spec.cluster.is_aks}


def _stage(fleet: Fleet, name: str | None) -> Stage:
    return next(stage for stage in fleet.stages if stage.name == name)


def stages_of(fleet: Fleet, config: str, stage: str | None, stacks: Mapping[str, Stack]) -> list[Stage]:
    """The stages a promotion of `config` goes through (a configuration's, or kubernetes' / flux-extension's)."""
    if config in PLATFORM_PINS:
        return check_platform_promotion(fleet, config, stage, aks_stacks(stacks))
    return check_promotion(fleet, config, stage, declared_by(stacks))


def plan_promotion(
    fleet: Fleet, fleet_path: Path, config: str, pin: PinSpec | str, stage: str | None, stacks: Mapping[str, Stack]
) -> Promotion:
    """Which stage gets the pin (of the stages that run the configuration, or the platform's version), and
    fleet.yaml's text with it. A SpecError for a stage or configuration that is not there, or a stage that does not
    run it."""
    stages = stages_of(fleet, config, stage, stacks)
    pending = [s for s in stages if s.pinned(config) != str(pin)]
    target = next((s for s in stages if s.name == stage), None) if stage else (pending[0] if pending else None)
    promotion = Promotion(config, pin, target.name if target else None)
    if target is None:
        return promotion
    index = stages.index(target)
    promotion.previous = target.pinned(config)
    promotion.before = stages[index - 1].name if index else None
    arc = set(stacks) - aks_stacks(stacks)
    if config == KUBERNETES_PIN and (note := arc_skipped(replace(target, kubernetes=str(pin)), arc)):
        promotion.notes.append(note)
    edit = with_pin(read_text(fleet_path, fleet.file), fleet.file, target.name, config, pin)
    promotion.fleet_text, promotion.unshared = edit.text, edit.unshared
    return promotion


def check_order(promotion: Promotion, fleet: Fleet) -> None:
    """Refuse (`problems`) a promotion past a stage of the configuration that does not pin REF yet: offline."""
    if promotion.before is None:
        return
    before = _stage(fleet, promotion.before)
    runs = before.pinned(promotion.config)
    if runs != str(promotion.pin):
        at = f"runs {runs}" if runs else "pins no version" if promotion.config in PLATFORM_PINS else "pins no ref"
        promotion.problems.append(
            f"stage {before.name} {at} for {promotion.config}, not {promotion.pin}: promote it there first"
        )


def check_health(
    promotion: Promotion,
    fleet: Fleet,
    stacks: Mapping[str, Stack],
    reads: FleetReads,
    default_subscription: str | None,
) -> None:
    """Refuse (`problems`) a promotion past a stage whose stacks are not healthy (read through Azure)."""
    if promotion.before is None:
        return
    before = _stage(fleet, promotion.before)
    members = [stacks[name] for name in before.stacks if name in stacks]
    status = fleet_status(members, reads, lambda name: before.name, default_subscription)
    kubernetes = promotion.config == KUBERNETES_PIN
    for stack in status.stacks:
        if stack.health is not Health.healthy:
            promotion.problems.append(f"stage {before.name}: {stack.stack} is {stack.health.value}: {stack.summary}")
        elif promotion.config in PLATFORM_PINS and (stack.kind == "aks" or not kubernetes):
            # the version pinned there must run there (provisioned: not Upgrading any more) before it goes on
            version = stack.kubernetes_version if kubernetes else stack.extension_version
            settled = stack.cluster_state if kubernetes else stack.extension_state
            if not is_version(version, str(promotion.pin)) or settled != "Succeeded":
                runs = f"runs {promotion.config} {version or 'an unknown version'} ({settled})"
                promotion.problems.append(
                    f"stage {before.name}: {stack.stack} {runs}, not {promotion.pin}: fluxfleet rollout --stage "
                    f"{before.name} first"
                )
    promotion.problems += [f"stage {before.name}: {line}" for line in (*status.denied, *status.errors)]


def write_promotion(promotion: Promotion, fleet_path: Path, display: str, *, ordered: bool) -> None:
    """The pin written to fleet.yaml as it is now, under its writer lock; with `ordered`, only while the stage before
    still pins REF (a rollback or another promotion may have moved it since it was checked): else nothing is written
    and `problems` says why. `unshared` says again whether the stage's pins had to be written out."""
    stage = promotion.stage
    assert stage is not None

    def edit(text: str) -> str | None:
        if ordered and promotion.before is not None:
            now = pin_in(fleet_path, display, promotion.before, promotion.config)
            if now != promotion.pin_keys:
                promotion.problems.append(
                    f"stage {promotion.before}'s pin for {promotion.config} changed while promoting: run it again"
                )
                return None
        result = with_pin(text, display, stage, promotion.config, promotion.pin)
        promotion.unshared = result.unshared
        return result.text

    rewrite_fleet(fleet_path, display, edit, this_process(f"promote {promotion.config}"))


def check_versions(promotion: Promotion, fleet: Fleet, stacks: Mapping[str, Stack]) -> None:
    """Offline, whatever --force says (AKS would refuse the update): a kubernetes pin moves each AKS control plane of
    the stage one minor at most, never back, from the version its spec runs now (its own, its profile's or the
    stage's pin), and keeps each pool with its own orchestratorVersion within the skew AKS allows."""
    from modules.spec.cluster import pool_skew_problem

    if promotion.config != KUBERNETES_PIN:
        return
    target = _stage(fleet, promotion.stage)
    version = str(promotion.pin)
    for name in target.stacks:
        cluster = stacks[name].spec.cluster if name in stacks else None
        if cluster is None or not cluster.is_aks:
            continue
        if problem := one_minor_problem(name, cluster.kubernetes_version, version):
            promotion.problems.append(f"stage {target.name}: {problem}")
        for pool in cluster.node_pools or ():
            if problem := pool_skew_problem(pool.orchestrator_version, version):
                promotion.problems.append(f"stage {target.name}: {name}: node pool {pool.name}: {problem}")


def check_installed(
    promotion: Promotion,
    fleet: Fleet,
    stacks: Mapping[str, Stack],
    reads: FleetReads,
    default_subscription: str | None,
) -> None:
    """Through Azure, the versions the promoted stage's clusters run: a kubernetes pin one minor at most from each
    AKS control plane as AKS reports it; a flux-extension pin that skips no hop the upgrade path requires from the
    version installed (modules/flux_extension_versions.py: 1.23.0 needs 1.21.0 or later first)."""
    from modules.flux_extension_versions import skipped_hop

    if promotion.config not in PLATFORM_PINS:
        return
    target = _stage(fleet, promotion.stage)
    aks_only = promotion.config == KUBERNETES_PIN  # an Arc cluster's version is its own: not read for it
    members = [stacks[n] for n in target.stacks if n in stacks and (stacks[n].spec.cluster.is_aks or not aks_only)]
    status = fleet_status(members, reads, lambda name: target.name, default_subscription)
    version = str(promotion.pin)
    for stack in status.stacks:
        if not stack.read:
            promotion.problems.append(f"stage {target.name}: {stack.stack}: not read: {stack.summary}")
        elif promotion.config == KUBERNETES_PIN and stack.kind == "aks":
            if problem := one_minor_problem(stack.stack, stack.kubernetes_version, version):
                promotion.problems.append(f"stage {target.name}: {problem} (as AKS reports it)")
        elif promotion.config == EXTENSION_PIN and (problem := skipped_hop(stack.extension_version, version)):
            promotion.problems.append(f"stage {target.name}: {stack.stack}: {problem}")
    promotion.problems += [f"stage {target.name}: {line}" for line in (*status.denied, *status.errors)]


def check_served_apis(
    promotion: Promotion, fleet: Fleet, stacks: Mapping[str, Stack], checkouts: Mapping[str, Path]
) -> None:
    """A flux-extension pin, with local checkouts of the stage's repositories (`--source`): no Flux object under a
    kustomization path, at the ref each stack runs, is on an API version the target release no longer serves
    (fluxfleet/plan/api_scan.py, as `plan --source` reads them)."""
    from fluxfleet.plan.api_scan import removed_api_issues
    from fluxfleet.plan.checkout import revision, tree

    if promotion.config != EXTENSION_PIN:
        return
    target = _stage(fleet, promotion.stage)
    roots = {repository_key(url): Path(directory) for url, directory in checkouts.items()}
    seen: set[str] = set()
    for name in target.stacks:
        if name not in stacks:
            continue
        stack = with_extension(stacks[name], str(promotion.pin))
        for config, configuration in stack.spec.flux.configurations.items():
            root = roots.get(repository_key(configuration.git.url)) if configuration.git else None
            if configuration.git is None or root is None:
                continue
            at = revision(root, configuration.git)
            if at.missing:
                continue  # `plan --source` says so: not this promotion's to judge
            found, _ = removed_api_issues(stack, config, tree(root, at.commit), f"{root} at {configuration.git.ref}")
            for issue in found:
                if issue.message not in seen:
                    seen.add(issue.message)
                    promotion.problems.append(f"stage {target.name}: {config}: {issue.message}")


def with_extension(stack: Stack, version: str) -> Stack:
    """The stack as it would run the extension `version` (pinned, so no minor auto-upgrade)."""
    spec = stack.spec
    extension = spec.flux.extension.model_copy(update={"version": version, "auto_upgrade_minor_version": False})
    flux = spec.flux.model_copy(update={"extension": extension})
    return replace(stack, spec=spec.model_copy(update={"flux": flux}))


def check_source(
    promotion: Promotion, fleet: Fleet, stacks: Mapping[str, Stack], checkouts: Mapping[str, Path]
) -> None:
    """With a local checkout of the configuration's repository: REF exists there, and every kustomization path of the
    configuration (in each stack of the promoted stage) is a directory at REF. A flux-extension pin: the API-version
    scan (check_served_apis); a kubernetes pin: nothing to check there."""
    if promotion.config in PLATFORM_PINS:
        check_served_apis(promotion, fleet, stacks, checkouts)
        return
    assert isinstance(promotion.pin, PinSpec)
    target = _stage(fleet, promotion.stage)
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
    state: str  # why it does not count as running the pin: Non-Compliant, Pending, missing, ...


@dataclass(frozen=True)
class Unread:
    stack: str
    reason: str  # why its cluster could not be read: a denied subscription, a failed read


@dataclass(frozen=True)
class StageRevision:
    stage: str
    pinned: str | None  # the stage's pin for the configuration; None: the stacks' own refs
    stacks: int  # stacks of the stage that declare the configuration
    running: int  # of them, Compliant at their pinned ref
    lagging: tuple[Lagging, ...]  # read, and not running it
    unread: tuple[Unread, ...] = ()  # not read: whether they run it is not known


def promotion_status(
    config: str, fleet: Fleet, stacks: Mapping[str, Stack], reads: FleetReads, default_subscription: str | None
) -> list[StageRevision]:
    """Per stage that runs `config`, the ref it pins and how many of its stacks run it (one fleet read for all)."""
    stage_of = {name: stage.name for stage in fleet.stages for name in stage.stacks}
    members = [stack for name, stack in stacks.items() if name in stage_of and config in stack.spec.flux.configurations]
    status = {s.stack: s for s in fleet_status(members, reads, stage_of.get, default_subscription).stacks}
    result = []
    for stage in stages_running(fleet, config, declared_by(stacks)):
        lagging, unread, count = [], [], 0
        for name in stage.stacks:
            if name not in status:
                continue
            count += 1
            stack = status[name]
            if stack.health is Health.unread and not stack.configurations:  # the cluster was not read
                unread.append(Unread(name, stack.summary))
                continue
            found = next((c for c in stack.configurations if c.name == config), None)
            if found is None or found.health is not Health.healthy:
                state = found.compliance if found else stack.summary
                lagging.append(Lagging(name, found.revision if found else None, state))
        pinned = stage.pins.get(config)
        running = count - len(lagging) - len(unread)
        result.append(
            StageRevision(stage.name, str(pinned) if pinned else None, count, running, tuple(lagging), tuple(unread))
        )
    return result


def platform_status(
    name: str, fleet: Fleet, stacks: Mapping[str, Stack], reads: FleetReads, default_subscription: str | None
) -> list[StageRevision]:
    """`promote kubernetes|flux-extension --status`: per stage that runs it, the version it pins and how many of its
    stacks run it (kubernetes: AKS stacks only, provisioned; an Arc cluster's version is its own), one fleet read."""
    aks = aks_stacks(stacks)
    stages = check_platform_promotion(fleet, name, None, aks)
    stage_of = {member: stage.name for stage in stages for member in stage.stacks}
    kubernetes = name == KUBERNETES_PIN
    members = [stack for n, stack in stacks.items() if n in stage_of and (not kubernetes or n in aks)]
    status = {s.stack: s for s in fleet_status(members, reads, stage_of.get, default_subscription).stacks}
    result = []
    for stage in stages:
        pinned = stage.pinned(name)
        lagging, unread, count = [], [], 0
        for member in stage.stacks:
            if member not in status:
                continue
            count += 1
            stack = status[member]
            if not stack.read:
                unread.append(Unread(member, stack.summary))
                continue
            version = stack.kubernetes_version if kubernetes else stack.extension_version
            settled = stack.cluster_state if kubernetes else stack.extension_state
            if pinned is not None and not is_version(version, pinned):
                lagging.append(Lagging(member, version, f"runs {version or 'no known version'}"))
            elif settled != "Succeeded":
                lagging.append(Lagging(member, version, settled or "not installed"))
        running = count - len(lagging) - len(unread)
        result.append(StageRevision(stage.name, pinned, count, running, tuple(lagging), tuple(unread)))
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
                    "unread": [{"stack": x.stack, "reason": x.reason} for x in s.unread],
                }
                for s in stages
            ],
        }
        return json.dumps(document, indent=2) + "\n"
    if fmt == "markdown":
        lines = [
            f"# {md.text(config)}: revisions by stage",
            "",
            "| stage | pinned | running | lagging | unread |",
            "|---|---|---|---|---|",
        ]
        for s in stages:
            behind = ", ".join(f"{x.stack} ({x.state} @ {x.revision or '-'})" for x in s.lagging) or "-"
            unread = ", ".join(f"{x.stack} ({x.reason})" for x in s.unread) or "-"
            cells = [s.stage, s.pinned or "-", f"{s.running}/{s.stacks}", behind, unread]
            lines.append("| " + " | ".join(md.text(cell) for cell in cells) + " |")
        return "\n".join(lines) + "\n"
    lines = []
    for s in stages:
        lines.append(f"{s.stage}: {s.pinned or 'not pinned'}: {s.running}/{s.stacks} running it")
        lines += [f"  behind: {x.stack}: {x.state} @ {x.revision or '-'}" for x in s.lagging]
        lines += [f"  unread: {x.stack}: {x.reason}" for x in s.unread]
    return "\n".join(printable(line) for line in lines) + "\n"  # one line each, whatever Azure said
