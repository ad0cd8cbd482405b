"""`plan --source URL=DIR`: each git configuration whose repository has a local checkout, read at the ref its stack
runs (its own, its profile's or its stage's pin: the ref of the stack's effective spec), never the work tree (which
only tells whose error a missing path is: the ref's or the path's). The ref is in the checkout, each kustomization
path is a directory there, and (api_scan.py) no Flux object under them is on an API version the target extension
release no longer serves."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from fluxfleet.plan.api_scan import removed_api_issues
from fluxfleet.plan.checkout import Tree, repository_path, revision, tree
from modules.spec import SpecIssue, Stack, repository_key, shown
from modules.spec.errors import Loc, key_path


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
        issues += _path_issues(stack, name, root, repository, ref_loc)
        found, skipped = removed_api_issues(stack, name, repository, f"{root} at {git.ref}")
        issues += found
        notes += skipped
    return issues, notes


def _path_issues(stack: Stack, name: str, root: Path, repository: Tree, ref_loc: Loc) -> list[SpecIssue]:
    """Each kustomization path of configuration `name` that is no directory of `repository`. At a ref, a path the
    work tree has is the ref's to answer for (a pin made before the path was added, a profile's branch): the error is
    at the ref's key; else (a typo, say) at the path's."""
    git = stack.spec.flux.configurations[name].git
    assert git is not None
    ref_file = stack.file_of(ref_loc)
    issues = []
    for kustomization_name, kustomization in stack.spec.flux.configurations[name].kustomizations.items():
        path = repository_path(kustomization.path)
        if path in repository.dirs:
            continue
        loc = ("flux", "configurations", name, "kustomizations", kustomization_name, "path")
        written = shown(kustomization.path or "./")
        if repository.commit is None:
            message = f"{written} is not a directory of {root} on disk"
            issues.append(SpecIssue(stack.file_of(loc), key_path(loc), message))
        elif _is_dir(root / path):
            message = (
                f"{git.ref} lacks {written} ({key_path(loc)} in {stack.file_of(loc)}), which the work tree of {root} "
                "has: pin a ref that has it, or change the path"
            )
            issues.append(SpecIssue(ref_file, key_path(ref_loc), message))
        else:
            message = f"{written} is not a directory of {root} at {git.ref} ({key_path(ref_loc)} in {ref_file})"
            issues.append(SpecIssue(stack.file_of(loc), key_path(loc), message))
    return issues


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a name too long for the file system, ...
        return False
