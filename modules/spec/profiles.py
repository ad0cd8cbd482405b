"""Profiles: config that many stacks share, written once under `<stacks>/profiles/<name>.yaml`.

A profile has the shape of a stack file (`config:` holding `fluxfleet:` keys, and nothing else). A stack file names
the profiles it uses, in order (`fluxfleet:profiles: [base, edge-store]`); a profile may name profiles too, which
come before it. The effective config is the profiles merged in that order, then the stack file: maps merge key by
key; lists, scalars and Pulumi `secure:` values replace whole (merged, a secure value would lose its marker and its
ciphertext would read as plain config); and `null` removes an inherited key. `Origins` records which file wrote each
value.

A profile is read and checked once per process however many stacks use it (`ProfileLibrary`), and its problems are
reported against the profile itself.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modules.spec.config import read_config
from modules.spec.errors import NAMESPACE, Loc, SpecError, SpecIssue, bounded, is_pulumi_secure, key_path, listed, shown
from modules.spec.origins import Origins

PROFILES_DIR = "profiles"  # beside the stack files
PROFILES_KEY = "profiles"  # fluxfleet:profiles
FLEET_FILE = "fleet.yaml"  # beside the stack files: its stages may pin refs
PROFILE_DEPTH_MAX = 16  # profiles naming profiles: far beyond any real fleet, and no recursion runs away
# A profile's name is its file's name: no path separators, no leading dot (`..`), and a valid key in messages.
PROFILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
PROFILE_NAME_RULE = "letters, digits, '-', '_' and '.', starting with a letter or digit, at most 100 characters"
SECURE_IN_PROFILE = (
    "a Pulumi secret is encrypted for one stack and cannot be shared in a profile: use a Key Vault reference "
    "{keyVault: NAME, secret: NAME}, or set the secret in each stack file"
)


@dataclass(frozen=True)
class Profile:
    name: str
    file: str  # as reports name it
    uses: tuple[str, ...]  # the profiles it names, in order
    raw: dict[str, Any]  # its fluxfleet: keys by name, without `profiles`


class ProfileLibrary:
    """The profiles of one stacks directory. `display` is how reports name that directory (`stacks`)."""

    def __init__(self, directory: Path, display: str | None = None):
        self.stacks_dir = directory
        self.directory = directory / PROFILES_DIR
        self.display = str(Path(display if display is not None else str(directory)) / PROFILES_DIR)
        self.fleet_file = str(Path(self.display).parent / FLEET_FILE)  # as reports name it
        self._read: dict[str, Profile | SpecError] = {}
        self._pins: dict[str, Any] | SpecError | None = None  # stack -> the Stage that pins something for it

    def pins_of(self, stack: str) -> Mapping[str, Any]:
        """{configuration: PinSpec} of the stage `stack` is in, from the fleet.yaml beside the stack files: {} without
        one, or when its stages pin nothing. Read once; a SpecError (each time) when fleet.yaml cannot say."""
        if self._pins is None:
            try:
                self._pins = self._stage_pins()
            except SpecError as error:
                self._pins = error
        if isinstance(self._pins, SpecError):
            raise SpecError(self._pins.issues)
        stage = self._pins.get(stack)
        return stage.pins if stage is not None else {}

    def platform_pins_of(self, stack: str) -> Mapping[str, str]:
        """{kubernetes: "1.36", flux-extension: "1.23.0"} (those pinned) of the stage `stack` is in; read as pins_of."""
        self.pins_of(stack)
        assert self._pins is not None and not isinstance(self._pins, SpecError)
        stage = self._pins.get(stack)
        return stage.platform_pins if stage is not None else {}

    def _stage_pins(self) -> dict[str, Any]:
        from modules.spec.files import report_name, stack_files
        from modules.spec.fleet import has_pins, load_fleet
        from modules.spec.load import unpinned_stacks  # load.py merges through this module

        path = self.stacks_dir / FLEET_FILE
        if not os.path.lexists(path) or not has_pins(path, self.fleet_file):
            return {}
        names = sorted(report_name(stack) for stack in stack_files(self.stacks_dir))
        stack_dir = Path(self.display).parent
        # the stages that select by profile, and the configurations a stage may pin; pins play no part in either
        read = unpinned_stacks(self.stacks_dir, lambda stack: str(stack_dir / stack.name), self)
        fleet = load_fleet(
            path, names, self.fleet_file, lambda name: read(name).profiles, lambda name: read(name).declared
        )
        return {name: stage for stage in fleet.stages if stage.pins or stage.platform_pins for name in stage.stacks}

    def file(self, name: str) -> str:
        return str(Path(self.display) / f"{name}.yaml")

    def names(self) -> list[str]:
        """The profiles that exist, by name."""
        try:
            entries = os.listdir(self.directory)
        except OSError:
            return []
        return sorted(entry[: -len(".yaml")] for entry in entries if entry.endswith(".yaml"))

    def profile(self, name: str) -> Profile:
        """The profile `name`, read and checked once; a SpecError (raised again each time) if it cannot be."""
        if name not in self._read:
            try:
                self._read[name] = self._load(name)
            except SpecError as error:
                self._read[name] = error
        found = self._read[name]
        if isinstance(found, SpecError):
            raise SpecError(found.issues)
        return found

    def _load(self, name: str) -> Profile:
        file = self.file(name)
        config = read_config(self.directory / f"{name}.yaml", file, "profile")
        raw: dict[str, Any] = {}
        issues: list[SpecIssue] = []
        for key, value in config.items():
            namespace, colon, key_name = str(key).partition(":") if isinstance(key, str) else ("", ":", "")
            if not isinstance(key, str) or (colon and namespace != NAMESPACE):
                message = "a profile holds fluxfleet: keys only (provider settings such as azure-native: belong in "
                issues.append(SpecIssue(file, shown(key), message + "each stack file)"))
            elif (key_name if colon else key) in raw:
                issues.append(SpecIssue(file, bounded(key, 80), "written twice (a bare key is fluxfleet's): keep one"))
            else:
                raw[key_name if colon else key] = value
        issues += [SpecIssue(file, key_path(loc), SECURE_IN_PROFILE) for loc in _secure_values(raw)]
        uses, use_issues = profile_names(raw.pop(PROFILES_KEY, None), file)
        if issues or use_issues:
            raise SpecError([*issues, *use_issues])
        return Profile(name, file, uses, raw)

    def chain(self, names: Sequence[str], file: str) -> list[Profile]:
        """The profiles a file naming `names` uses, in merge order: each profile after those it names, and once.
        A missing profile, a cycle or a broken profile is a SpecError naming the file and key that refer to it."""
        ordered: dict[str, Profile] = {}
        issues: list[SpecIssue] = []

        def visit(name: str, referrer: str, loc: Loc, path: tuple[str, ...]) -> None:
            if name in path:
                cycle = " -> ".join((*path[path.index(name) :], name))
                issues.append(SpecIssue(referrer, key_path(loc), f"profile cycle: {cycle}"))
                return
            if name in ordered:
                return
            if len(path) >= PROFILE_DEPTH_MAX:
                message = f"profiles nested deeper than {PROFILE_DEPTH_MAX} levels ({' -> '.join(path[:3])} -> …)"
                issues.append(SpecIssue(referrer, key_path(loc), message))
                return
            if not os.path.lexists(self.directory / f"{name}.yaml"):
                known = self.names()
                hint = f" (known: {listed(known)})" if known else f" (none in {self.display})"
                issues.append(SpecIssue(referrer, key_path(loc), f"unknown profile {shown(name)}{hint}"))
                return
            try:
                profile = self.profile(name)
            except SpecError as error:
                issues.extend(issue for issue in error.issues if issue not in issues)
                return
            for index, used in enumerate(profile.uses):
                visit(used, profile.file, (PROFILES_KEY, index), (*path, name))
            ordered.setdefault(name, profile)

        for index, name in enumerate(names):
            visit(name, file, (PROFILES_KEY, index), ())
        if issues:
            raise SpecError(issues)
        return list(ordered.values())


def profile_names(value: Any, file: str) -> tuple[tuple[str, ...], list[SpecIssue]]:
    """The `fluxfleet:profiles` of a stack file or a profile: a list of profile names, each once."""
    if value is None:
        return (), []
    if not isinstance(value, list):
        return (), [SpecIssue(file, key_path((PROFILES_KEY,)), "a list of profile names, such as [base, edge-store]")]
    names: list[str] = []
    issues = []
    for index, name in enumerate(value):
        where = key_path((PROFILES_KEY, index))
        if not isinstance(name, str) or not PROFILE_NAME.fullmatch(name):
            issues.append(SpecIssue(file, where, f"{shown(name)} is not a profile name ({PROFILE_NAME_RULE})"))
        elif name in names:
            issues.append(SpecIssue(file, where, f"duplicate {shown(name)}"))
        else:
            names.append(name)
    return tuple(names), issues


def _secure_values(value: Any, loc: Loc = ()) -> list[Loc]:
    """Where a document holds Pulumi `secure:` values."""
    if is_pulumi_secure(value):
        return [loc]
    items = value.items() if isinstance(value, Mapping) else enumerate(value) if isinstance(value, list) else ()
    return [found for key, item in items for found in _secure_values(item, (*loc, key))]


def merge(layers: Sequence[tuple[str, Mapping[str, Any]]], root: str) -> tuple[dict[str, Any], Origins]:
    """The config of `layers` (file, fluxfleet keys by name) merged in order, and which file wrote each value; the
    root belongs to `root` (the stack file)."""
    merged: dict[str, Any] = {}
    origins = Origins(root)
    for file, raw in layers:
        _merge_into(merged, origins, raw, file, claim=True)
    return merged, origins


def override(merged: dict[str, Any], origins: Origins, file: str, layer: Mapping[str, Any]) -> None:
    """`layer` (a stage's pins, from `file`) merged over a merged config: it sets the values it names without taking
    over the maps it goes through, so a key missing there is still the stack's or its profile's to write."""
    _merge_into(merged, origins, layer, file, claim=False)


def _merge_into(target: dict[str, Any], origins: Origins, layer: Mapping[str, Any], file: str, *, claim: bool) -> None:
    for key, value in layer.items():
        if value is None:  # removes what an earlier layer set
            target.pop(key, None)
            origins.keys.pop(key, None)
        elif isinstance(value, Mapping) and not is_pulumi_secure(value):  # a secure value is one, never merged
            if not isinstance(target.get(key), dict) or is_pulumi_secure(target[key]):
                target[key], origins.keys[key] = {}, Origins(file)
            node = origins.keys[key]
            if claim:
                node.file = file
            _merge_into(target[key], node, value, file, claim=claim)
        else:  # a list or a scalar replaces whatever was there, whole
            target[key], origins.keys[key] = value, Origins(file)
