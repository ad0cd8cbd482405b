"""`plan --source URL=DIR`: the Flux objects of a configuration's repository, at the ref the configuration tracks, on
an apiVersion that the extension the cluster will run no longer serves (the pinned `flux.extension.version`, else the
latest release of `modules/flux_extension_versions.py`). Such an object stops reconciling on the upgrade ("no matches
for kind HelmRelease in version helm.toolkit.fluxcd.io/v2beta1"), so each is a plan error naming its file and object.

What is read: every *.yaml and *.yml under each kustomization path, and what the kustomization.yaml files there
reach in the repository (`resources`, `components`, `bases`, patch files: `apps/staging` builds `../base/podinfo`),
at the ref (`checkout.py`), as YAML documents through the bounded safe loader stack files use. Reading is bounded
(FILE_MAX_BYTES a file, FILES_MAX and READ_MAX_BYTES a configuration); a file that cannot be read or parsed (a Helm
template, say) is skipped with a note.
"""

from __future__ import annotations

import functools
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field

from fluxfleet.plan.checkout import FILE_MAX_BYTES, KUSTOMIZATION_FILES, LIST_MAX, Tree, repository_path
from modules.flux_extension_versions import removed_api, removed_by, shown, target_version
from modules.spec import SpecIssue, Stack, bounded
from modules.spec.errors import key_path
from modules.spec.files import YamlTooBig, bounded_yaml  # the bounded YAML reader of stack files

FILES_MAX = 5_000  # manifests read for one configuration; the rest are skipped (with a note)
READ_MAX_BYTES = 64 * 1024 * 1024  # read for one configuration
FINDINGS_MAX = 100  # errors for one configuration; the rest are counted in one more
NOTES_MAX = 10  # skipped files named for one configuration; the rest are counted
FLUX_GROUP = ".toolkit.fluxcd.io"  # the API groups of the Flux controllers' objects
REFERENCE_KEYS = ("resources", "components", "bases", "patchesStrategicMerge")  # lists of paths


@dataclass(frozen=True)
class FluxObject:
    file: str  # its file's path in the repository
    kind: str
    name: str
    api_version: str


def removed_api_issues(stack: Stack, name: str, repository: Tree, at: str) -> tuple[list[SpecIssue], list[str]]:
    """The errors (a Flux object on an apiVersion the target extension no longer serves) and the notes (what was
    skipped) of configuration `name`, read in its repository (`at`: the checkout and ref, as notes name them); none
    when the target release removes nothing."""
    target = target_version(stack.spec.flux.extension.version)
    if not removed_by(target):
        return [], []
    configuration = stack.spec.flux.configurations[name]
    where = ("flux", "configurations", name)
    paths = tuple(sorted({repository_path(k.path) for k in configuration.kustomizations.values()}))
    scan = _scan(repository, paths)
    notes = [f"{at}: {bounded(path, 300)} holds no *.yaml or *.yml: not scanned" for path in scan.empty]
    found = [(item, use) for item in scan.objects if (use := removed_api(item.api_version, item.kind, target))]
    file, path = stack.file_of(where), key_path(where)
    issues = []
    for item, use in found[:FINDINGS_MAX]:
        message = (
            f"{bounded(item.file, 300)}: {bounded(item.kind, 63)} {bounded(item.name, 253)} uses "
            f"{bounded(item.api_version, 100)}, which extension {shown(target)} no longer serves: use {use}"
        )
        issues.append(SpecIssue(file, path, message))
    if len(found) > FINDINGS_MAX:
        more = f"... and {len(found) - FINDINGS_MAX} more Flux objects on API versions it no longer serves"
        issues.append(SpecIssue(file, path, more))
    notes += [f"{at}: {text}: skipped" for text in scan.skipped[:NOTES_MAX]]
    if len(scan.skipped) > NOTES_MAX:
        notes.append(f"{at}: {len(scan.skipped) - NOTES_MAX} more files skipped")
    return issues, notes


# --------------------------------------------------------------------------------------------- what Flux builds


@dataclass(frozen=True)
class _Scan:
    objects: tuple[FluxObject, ...] = ()  # in file and document order
    skipped: tuple[str, ...] = ()  # "apps/x.yaml: not valid YAML (line 3: ...)"
    empty: tuple[str, ...] = ()  # kustomization paths (directories) that hold no manifest


@dataclass
class _Selection:
    files: dict[str, None] = field(default_factory=dict)  # in the order found
    skipped: dict[str, str] = field(default_factory=dict)  # file -> why


def _scan(repository: Tree, paths: tuple[str, ...]) -> _Scan:
    """What Flux builds from `paths`: at a commit, read once per process (stacks share configurations, and
    checkout.tree lists a commit once); on disk, read each time (it may change)."""
    return _scan_at(repository, paths) if repository.commit else _scan_tree(repository, paths)


@functools.lru_cache(maxsize=256)
def _scan_at(repository: Tree, paths: tuple[str, ...]) -> _Scan:
    return _scan_tree(repository, paths)


def _scan_tree(tree: Tree, paths: tuple[str, ...]) -> _Scan:
    # a path that is no directory is the path check's error (sources.py); one without manifests, a note here
    empty = tuple(path for path in paths if path in tree.dirs and not tree.under(path))
    selection = _select(tree, [path for path in paths if path in tree.dirs])
    budget = READ_MAX_BYTES
    readable = []
    for path in selection.files:
        size = tree.files[path][1]
        if size > FILE_MAX_BYTES:
            selection.skipped[path] = f"larger than {FILE_MAX_BYTES // 2**20} MiB"
        elif len(readable) >= FILES_MAX or size > budget:
            selection.skipped[path] = f"past {FILES_MAX:,} files or {READ_MAX_BYTES // 2**20} MiB read"
        else:
            budget -= size
            readable.append(path)
    texts = tree.read(readable)
    objects: list[FluxObject] = []
    for path in sorted(texts):
        text = texts[path]
        if not isinstance(text, str):
            selection.skipped[path] = text[0]
            continue
        found, problem = flux_objects(path, text)
        objects += found
        if problem:
            selection.skipped[path] = problem
    skipped = [f"{bounded(path, 300)}: {why}" for path, why in sorted(selection.skipped.items())]
    if tree.truncated:
        skipped.insert(0, f"the repository lists more than {LIST_MAX:,} manifests: the rest")
    return _Scan(tuple(objects), tuple(skipped), empty)


def _select(tree: Tree, paths: list[str]) -> _Selection:
    """The manifests under `paths`, and what their kustomization files reach in the repository, round by round."""
    selection = _Selection()
    visited: set[str] = set()
    frontier = set(paths)
    for _ in range(32):  # rounds: bases of bases of ...; a cycle ends when nothing is new
        if not frontier:
            break
        visited |= frontier
        new = [path for directory in sorted(frontier) for path in tree.under(directory) if path not in selection.files]
        selection.files.update(dict.fromkeys(new))
        frontier = set()
        kustomizations = [path for path in new if path.rsplit("/", 1)[-1] in KUSTOMIZATION_FILES]
        for kustomization, text in tree.read(kustomizations).items():
            if not isinstance(text, str):
                continue  # skipped as a manifest, with its reason
            for reference in _references(text):
                target = posixpath.normpath(posixpath.join(posixpath.dirname(kustomization), reference))
                if target.startswith("..") or target.startswith("/"):
                    continue  # outside the repository
                if target in tree.dirs and target not in visited:
                    frontier.add(target)
                elif target in tree.files and target not in selection.files:
                    selection.files[target] = None
    return selection


def _references(text: str) -> list[str]:
    """The local paths a kustomization.yaml names (`resources`, `components`, `bases`, patch files); not URLs."""
    from ruamel.yaml.error import YAMLError

    try:
        document = bounded_yaml("safe").load(text)
    except (YAMLError, YamlTooBig, ValueError, TypeError, RecursionError):
        return []  # the file is skipped as a manifest, with its reason
    if not isinstance(document, Mapping):
        return []
    found = [item for key in REFERENCE_KEYS for item in _strings(document.get(key))]
    found += [
        p["path"] for p in _list(document.get("patches")) if isinstance(p, Mapping) and isinstance(p.get("path"), str)
    ]
    return [item for item in found if "://" not in item and not item.startswith(("git@", "github.com/"))]


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _strings(value: object) -> list[str]:
    return [item for item in _list(value) if isinstance(item, str)]


# --------------------------------------------------------------------------------------------- manifests


def flux_objects(file: str, text: str) -> tuple[list[FluxObject], str | None]:
    """The Flux objects of one manifest file (YAML, one document or many), and why the rest of it was not read (a
    parse error, a limit) or None. The documents before a broken one still count."""
    from ruamel.yaml.error import YAMLError

    found: list[FluxObject] = []
    try:
        for document in bounded_yaml("safe").load_all(text):
            if item := _flux_object(file, document):
                found.append(item)
    except YamlTooBig as error:
        return found, f"not read past line {error.line}: {error.why}"
    except YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or (str(error).splitlines() or ["?"])[0]
        return found, f"not valid YAML ({f'line {mark.line + 1}: ' if mark else ''}{bounded(str(problem), 200)})"
    except (ValueError, TypeError, RecursionError) as error:  # from a constructor: a date out of range, ...
        return found, f"not valid YAML ({bounded((str(error).splitlines() or [type(error).__name__])[0], 200)})"
    return found, None


def _flux_object(file: str, document: object) -> FluxObject | None:
    if not isinstance(document, Mapping):
        return None
    api_version, kind = document.get("apiVersion"), document.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return None
    if not api_version.partition("/")[0].endswith(FLUX_GROUP):
        return None
    metadata = document.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    return FluxObject(file, kind, str(name) if name is not None else "(no name)", api_version)
