"""Which stacks a change affects: two stacks directories (a base and a head) compared stack by stack, by what each
stack runs: its stack file, its effective config (its profiles merged in and its stage's pins, as `config` and `plan`
compute it), its stage in fleet.yaml, and the program every stack runs. A profile change that leaves a stack's
effective config as it was (a comment, a value the stack overrides) does not affect it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from modules.spec import FLEET_FILE, ProfileLibrary, SpecError, SpecIssue, bounded, load_fleet, read_stack_config
from modules.spec.errors import Loc, key_path
from modules.spec.config import read_config
from modules.spec.files import STACK_FILE, read_text, stack_files
from modules.spec.load import StackConfig

Change = Literal["new", "changed", "renamed", "deleted"]
KEYS_SHOWN = 5  # changed keys named in one reason; then how many more
STAGE_RULES = (
    "max_concurrency",
    "max_failures",
    "min_success",
    "after_stage_wait",
    "approval",
    "rollback",
    "windows",
)
RULE_KEYS = {
    "max_concurrency": "maxConcurrency",
    "max_failures": "maxFailures",
    "min_success": "minSuccess",
    "windows": "windows",
    "after_stage_wait": "afterStageWait",
    "approval": "approval",
    "rollback": "rollback",
}


@dataclass(frozen=True)
class Affected:
    stack: str
    change: Change
    file: str  # its stack file as reports name it (at base for a deleted stack)
    reasons: tuple[str, ...]
    renamed_from: str | None = None  # the stack it was, for a renamed one


Parsed = dict[tuple[str, str], Mapping[Any, Any]]  # (stack file, its text) -> its `config:` map


@dataclass
class Tree:
    """One side: its stacks directory (None: it has none), how reports name that directory, and what was read. The
    two sides share `parsed`: a stack file the change leaves alone is parsed once."""

    directory: Path | None
    display: str
    parsed: Parsed = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)  # stack -> its file
    library: ProfileLibrary | None = None
    _read: dict[tuple[str, bool], StackConfig | SpecError] = field(default_factory=dict)

    def file(self, name: str) -> str:
        return f"{self.display}/{self.files[name].name}"

    def text(self, name: str) -> bytes:
        return self.files[name].read_bytes()

    def config(self, name: str, *, pinned: bool = True) -> StackConfig:
        """A stack's effective config (`pinned`: with its stage's pins), read once; a SpecError when it cannot be."""
        if (name, pinned) not in self._read:
            try:
                self._read[name, pinned] = self._config(name, pinned)
            except SpecError as error:
                self._read[name, pinned] = error
        if isinstance(found := self._read[name, pinned], SpecError):
            raise SpecError(found.issues)
        return found

    def _config(self, name: str, pinned: bool) -> StackConfig:
        assert self.library is not None
        path, file = self.files[name], self.file(name)
        text = read_text(path, file)
        if (file, text) not in self.parsed:
            self.parsed[file, text] = read_config(path, file, "stack file", text=text)
        return read_stack_config(path, file, self.library, pinned=pinned, config=self.parsed[file, text])


def tree(directory: Path | None, display: str, *, head: bool, parsed: Parsed | None = None) -> Tree:
    """A side's stack files. At head, a directory whose files cannot be listed is invalid input (a SpecError)."""
    side = Tree(directory, display, {} if parsed is None else parsed)
    if directory is None:
        return side
    side.library = ProfileLibrary(directory, display)
    try:
        side.files = {_name(path): path for path in stack_files(directory)}
    except SpecError:
        if head:
            raise
        # at base, what can be read is read: a stack file with a bad name was fixed since
        side.files = {
            m["stack"]: directory / e.name for e in sorted(directory.iterdir()) if (m := STACK_FILE.match(e.name))
        }
    return side


def _name(path: Path) -> str:
    match = STACK_FILE.match(path.name)
    assert match is not None
    return match["stack"]


def affected(base: Tree, head: Tree, program: list[str]) -> list[Affected]:
    """The stacks `head` changes from `base`, sorted by name, each with why. `program`: the program's files that
    changed (every stack runs them). A SpecError with every problem of a stack of head that is affected and invalid,
    or of head's fleet.yaml."""
    reasons: dict[str, list[str]] = {}
    found: dict[str, Affected] = {}
    new = sorted(set(head.files) - set(base.files))
    gone = sorted(set(base.files) - set(head.files))
    renames = _renames(base, head, gone, new)
    for old, name in renames.items():
        why = [f"{base.file(old)} renamed to {head.file(name)}"]
        if base.text(old) != head.text(name):
            why.append(f"{head.file(name)} differs from {base.file(old)}")
        found[name] = Affected(name, "renamed", head.file(name), tuple(why), old)
    for name in new:
        if name not in renames.values():
            found[name] = Affected(name, "new", head.file(name), (f"{head.file(name)} is new",))
    for name in gone:
        if name not in renames:
            found[name] = Affected(name, "deleted", base.file(name), (f"{base.file(name)} is gone",))
    kept = sorted(set(base.files) & set(head.files))
    for name in kept:
        if base.text(name) != head.text(name):
            reasons.setdefault(name, []).append(f"{head.file(name)} changed")
    issues: list[SpecIssue] = []
    heads: dict[str, StackConfig] = {}
    for name in kept:
        why, config = _config_change(base, head, name, issues)
        if why:
            reasons.setdefault(name, []).extend(why)
        if config is not None:
            heads[name] = config
    for name, why in _stage_changes(base, head).items():
        if name in kept:
            reasons.setdefault(name, []).extend(why)
    if program:
        what = f"the program changed: {_listed(program)}"
        for name in kept:
            reasons.setdefault(name, []).append(what)
    for name, why in reasons.items():
        if why:
            found[name] = Affected(name, "changed", head.file(name), tuple(dict.fromkeys(why)))
    for name, item in sorted(found.items()):  # an affected stack of head must be valid: it is previewed
        if item.change == "deleted":
            continue
        try:
            (heads.get(name) or head.config(name)).spec()
        except SpecError as error:
            issues.extend(error.issues)
            continue
        if item.change == "changed" and (was := _invalid_at_base(base, name)):
            found[name] = Affected(name, "changed", item.file, (*item.reasons, was))
    if issues:
        raise SpecError(list(dict.fromkeys(issues)))
    return [found[name] for name in sorted(found)]


def _renames(base: Tree, head: Tree, gone: list[str], new: list[str]) -> dict[str, str]:
    """Deleted stack -> the new stack it became: the same file, else the same cluster (subscription, resource group
    and name, as Azure compares them: without case)."""
    renames: dict[str, str] = {}
    free = list(new)
    for old in gone:
        text, cluster = base.text(old), _cluster(base, old)
        same = [name for name in free if head.text(name) == text]
        same = same or [name for name in free if cluster is not None and _cluster(head, name) == cluster]
        if same:
            renames[old] = same[0]
            free.remove(same[0])
    return renames


def _cluster(side: Tree, name: str) -> tuple[str, ...] | None:
    """The cluster a stack names, as Azure knows it; None when it does not say (or cannot be read)."""
    try:
        cluster = side.config(name).raw.get("cluster")
    except SpecError:
        return None
    keys = ("subscriptionId", "resourceGroup", "name")
    values = [cluster.get(key) for key in keys] if isinstance(cluster, Mapping) else []
    if len(values) != len(keys) or not all(isinstance(value, str | None) for value in values) or None in values[1:]:
        return None
    return tuple(str(value or "").lower() for value in values)


def _config_change(base: Tree, head: Tree, name: str, issues: list[SpecIssue]) -> tuple[list[str], Any]:
    """Why a stack's effective config changed (nothing when it did not), and its effective config at head (None when
    it cannot be merged: its problems go into `issues` unless they are the same at base, on the same files)."""
    try:
        after = head.config(name)
    except SpecError as error:
        try:
            base.config(name)
        except SpecError as before:
            if before.issues == error.issues and base.text(name) == head.text(name):
                return [], None  # broken before and after alike: the change does not touch it
        issues.extend(error.issues)
        return [], None
    try:
        before = base.config(name)
    except SpecError as error:
        return [_invalid(error)], after
    changed = _differences(before.raw, after.raw)
    if not changed:
        return [], after
    by_file: dict[str, list[str]] = {}
    for loc in changed:
        written = after.origins.file_of(loc) if _has(after.raw, loc) else before.origins.file_of(loc)
        by_file.setdefault(written, []).append(key_path(loc))
    return [f"{file}: {_listed(keys)} changed" for file, keys in sorted(by_file.items())], after


def _listed(names: list[str]) -> str:
    """'a, b, c' in a reason: the first KEYS_SHOWN, then how many in all."""
    text = ", ".join(bounded(name, 300) for name in names[:KEYS_SHOWN])
    return text + (f", … ({len(names):,} in all)" if len(names) > KEYS_SHOWN else "")


def _invalid(error: SpecError) -> str:
    more = f" (and {len(error.issues) - 1} more)" if len(error.issues) > 1 else ""
    return f"invalid at base: {error.issues[0]}{more}"


def _invalid_at_base(base: Tree, name: str) -> str | None:
    try:
        base.config(name).spec()
    except SpecError as error:
        return _invalid(error)
    return None


def _has(raw: Any, loc: Loc) -> bool:
    for key in loc:
        if not isinstance(raw, Mapping) or key not in raw:
            return False
        raw = raw[key]
    return True


def _differences(old: Any, new: Any, loc: Loc = ()) -> list[Loc]:
    """The key paths where two merged configs differ: the deepest map key whose value differs (a list or a scalar is
    one value)."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        found: list[Loc] = []
        for key in sorted(set(old) | set(new), key=str):
            if key not in old or key not in new:
                found.append((*loc, key))
            else:
                found += _differences(old[key], new[key], (*loc, key))
        return found
    return [] if _same(old, new) else [loc]


def _same(old: Any, new: Any) -> bool:
    if isinstance(old, list) and isinstance(new, list):
        return len(old) == len(new) and all(_same(a, b) for a, b in zip(old, new, strict=True))
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        return not _differences(old, new)
    return type(old) is type(new) and old == new  # 1 is not 1.0 nor true: the spec reads them apart


# --------------------------------------------------------------------------------------------- fleet.yaml


@dataclass(frozen=True)
class _Place:
    """Where fleet.yaml puts a stack: its stage, the stage's rules and pins."""

    stage: str
    rules: Mapping[str, Any]
    pins: Mapping[str, str]


Places = tuple[dict[str, _Place], dict[str, Any]]  # stack -> its place; the fleet-wide rules


def _stage_changes(base: Tree, head: Tree) -> dict[str, list[str]]:
    """Stack of head -> why its place in fleet.yaml changed: its stage, its stage's rules or pins, the fleet-wide
    rules (the gate, the refusals). A SpecError when head's fleet.yaml is invalid."""
    after = _places(head)
    try:
        before = _places(base)
    except SpecError as error:
        why = f"{head.display}/{FLEET_FILE}: {_invalid(error)}"
        return {name: [why] for name in after[0]}
    fleet_file = f"{head.display}/{FLEET_FILE}"
    changes: dict[str, list[str]] = {}
    every = sorted(set(before[0]) | set(after[0]))
    if before[1] != after[1]:
        rules = [key for key in sorted(set(before[1]) | set(after[1])) if before[1].get(key) != after[1].get(key)]
        for name in every:
            changes.setdefault(name, []).append(f"{fleet_file}: {', '.join(rules)} changed")
    for name in every:
        was, now = before[0].get(name), after[0].get(name)
        why = changes.setdefault(name, [])
        if was is None and now is not None:
            why.append(f"{fleet_file}: joins stage {now.stage}")
        elif now is None and was is not None:
            why.append(f"{fleet_file}: leaves stage {was.stage} (now in no stage: never rolled out)")
        elif was is not None and now is not None:
            rules = [RULE_KEYS[key] for key in STAGE_RULES if was.rules[key] != now.rules[key]]
            if was.stage != now.stage:
                why.append(f"{fleet_file}: moves from stage {was.stage} to stage {now.stage}")
            elif rules:
                why.append(f"{fleet_file}: stage {now.stage}'s {', '.join(rules)} changed")
            for config in sorted(set(was.pins) | set(now.pins)):
                if was.pins.get(config) != now.pins.get(config):
                    pinned = f"pins {config} at {now.pins[config]}" if config in now.pins else f"unpins {config}"
                    since = f" (was {was.pins[config]})" if config in was.pins else ""
                    why.append(f"{fleet_file}: stage {now.stage} {pinned}{since}")
    return {name: why for name, why in changes.items() if why}


def _places(side: Tree) -> Places:
    if side.directory is None or not (side.directory / FLEET_FILE).exists() or side.library is None:
        return {}, {}
    library = side.library
    fleet = load_fleet(
        side.directory / FLEET_FILE,
        sorted(side.files),
        library.fleet_file,
        lambda name: side.config(name, pinned=False).profiles,
        lambda name: side.config(name, pinned=False).declared,
    )
    places = {
        name: _Place(
            stage.name,
            {rule: getattr(stage, rule) for rule in STAGE_RULES},
            {**{config: str(pin) for config, pin in stage.pins.items()}, **stage.platform_pins},
        )
        for stage in fleet.stages
        for name in stage.stacks
    }
    rules = {
        "gate": fleet.gate.model_dump(),
        "refuseClusterReplacement": fleet.refuse_cluster_replacement,
        "refuseFluxReplacement": fleet.refuse_flux_replacement,
    }
    return places, rules
