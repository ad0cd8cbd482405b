"""A Flux configuration's kustomizations (`flux.configurations.NAME.kustomizations`): the model, and the rules on
their names (alone and as the Flux object `<configuration>-<kustomization>`), paths and dependsOn graph."""

from __future__ import annotations

import graphlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Annotated, Literal

from modules.spec.errors import Loc, bounded, listed, shown
from modules.spec.fields import (
    DNS_SUBDOMAIN,
    Duration,
    Line,
    MaybeEmptyText,
    Reconciled,
    SpecModel,
    dns_label_problem,
    pattern,
)


FLUX_OBJECT_NAME_MAX = 63  # a Kubernetes object name; Flux names kustomizations `<configuration>-<kustomization>`


class SubstituteFrom(SpecModel):
    kind: Literal["ConfigMap", "Secret"]
    name: Annotated[str, pattern(DNS_SUBDOMAIN.pattern, "a Kubernetes object name")]
    optional: bool = False


class PostBuild(SpecModel):
    substitute: dict[Annotated[str, pattern(r"[_a-zA-Z][_a-zA-Z0-9]*", "a variable name")], MaybeEmptyText] = {}
    substitute_from: list[SubstituteFrom] = []


class KustomizationSpec(Reconciled):
    path: Line | None = None
    depends_on: list[Line] = []
    prune: bool | None = None
    force: bool | None = None
    wait: bool | None = None
    retry_interval: Duration | None = None
    post_build: PostBuild | None = None


def kustomization_issues(
    loc: Loc, configuration: str, kustomizations: Mapping[str, KustomizationSpec]
) -> Iterator[tuple[Loc, str]]:
    if not kustomizations:
        yield loc, "a configuration needs at least one kustomization"
    for name, kustomization in kustomizations.items():
        here = (*loc, name)
        for problem in flux_object_name_problems(configuration, name):
            yield here, problem
        if kustomization.path is not None:
            parts = kustomization.path.split("/")
            if kustomization.path.startswith("/") or ".." in parts:
                yield (*here, "path"), "must be a path inside the source, relative to its root (no leading / or ..)"
        if problem := kustomization.timeout_issue():
            yield (*here, "timeout"), problem
    for where, problem in dependency_problems({name: k.depends_on for name, k in kustomizations.items()}):
        yield (*loc, *where), problem


def flux_object_name_problems(configuration: str, kustomization: str) -> Iterator[str]:
    """What is wrong with a kustomization's name, alone and as the Flux object `<configuration>-<kustomization>`."""
    if problem := dns_label_problem(kustomization):
        yield f"kustomization name {problem}"
    object_name = f"{configuration}-{kustomization}"
    if len(object_name) > FLUX_OBJECT_NAME_MAX:
        yield (
            f"the Flux object name {shown(object_name)} has {len(object_name)} characters "
            f"(at most {FLUX_OBJECT_NAME_MAX}): shorten the configuration or kustomization name"
        )


def dependency_problems(depends_on: Mapping[str, Sequence[str]]) -> Iterator[tuple[Loc, str]]:
    """What is wrong with a kustomization graph (name → dependsOn), at `(name, "dependsOn"[, index])`: unknown
    targets, self-dependencies, duplicates, and a cycle, named."""
    known = listed(sorted(depends_on)) or "none"
    for name, targets in depends_on.items():
        seen: set[str] = set()
        for index, target in enumerate(targets):
            if target == name:
                yield (name, "dependsOn", index), "a kustomization cannot depend on itself"
            elif target not in depends_on:
                yield (name, "dependsOn", index), f"unknown kustomization {shown(target)} (known: {known})"
            elif target in seen:
                yield (name, "dependsOn", index), f"duplicate {shown(target)}"
            seen.add(target)
    graph = {name: [t for t in targets if t in depends_on and t != name] for name, targets in depends_on.items()}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as cycle:
        nodes = list(reversed(cycle.args[1]))  # graphlib lists the cycle against the edge direction
        yield (nodes[0], "dependsOn"), f"dependency cycle: {' -> '.join(bounded(node, 63) for node in nodes)}"
