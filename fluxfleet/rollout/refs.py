"""The refs a rollout applies, for its `--dry-run`: per stage and Flux configuration, the ref its stacks run it at
(the stage's pin in fleet.yaml where there is one, else each stack's own, from its file or a profile), and which
stacks run which ref where they differ."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from fluxfleet.rollout.journal import StagePlan
from modules.spec import Stack

# How a source is written in a stack file (`flux.configurations.NAME.<key>`), by the spec's attribute.
SOURCE_KEYS = {"git": "git", "oci": "oci", "bucket": "bucket", "azure_blob": "azureBlob"}


@dataclass(frozen=True)
class AppliedRef:
    """One ref of a configuration in a stage, and the stacks of the stage that apply it."""

    ref: str | None  # as the spec says it: "tag v1.0.0", "branch main"; None: a source without one (bucket, blob)
    origin: Literal["pin", "stack"] | None  # the stage's pin, or the stack's file or profile; None without a ref
    source: str  # git, oci, bucket, azureBlob
    stacks: tuple[str, ...]  # in the stage's order


@dataclass(frozen=True)
class ConfigurationRefs:
    name: str
    refs: tuple[AppliedRef, ...]  # one unless the stage's stacks differ; in the order of their first stack


def stage_refs(
    stages: Sequence[StagePlan], stacks: Mapping[str, Stack], pins_file: str
) -> dict[str, tuple[ConfigurationRefs, ...]]:
    """Per stage (by name), its stacks' configurations sorted by name, each with the refs the stacks apply.
    `pins_file`: fleet.yaml as the stacks' origins name it, where a ref written there is the stage's pin."""
    refs = {}
    for stage in stages:
        found: dict[str, dict[tuple[str | None, str | None, str], list[str]]] = {}
        for name in stage.stacks:
            if (stack := stacks.get(name)) is None:
                continue
            for config, spec in stack.spec.flux.configurations.items():
                attribute = next(key for key in SOURCE_KEYS if getattr(spec, key) is not None)
                source = SOURCE_KEYS[attribute]
                ref = getattr(getattr(spec, attribute), "ref", None)
                origin = None
                if ref is not None:
                    key = ref.split(" ", 1)[0]  # the key the ref is written with: tag, commit, semver, branch, digest
                    written = stack.file_of(("flux", "configurations", config, source, key))
                    origin = "pin" if written == pins_file else "stack"
                found.setdefault(config, {}).setdefault((ref, origin, source), []).append(name)
        refs[stage.name] = tuple(
            ConfigurationRefs(
                config,
                tuple(AppliedRef(ref, origin, source, tuple(names)) for (ref, origin, source), names in by_ref.items()),
            )
            for config, by_ref in sorted(found.items())
        )
    return refs
