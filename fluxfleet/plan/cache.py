"""`plan`'s cache: each stack's plan kept under the hash of everything that can change it, so that a plan of a large
fleet plans only the stacks a change reaches.

A stack's key is the SHA-256 of: its effective config (after its profiles and fleet.yaml's pins: the merged values
in the order written, the file that wrote each, the problems of its keys), its name and file as reports name them,
the policy levels (`--policy-config`), and the fingerprint of what plans it: the source of the program and the policy
pack (modules/, policies/, __main__.py, Pulumi.yaml, fluxfleet/plan/, fluxfleet/mock_engine.py, fluxfleet/redact.py:
their contents, never their mtimes), the installed versions of fluxfleet and of everything it depends on, and
Python's. A stack planned with `--source` is never cached (a checkout's state is not in its key); nor is one whose
file cannot be read that far (its errors come at once).

A stack file's parsed `config:` is kept too, under the hash of its text: YAML is parsed in Python, and on a warm
plan parsing would cost more than everything else. An entry is JSON (never pickle): a header line (format, key,
SHA-256 of the body) and the body, each value tagged with its type. An entry whose header does not match its name and
body (corrupt, truncated, another key's) is ignored, and rewritten by this plan. Entries are written to a temporary
file and renamed, so that two plans at once read whole entries only; the least recently used are removed past
MAX_ENTRIES or MAX_BYTES. A cache directory that cannot be used is one warning, and a plan without the cache.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import platform
import re
import tempfile
import time
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel

DEFAULT_DIR = Path(".fluxfleet/cache/plan")
CACHE_DIR_ENV = "FLUXFLEET_CACHE_DIR"  # where the cache lives instead (tests keep theirs apart)
FORMAT = 2  # of the entries: a change of it leaves every entry unread
MAX_ENTRIES = 20_000  # two per stack (its plan, its file's parse): a fleet of 10,000
MAX_BYTES = 256 * 2**20
STALE_TEMPORARY = 3600  # seconds after which a temporary file is a crashed plan's, not another plan's

ROOT = Path(__file__).resolve().parents[2]  # the project: the program and the pack are read from here
SOURCES = (
    "modules",
    "policies",
    "__main__.py",
    "Pulumi.yaml",
    "fluxfleet/plan",
    "fluxfleet/mock_engine.py",
    "fluxfleet/redact.py",
)


def source_digest(root: Path = ROOT) -> str:
    """The SHA-256 of the program's and the policy pack's files (their paths and contents, in path order)."""
    files: list[Path] = []
    for name in SOURCES:
        path = root / name
        if path.is_dir():
            files += (
                Path(directory) / file
                for directory, _, names in os.walk(path)
                if "__pycache__" not in Path(directory).parts
                for file in names
                if not file.endswith((".pyc", ".pyo"))
            )
        elif path.is_file():
            files.append(path)
    digest = hashlib.sha256()
    for file in sorted(files, key=lambda file: file.relative_to(root).as_posix()):
        content = file.read_bytes()
        digest.update(f"{file.relative_to(root).as_posix()}\0{len(content)}\0".encode())
        digest.update(content)
    return digest.hexdigest()


def dependency_versions() -> list[str]:
    """`name==version` of fluxfleet and of every distribution it requires, directly or not (extras left out), in
    name order: the locked versions of what the program imports (pulumi, pulumi-azure-native, pydantic, ...)."""
    found: dict[str, str] = {}
    pending = ["fluxfleet"]
    while pending:
        name = _normalised(pending.pop())
        if name in found:
            continue
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            found[name] = "absent"
            continue
        found[name] = distribution.version
        for requirement in distribution.requires or ():
            if "extra ==" not in requirement.replace("extra==", "extra =="):
                pending.append(re.split(r"[\s;<>=!~\[(]", requirement.strip(), maxsplit=1)[0])
    return [f"{name}=={version}" for name, version in sorted(found.items())]


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def fingerprint() -> str:
    """What plans a stack, as one hash: the program's source, the dependencies' versions and Python's."""
    material = [FORMAT, platform.python_implementation(), platform.python_version()]
    return _digest([*material, source_digest(), dependency_versions()])


def _digest(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


# Values as JSON, each container and object tagged with its type, so that what is read back is what was written: a
# map with keys that are not text, a tuple, a plan's dataclasses, the spec's pydantic models. Any other type is
# refused (TypeError), and the stack is then planned every time rather than cached.
def encode(value: Any) -> Any:
    kind = type(value)
    if value is None or kind in (str, int, float, bool):
        return value
    if kind is list:
        return [encode(item) for item in value]
    if kind is dict:
        if all(type(key) is str and not key.startswith("$") for key in value):
            return {key: encode(item) for key, item in value.items()}
        return {"$": "d", "v": [[encode(key), encode(item)] for key, item in value.items()]}
    if kind is tuple:
        return {"$": "t", "v": [encode(item) for item in value]}
    if kind is frozenset:
        return {"$": "f", "v": [encode(item) for item in value]}
    name = _name(kind)
    if name in _registry():
        if isinstance(value, BaseModel):
            fields = {field: encode(getattr(value, field)) for field in kind.model_fields}
            return {"$": "m", "n": name, "v": fields, "s": sorted(value.model_fields_set)}
        if name == _ORIGINS:
            return {"$": "o", "f": value.file, "v": encode(value.keys)}
        fields = {field.name: encode(getattr(value, field.name)) for field in dataclasses.fields(value)}
        return {"$": "c", "n": name, "v": fields}
    raise TypeError(f"{name} is not kept in plan's cache")


def decode(text: bytes | str) -> Any:
    """The value `encode` wrote, from its JSON; a ValueError (or a KeyError, a TypeError) for anything it would not
    have written."""
    return json.loads(text, object_hook=_tagged)


def _tagged(value: dict[str, Any]) -> Any:
    """A JSON object, its members already decoded (json calls this innermost first), as the value it stands for. A map
    `encode` wrote as an object has no key starting with `$`: only a tagged value has the key `$`."""
    if "$" not in value:
        return value
    kind = value["$"]
    if kind == "c":
        return _registry()[value["n"]](**value["v"])
    if kind == "t":
        return tuple(value["v"])
    if kind == "d":
        return {key: item for key, item in value["v"]}
    if kind == "m":
        return _registry()[value["n"]].model_construct(set(value["s"]), **value["v"])
    if kind == "o":
        origins = _registry()[_ORIGINS](value["f"])
        origins.keys = dict(value["v"])
        return origins
    if kind == "f":
        return frozenset(value["v"])
    raise ValueError("not a value plan's cache writes")


def _name(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


_ORIGINS = "modules.spec.origins.Origins"
_REGISTERED: dict[str, type] = {}


def _registry() -> dict[str, type]:
    """The classes an entry may hold, by name: a plan's dataclasses and the spec's models, and nothing else (a name
    in an entry never imports or calls anything else)."""
    if not _REGISTERED:
        from fluxfleet.mock_engine import RecordedResource
        from fluxfleet.plan import FluxResource, KustomizationStep, SourceRef, StackPlan
        from modules.spec.errors import SpecIssue, _Omitted
        from modules.spec.fields import SpecModel
        from modules.spec.origins import Origins
        from policies.rules import Violation

        classes: list[type] = [RecordedResource, FluxResource, KustomizationStep, SourceRef, StackPlan]
        classes += [SpecIssue, _Omitted, Origins, Violation]
        pending: list[type] = [SpecModel]
        while pending:
            model = pending.pop()
            classes.append(model)
            pending += model.__subclasses__()
        _REGISTERED.update((_name(kind), kind) for kind in classes)
    return _REGISTERED


class PlanCache:
    """The entries of one cache directory, as one plan uses them: `hits` counts the stacks it gave (plan_fleet);
    `problem` says why the cache stopped being used (None: it was used throughout)."""

    def __init__(self, directory: Path, policy_levels: Mapping[str, str] | None = None):
        self.directory = directory
        self.policy_levels = sorted((policy_levels or {}).items())  # the order they were written in is no input
        self.hits = 0
        self.problem: str | None = None
        self._fingerprint: str | None = None
        try:
            directory.mkdir(parents=True, exist_ok=True)
            os.listdir(directory)
        except OSError as error:
            self._give_up(error)

    @property
    def usable(self) -> bool:
        return self.problem is None

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = fingerprint()
        return self._fingerprint

    def _give_up(self, error: OSError) -> None:
        if self.problem is None:
            why = error.strerror or type(error).__name__
            self.problem = f"the plan cache {self.directory} cannot be used ({why}): every stack is planned"

    def warm(self, path: Path, display: str) -> bool:
        """Whether this program has read this stack file's text before: its parse is kept. A cache that has not
        (new, or the program changed) will find nothing for any stack."""
        from modules.spec import SpecError, read_text

        try:
            text = read_text(path, display)
        except SpecError:
            return False
        return (self.directory / f"{_digest(['config', self.fingerprint, text])}.json").is_file()

    def stack_key(self, path: Path, display: str, library: Any) -> str | None:
        """The key of a stack's plan; None when its file or profiles cannot be read that far, or hold a value the
        cache does not keep (the stack is then planned, and its errors said, as without the cache)."""
        from modules.spec import SpecError, read_stack_config, read_text, report_name
        from modules.spec.config import read_config

        try:
            text = read_text(path, display)
            parse_key = _digest(["config", self.fingerprint, text])
            config = self.load(parse_key)
            if config is None:
                config = read_config(path, display, "stack file", text=text)
                self.store(parse_key, config)
            stack = read_stack_config(path, display, library, config=config)
            effective = [stack.raw, stack.profiles, stack.issues]
            effective += [stack.default_location, stack.environment, stack.provider_subscription]
            material = ["plan", self.fingerprint, self.policy_levels, report_name(path), stack.name, stack.file]
            # repr, not JSON: as fast, and a tuple, a key that is a number or a date stay what they are
            text = repr([*material, _origins_tree(stack.origins), effective])
            return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        except (SpecError, TypeError):
            return None

    def load(self, key: str) -> Any:
        """The value kept under `key`, or None when there is none that can be trusted."""
        if not self.usable:
            return None
        path = self.directory / f"{key}.json"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            if not isinstance(error, IsADirectoryError):
                self._give_up(error)
            return None
        header, _, body = data.partition(b"\n")
        try:
            expected = json.loads(header)
            if expected != {"format": FORMAT, "key": key, "sha256": hashlib.sha256(body).hexdigest()}:
                return None
            value = decode(body)
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
            return None
        with contextlib.suppress(OSError):  # another plan removed it meanwhile: this one has read it whole
            os.utime(path)  # recently used: the last to be removed
        return value

    def store(self, key: str, value: Any) -> None:
        """Keep `value` under `key`; a value of a type the cache does not keep is not kept."""
        if not self.usable:
            return
        try:
            body = json.dumps(encode(value), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        except (TypeError, ValueError, RecursionError):
            return
        header = json.dumps({"format": FORMAT, "key": key, "sha256": hashlib.sha256(body).hexdigest()}).encode()
        try:
            handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=self.directory)
            try:
                with os.fdopen(handle, "wb") as stream:
                    stream.write(header + b"\n" + body)
                os.replace(temporary, self.directory / f"{key}.json")  # whole or not at all, for a plan reading it
            except BaseException:
                os.unlink(temporary)
                raise
        except OSError as error:
            self._give_up(error)

    def evict(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        """Remove the least recently used entries past `max_entries` or `max_bytes`, and temporary files a crashed
        plan left."""
        if not self.usable:
            return
        entries: list[tuple[float, int, str]] = []
        now = time.time()
        try:
            with os.scandir(self.directory) as found:
                for entry in found:
                    try:
                        status = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue  # removed by another plan meanwhile
                    if entry.name.startswith(".tmp-"):
                        if now - status.st_mtime > STALE_TEMPORARY:
                            _remove(Path(entry.path))
                    elif entry.name.endswith(".json") and entry.is_file(follow_symlinks=False):
                        entries.append((status.st_mtime, status.st_size, entry.path))
        except OSError as error:
            self._give_up(error)
            return
        entries.sort()
        count, size = len(entries), sum(size for _, size, _ in entries)
        for _, entry_size, path in entries:
            if count <= max_entries and size <= max_bytes:
                break
            _remove(Path(path))
            count, size = count - 1, size - entry_size


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):  # another plan removed it first
        path.unlink()


def _origins_tree(origins: Any) -> Any:
    """An origins tree as nested tuples, for the key: in the order it was built, which follows the config's."""
    return (origins.file, tuple((key, _origins_tree(child)) for key, child in origins.keys.items()))
