"""`plan --source URL=DIR`: the Flux objects of a configuration's repository, at the ref the configuration tracks, on
an apiVersion that the extension the cluster will run no longer serves (the pinned `flux.extension.version`, else the
latest release of `modules/flux_extension_versions.py`). Such an object stops reconciling on the upgrade ("no matches
for kind HelmRelease in version helm.toolkit.fluxcd.io/v2beta1"), so each is a plan error naming its file and object.

What is read: every *.yaml and *.yml under each kustomization path, and what the kustomization.yaml files there
reach in the repository (`resources`, `components`, `bases`, patch files: `apps/staging` builds `../base/podinfo`),
at the ref, with git (one `git ls-tree`, then `git cat-file --batch`), as YAML documents through the bounded safe
loader stack files use. A DIR that is no git repository is read as it is on disk, with a note. Reading is bounded
(FILE_MAX_BYTES a file, FILES_MAX and READ_MAX_BYTES a configuration); a file that cannot be read or parsed (a Helm
template, say) is skipped with a note.
"""

from __future__ import annotations

import functools
import os
import posixpath
import stat
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from modules.flux_extension_versions import removed_api, removed_by, shown, target_version
from modules.spec import GitSource, SpecIssue, Stack, bounded, repository_key
from modules.spec.errors import key_path
from modules.spec.files import YamlTooBig, bounded_yaml  # the bounded YAML reader of stack files

FILE_MAX_BYTES = 1024 * 1024  # a manifest larger than this is skipped (with a note)
FILES_MAX = 5_000  # manifests read for one configuration; the rest are skipped (with a note)
READ_MAX_BYTES = 64 * 1024 * 1024  # read for one configuration
LIST_MAX = 200_000  # manifests a repository may list; past it the listing stops (with a note)
FINDINGS_MAX = 100  # errors for one configuration; the rest are counted in one more
NOTES_MAX = 10  # skipped files named for one configuration; the rest are counted
GIT_TIMEOUT = 60  # seconds for one git command on a local checkout
FLUX_GROUP = ".toolkit.fluxcd.io"  # the API groups of the Flux controllers' objects
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
REFERENCE_KEYS = ("resources", "components", "bases", "patchesStrategicMerge")  # lists of paths


@dataclass(frozen=True)
class FluxObject:
    file: str  # its file's path in the repository
    kind: str
    name: str
    api_version: str


def flux_api_issues(stack: Stack, checkouts: Mapping[str, Path]) -> tuple[list[SpecIssue], list[str]]:
    """The errors (a Flux object on a removed apiVersion; a ref the checkout lacks) and the notes (what was skipped,
    and how the source was read) of a stack's configurations whose repository has a checkout in `checkouts`."""
    target = target_version(stack.spec.flux.extension.version)
    if not checkouts or not removed_by(target):
        return [], []
    roots = {repository_key(url): Path(directory) for url, directory in checkouts.items()}
    issues: list[SpecIssue] = []
    notes: list[str] = []
    for name, configuration in stack.spec.flux.configurations.items():
        git = configuration.git
        root = roots.get(repository_key(git.url)) if git else None
        if git is None or root is None:
            continue
        where = ("flux", "configurations", name)
        source = _open(root, git)
        if source.missing:  # the ref is not in the checkout
            loc = (*where, "git", next(iter(git.ref_keys), "url"))
            issues.append(SpecIssue(stack.file_of(loc), key_path(loc), source.missing))
            continue
        notes += [source.note] if source.note else []
        paths = tuple(sorted({_normal(k.path) for k in configuration.kustomizations.values()}))
        scan = _scan(str(root.resolve()), source.commit, paths)
        at = f"{root} at {git.ref}"
        notes += [f"{at}: {bounded(path, 300)} holds no *.yaml or *.yml: not scanned" for path in scan.missing]
        found = [(item, use) for item in scan.objects if (use := removed_api(item.api_version, item.kind, target))]
        file, path = stack.file_of(where), key_path(where)
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


def _normal(path: str | None) -> str:
    """A kustomization path as a path in the repository: `./apps/staging` -> `apps/staging`, `./` -> `.`."""
    return posixpath.normpath(path or ".").lstrip("/") or "."


# --------------------------------------------------------------------------------------------- the source at its ref


@dataclass(frozen=True)
class _Source:
    commit: str | None = None  # the commit to read; None: the directory as it is on disk
    note: str | None = None  # how it was read, when not at the ref
    missing: str | None = None  # an error: the checkout is a repository without the ref


def _open(root: Path, git: GitSource) -> _Source:
    """Where a configuration's manifests are read in its checkout: the commit its ref names."""
    if _git(root, "rev-parse", "--git-dir") is None:
        return _Source(note=f"{root} is not a git repository: its files were scanned as they are, not at {git.ref}")
    if git.semver and not git.commit and not git.tag:
        commit = _git(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
        if commit is None:
            return _Source(note=f"{root} has no HEAD: its files were scanned as they are")
        return _Source(commit, f"{root}: semver {git.semver} is not resolved by fluxfleet: scanned its HEAD")
    candidates = (
        [git.commit]
        if git.commit
        else [f"refs/tags/{git.tag}"]
        if git.tag
        else [f"refs/remotes/origin/{git.branch}", f"refs/heads/{git.branch}"]
        if git.branch
        else ["HEAD"]
    )
    for candidate in candidates:
        if commit := _git(root, "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}"):
            return _Source(commit)
    value = bounded(git.commit or git.tag or git.branch or "HEAD", 200)
    return _Source(missing=f"{value} is not in {root}: fetch it (git fetch --tags), so its manifests can be checked")


def _git(root: Path, *args: str) -> str | None:
    """A git command's output in `root` (stripped), or None when it fails."""
    result = _git_bytes(root, *args)
    return result.decode("utf-8", "replace").strip() if result is not None else None


def _git_bytes(root: Path, *args: str, stdin: bytes | None = None) -> bytes | None:
    """Only `root` itself can be the repository: a directory inside another repository (a fixture in fluxfleet's
    own) is none. The caller's GIT_* variables (GIT_DIR, ...) do not apply."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env["GIT_CEILING_DIRECTORIES"] = str(root.resolve().parent)
    try:
        result = subprocess.run(
            ["git", "-C", str(root), "-c", "core.fsmonitor=false", *args],
            input=stdin,
            capture_output=True,
            timeout=GIT_TIMEOUT,
            check=False,
            env=env,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None


class _Tree:
    """The manifests of a repository, at a commit (git) or on disk: their paths (each with what reads it) and the
    directories that hold them."""

    def __init__(self, root: Path, commit: str | None):
        self.root, self.commit = root, commit
        self.files: dict[str, tuple[str | None, int]] = {}  # path -> (git object id, or None on disk; size)
        self.truncated = False
        for path, oid, size in self._git_listing() if commit else self._disk_listing():
            if len(self.files) >= LIST_MAX:
                self.truncated = True
                break
            self.files[path] = (oid, size)
        self.dirs = {"."} | {parent for path in self.files for parent in _parents(path)}

    def _git_listing(self) -> Iterable[tuple[str, str | None, int]]:
        listing = _git_bytes(self.root, "ls-tree", "-r", "-l", "-z", f"{self.commit}^{{tree}}") or b""
        for entry in listing.split(b"\0"):
            header, _, raw_name = entry.partition(b"\t")
            fields = header.split()
            if len(fields) != 4 or fields[1] != b"blob" or fields[0] == b"120000":  # a submodule, a symlink
                continue
            path = raw_name.decode("utf-8", "backslashreplace")
            if _wanted(path):
                yield path, fields[2].decode("ascii"), int(fields[3]) if fields[3].isdigit() else 0

    def _disk_listing(self) -> Iterable[tuple[str, str | None, int]]:
        for directory, subdirectories, names in os.walk(self.root):  # symlinked directories are not followed
            subdirectories[:] = sorted(d for d in subdirectories if d != ".git")
            for name in sorted(names):
                full = Path(directory) / name
                path = full.relative_to(self.root).as_posix()
                if not _wanted(path):
                    continue
                try:
                    info = os.lstat(full)
                except OSError:
                    continue
                if stat.S_ISREG(info.st_mode):  # not a symlink: it may lead out of the repository
                    yield path, None, info.st_size

    def under(self, directory: str) -> list[str]:
        prefix = "" if directory == "." else f"{directory}/"
        return sorted(path for path in self.files if path.startswith(prefix))

    def read(self, paths: Iterable[str]) -> dict[str, str | tuple[str]]:
        """Each file's text, or (why it was not read,)."""
        paths = list(paths)
        result: dict[str, str | tuple[str]] = {}
        if self.commit is None:
            for path in paths:
                try:
                    with open(self.root / path, "rb") as stream:
                        result[path] = _text(stream.read(FILE_MAX_BYTES + 1))
                except OSError as error:
                    result[path] = (f"cannot read: {error.strerror}",)
            return result
        blobs = _cat(self.root, [oid for path in paths if (oid := self.files[path][0])]) if paths else {}
        for path in paths:
            data = blobs.get(self.files[path][0] or "")
            result[path] = _text(data) if data is not None else ("not read by git",)
        return result


def _wanted(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name.lower().endswith((".yaml", ".yml")) or name in KUSTOMIZATION_FILES


def _parents(path: str) -> Iterable[str]:
    parts = path.split("/")[:-1]
    return ("/".join(parts[:index]) for index in range(1, len(parts) + 1))


def _cat(root: Path, oids: list[str]) -> dict[str, bytes]:
    """The blobs `oids` name, with one `git cat-file --batch`."""
    output = _git_bytes(root, "cat-file", "--batch", stdin="".join(f"{oid}\n" for oid in oids).encode("ascii"))
    blobs: dict[str, bytes] = {}
    at = 0
    while output and at < len(output):
        end = output.find(b"\n", at)
        if end < 0:
            break
        header = output[at:end].split()
        at = end + 1
        if len(header) != 3 or not header[2].isdigit():  # "<oid> missing"
            continue
        size = int(header[2])
        blobs[header[0].decode("ascii")] = output[at : at + size]
        at += size + 1
    return blobs


def _text(data: bytes) -> str | tuple[str]:
    if len(data) > FILE_MAX_BYTES:
        return (f"larger than {FILE_MAX_BYTES // 2**20} MiB",)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        return (f"not UTF-8 text (byte {error.start})",)


@functools.lru_cache(maxsize=16)  # the stacks a worker plans share repositories: each commit is listed once
def _tree_at(root: str, commit: str) -> _Tree:
    return _Tree(Path(root), commit)


# --------------------------------------------------------------------------------------------- what Flux builds


@dataclass(frozen=True)
class _Scan:
    objects: tuple[FluxObject, ...] = ()  # in file and document order
    skipped: tuple[str, ...] = ()  # "apps/x.yaml: not valid YAML (line 3: ...)"
    missing: tuple[str, ...] = ()  # kustomization paths that hold no manifest (or are no directory)


@dataclass
class _Selection:
    files: dict[str, None] = field(default_factory=dict)  # in the order found
    skipped: dict[str, str] = field(default_factory=dict)  # file -> why


def _scan(root: str, commit: str | None, paths: tuple[str, ...]) -> _Scan:
    """What Flux builds from `paths`: at a commit, read once per process (stacks share configurations); on disk,
    read each time (it may change)."""
    return _scan_at(root, commit, paths) if commit else _scan_tree(_Tree(Path(root), None), paths)


@functools.lru_cache(maxsize=256)
def _scan_at(root: str, commit: str, paths: tuple[str, ...]) -> _Scan:
    return _scan_tree(_tree_at(root, commit), paths)


def _scan_tree(tree: _Tree, paths: tuple[str, ...]) -> _Scan:
    missing = tuple(path for path in paths if path not in tree.dirs)
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
    return _Scan(tuple(objects), tuple(skipped), missing)


def _select(tree: _Tree, paths: list[str]) -> _Selection:
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
