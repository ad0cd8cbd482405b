"""`plan --source URL=DIR`: each git configuration whose repository has a local checkout, read at the ref its stack
runs (its own, its profile's or its stage's pin: the ref of the stack's effective spec), never the work tree. The ref
is in the checkout, each kustomization path is a directory there, and (api_scan.py) no Flux object under them is on
an API version the target extension release no longer serves."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from fluxfleet.plan.api_scan import removed_api_issues, repository_path
from fluxfleet.plan.checkout import revision, tree
from modules.spec import SpecIssue, Stack, repository_key, shown
from modules.spec.errors import key_path


def source_issues(stack: Stack, checkouts: Mapping[str, Path]) -> tuple[list[SpecIssue], list[str]]:
    """The errors (a ref the checkout lacks, a kustomization path that is no directory at the ref, a Flux object on a
    removed API version) and the notes (how a source was read, what was skipped) of a stack's configurations whose
    repository (any URL form) has a checkout in `checkouts`."""
    roots = {repository_key(url): Path(directory) for url, directory in checkouts.items()}
    issues: list[SpecIssue] = []
    notes: list[str] = []
    for name, configuration in stack.spec.flux.configurations.items():
        git = configuration.git
        root = roots.get(repository_key(git.url)) if git else None
        if git is None or root is None:
            continue
        where = ("flux", "configurations", name)
        ref_loc = (*where, "git", (git.ref or "url").split(" ", 1)[0])  # the key the ref is written with: tag, ...
        at = revision(root, git)
        if at.missing:
            issues.append(SpecIssue(stack.file_of(ref_loc), key_path(ref_loc), at.missing))
            continue
        notes += [at.note] if at.note else []
        repository = tree(root, at.commit)
        if not repository.listed:  # no path can be told missing, no manifest read
            message = f"git could not list {root} at {git.ref}: its files were not checked"
            issues.append(SpecIssue(stack.file_of(ref_loc), key_path(ref_loc), message))
            continue
        read = f"at {git.ref} ({key_path(ref_loc)} in {stack.file_of(ref_loc)})" if at.commit else "on disk"
        for kustomization_name, kustomization in configuration.kustomizations.items():
            if repository_path(kustomization.path) not in repository.dirs:
                loc = (*where, "kustomizations", kustomization_name, "path")
                message = f"{shown(kustomization.path or './')} is not a directory of {root} {read}"
                issues.append(SpecIssue(stack.file_of(loc), key_path(loc), message))
        found, skipped = removed_api_issues(stack, name, repository, f"{root} at {git.ref}")
        issues += found
        notes += skipped
    return issues, notes
