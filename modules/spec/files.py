"""Reading a user's files: stack discovery, bounded reads, and YAML that cannot hang or exhaust the process."""

from __future__ import annotations

import difflib
import functools
import os
import re
import stat
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any


from modules.spec.errors import KEY_PART_MAX, Loc, SpecError, SpecIssue, bounded, key_path, listed, printable, shown


STACK_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")  # a Pulumi stack name
STACK_NAME_RULE = "letters, digits, '-', '_' and '.', at most 100 characters"
STACK_FILE = re.compile(rf"^Pulumi\.(?P<stack>{STACK_NAME.pattern})\.ya?ml\Z")


def report_name(path: Path) -> str:
    """The name a report gives a stack file, even an invalid one: `dev` for Pulumi.dev.yaml, else the file name."""
    match = STACK_FILE.match(path.name)
    return match["stack"] if match else path.name


def stack_name(path: Path) -> str:
    match = STACK_FILE.match(path.name)
    if not match:
        message = f"a stack file is named Pulumi.<stack>.yaml, <stack> being {STACK_NAME_RULE}"
        raise SpecError([SpecIssue(str(path), "-", message)])
    return match["stack"]


_LOOKS_LIKE_A_STACK_FILE = re.compile(r"Pulumi\.(.+)\.ya?ml", re.DOTALL)


def stack_files(stacks_dir: Path, names: Sequence[str] = ()) -> list[Path]:
    """The stack files of a command: the named stacks, or every `Pulumi.<stack>.yaml` (or `.yml`) in the directory.
    A stack may be named by its file too (`Pulumi.dev.yaml`, `stacks/Pulumi.dev.yaml`), as long as the file is in
    `stacks_dir`. A SpecError lists every problem: a name that is no stack name (or a file name that is not UTF-8),
    a stack that has no file (with the stacks there are, the closest first), a stack with both a .yaml and a .yml
    file."""
    issues: list[SpecIssue] = []
    every = _every_stack_file(stacks_dir, issues if not names else [])
    if names:
        found = {}
        for given in names:
            name = given if given in every else _stack_named(stacks_dir, given, sorted(every), issues)
            if name is None:
                continue
            if name in every:
                found.setdefault(name, every[name])
            else:
                issues.append(SpecIssue(str(stacks_dir), shown(given), _no_such_stack(name, sorted(every))))
    else:
        found = every
    for name in found:
        if all(os.path.lexists(stacks_dir / f"Pulumi.{name}.{suffix}") for suffix in ("yaml", "yml")):
            message = f"stack {name} has two files, Pulumi.{name}.yaml and Pulumi.{name}.yml: keep one"
            issues.append(SpecIssue(str(stacks_dir / f"Pulumi.{name}.yml"), "-", message))
    if issues:
        raise SpecError(issues)
    return list(found.values())


def _every_stack_file(stacks_dir: Path, issues: list[SpecIssue]) -> dict[str, Path]:
    """stack -> its file, for every stack file of the directory (a .yaml before a .yml); what cannot be a stack
    file's name goes into `issues`."""
    try:
        entries = sorted(os.listdir(stacks_dir))
    except OSError as error:
        raise SpecError([SpecIssue(str(stacks_dir), "-", f"cannot read: {error.strerror}")]) from None
    found: dict[str, Path] = {}
    for entry in entries:
        if not _LOOKS_LIKE_A_STACK_FILE.fullmatch(entry):
            continue
        # os.listdir hands a name that is not UTF-8 over with surrogates, which cannot be printed: escape it
        shown_name = printable(os.fsencode(entry).decode("utf-8", "backslashreplace"))
        if shown_name != entry:
            problem = "the file name is not UTF-8 text, or holds control characters: rename the file"
        elif not (match := STACK_FILE.match(entry)):
            problem = f"not a stack file name: Pulumi.<stack>.yaml, <stack> being {STACK_NAME_RULE}"
        else:
            found.setdefault(match["stack"], stacks_dir / entry)
            continue
        issues.append(SpecIssue(str(stacks_dir / shown_name), "-", problem))
    return found


def _stack_named(stacks_dir: Path, given: str, known: list[str], issues: list[SpecIssue]) -> str | None:
    """The stack a command-line name means: a stack name as it is, or a stack file of `stacks_dir` named by its
    file name or its path (`Pulumi.dev.yaml`, `stacks/Pulumi.dev.yaml` -> dev). None, with the problem in
    `issues`, otherwise."""
    if STACK_NAME.fullmatch(given) and not STACK_FILE.match(given):
        return given
    path = Path(given)
    if match := STACK_FILE.match(path.name):
        if path.name != given and os.path.realpath(path.parent) != os.path.realpath(stacks_dir):
            message = f"that file is not in the stacks directory {printable(str(stacks_dir))}: pass --stacks-dir"
            issues.append(SpecIssue(str(stacks_dir), shown(given), message))
            return None
        if os.path.lexists(stacks_dir / path.name):
            return match["stack"]
        issues.append(SpecIssue(str(stacks_dir), shown(given), _no_such_stack(match["stack"], known, "stack file")))
        return None
    issues.append(SpecIssue(str(stacks_dir), shown(given), f"not a stack name ({STACK_NAME_RULE})"))
    return None


def _no_such_stack(name: str, known: list[str], what: str = "stack") -> str:
    """What a user who named a stack that has no file wants to see: the stacks there are, and the closest."""
    if not known:
        return f"no such {what}: the directory has no stack files"
    close = difflib.get_close_matches(name, known, n=3) if len(name) <= KEY_PART_MAX else []
    meant = f" (did you mean {' or '.join(shown(other) for other in close)}?)" if close else ""
    return f"no such {what}{meant}; the stacks are {listed(known, most=20)}"


FILE_MAX_BYTES = 16 * 1024 * 1024  # 16 MiB: far beyond any stack file, little enough to read at once


def read_text(path: Path, file: str) -> str:
    """A user's file as text: the one way fluxfleet reads one. Nothing makes it hang or read without end: it opens
    without blocking (a FIFO), refuses anything but a regular file (a device, a directory) and a file over 16 MiB,
    and says in one line why it cannot read (a symlink loop: ELOOP)."""

    def refused(message: str) -> SpecError:
        return SpecError([SpecIssue(file, "-", message)])

    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        try:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):  # what was opened, not what the name was a moment ago
                raise refused("not a regular file")
            with os.fdopen(descriptor, "rb", closefd=False) as stream:
                data = stream.read(FILE_MAX_BYTES + 1)
        finally:
            os.close(descriptor)
    except OSError as error:
        raise refused(f"cannot read: {error.strerror or error}") from None
    if len(data) > FILE_MAX_BYTES:
        raise refused(f"larger than {FILE_MAX_BYTES // 2**20} MiB, the most fluxfleet reads")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise refused(f"not UTF-8 text (byte {error.start})") from None


YAML_MAX_VALUES = 100_000  # values of one document, an alias counted each time it is used: far beyond any stack
YAML_MAX_NODES = 20_000  # values written in one file: far beyond any stack, and parsed (in Python) in seconds
YAML_MAX_DEPTH = 64  # levels of nesting
INT_MAX_DIGITS = 4300  # int() refuses longer decimal strings (sys.get_int_max_str_digits)
_DECIMAL = re.compile(r"[-+]?[0-9_]+")


class YamlTooBig(Exception):
    """A document refused while it is parsed: at which line, and why."""

    def __init__(self, line: int, why: str):
        super().__init__(why)
        self.line, self.why = line, why


@functools.cache
def _bounded_parser(base: type) -> type:
    """ruamel's parser `base`, refusing as it parses (so before the composer, which recurses, and before any alias is
    expanded) a document of more than YAML_MAX_NODES nodes or nested deeper than YAML_MAX_DEPTH, and an integer
    too long for int()."""
    from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent, NodeEvent, ScalarEvent

    class BoundedParser(base):  # type: ignore[misc, valid-type]
        nodes = depth = 0

        def get_event(self) -> Any:
            event = super().get_event()
            if isinstance(event, CollectionEndEvent):
                self.depth -= 1
            elif isinstance(event, NodeEvent):
                self.nodes += 1
                self.depth += isinstance(event, CollectionStartEvent)
                line = event.start_mark.line + 1
                if self.nodes > YAML_MAX_NODES:
                    raise YamlTooBig(line, f"more than {YAML_MAX_NODES:,} values")
                if self.depth > YAML_MAX_DEPTH:
                    raise YamlTooBig(line, f"nested deeper than {YAML_MAX_DEPTH} levels")
                plain = isinstance(event, ScalarEvent) and event.style is None
                if plain and len(event.value) > INT_MAX_DIGITS and _DECIMAL.fullmatch(event.value):
                    raise YamlTooBig(line, f"a number of more than {INT_MAX_DIGITS:,} digits")
            return event

    return BoundedParser


def bounded_yaml(typ: str) -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ=typ, pure=True)
    yaml.Parser = _bounded_parser(yaml.Parser)
    return yaml


def yaml_round_trip(text: str) -> Any:
    """ruamel's round-trip YAML, with the same bounded parser, set to write `text`'s indentation back: for the edits
    fluxfleet makes to a user's file (a pin in fleet.yaml), which keep everything else byte for byte."""
    from ruamel.yaml.util import load_yaml_guess_indent

    yaml = bounded_yaml("rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a user's long lines
    try:
        _, sequence, offset = load_yaml_guess_indent(text)
    except Exception:  # noqa: BLE001 - a guess: the defaults below then
        sequence, offset = None, None
    yaml.indent(mapping=_mapping_indent(text), sequence=sequence or 2, offset=offset or 0)
    return yaml


def _mapping_indent(text: str) -> int:
    """How far a block mapping's keys are indented under their parent key (ruamel guesses sequences only)."""
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    for line, following in zip(lines, lines[1:], strict=False):
        step = (len(following) - len(following.lstrip())) - (len(line) - len(line.lstrip()))
        opens = line.rstrip().endswith(":") and not line.lstrip().startswith("-")
        if opens and not following.lstrip().startswith("-") and step > 0:
            return step
    return 2


def read_yaml(path: Path, file: str, where: Callable[[Loc], str] | None = None, *, text: str | None = None) -> Any:
    """A YAML (or JSON) document, or a SpecError saying in one line why it cannot be read. Hostile input ends
    fast: see read_text, _bounded_parser and check_expansion (`where` names its key paths; default: as fleet.yaml).
    `text`: the file as read_text read it, when the caller has (plan's cache keys a parse by it)."""
    from ruamel.yaml.constructor import DuplicateKeyError
    from ruamel.yaml.error import YAMLError

    where = where or (lambda loc: key_path(loc, ""))
    text = read_text(path, file) if text is None else text
    try:
        document = bounded_yaml("safe").load(text)
    except YamlTooBig as error:
        raise SpecError([SpecIssue(file, f"line {error.line}", f"not read: {error.why}")]) from None
    except YAMLError as error:
        if isinstance(error, DuplicateKeyError) and (duplicates := _duplicate_keys(text)):
            raise SpecError(
                [
                    SpecIssue(file, where(loc), f"duplicate key (first at line {first}, again at line {again})")
                    for loc, first, again in duplicates
                ]
            ) from None
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or (str(error).splitlines() or ["?"])[0]
        problem = problem.split(" with value ")[0]  # a duplicate key: not its values, which may be long or secret
        line = f"line {mark.line + 1}" if mark else "-"
        raise SpecError([SpecIssue(file, line, f"not valid YAML: {bounded(problem, 200)}")]) from None
    except (ValueError, TypeError, RecursionError) as error:  # from a constructor: a date out of range, a list key
        problem = (str(error).splitlines() or [type(error).__name__])[0]
        raise SpecError([SpecIssue(file, "-", f"not valid YAML: {bounded(problem, 200)}")]) from None
    check_expansion(document, file, where)
    return document


def _duplicate_keys(text: str) -> list[tuple[Loc, int, int]]:
    """Every key written twice in one map of `text` (which parses): its key path, the line of its first and of its
    later occurrence. Keys equal only once read (`1` and `0x1`) are not found: ruamel's own message says those.
    A node an alias shares is visited once, so this ends as fast as parsing did."""
    from ruamel.yaml.error import YAMLError
    from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

    try:
        root = bounded_yaml("safe").compose(text)
    except (YAMLError, YamlTooBig, RecursionError):
        return []
    found: list[tuple[Loc, int, int]] = []
    visited: set[int] = set()
    pending: list[tuple[Any, Loc]] = [(root, ())]
    while pending:
        node, loc = pending.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        if isinstance(node, MappingNode):
            first: dict[tuple[str, str], int] = {}
            for key, value in node.value:
                if not isinstance(key, ScalarNode):
                    continue
                line, written = key.start_mark.line + 1, (str(key.tag), key.value)
                if written in first:
                    found.append(((*loc, key.value), first[written], line))
                first.setdefault(written, line)
                pending.append((value, (*loc, key.value)))
        elif isinstance(node, SequenceNode):
            pending.extend((item, (*loc, index)) for index, item in enumerate(node.value))
    return sorted(found, key=lambda duplicate: duplicate[2])


def check_expansion(document: Any, file: str, where: Callable[[Loc], str]) -> None:
    """Refuse a document that expands (through YAML aliases: a "billion laughs") to more than YAML_MAX_VALUES values
    or nests deeper than YAML_MAX_DEPTH (a recursive alias `&a [*a]` too), at the key path where the limit is hit.
    The loader shares what an alias names, so loading was fast; this walk is iterative and counts a value each time
    it is reached, so it ends after at most YAML_MAX_VALUES of them."""
    count = 1
    pending: list[tuple[Any, Any, int]] = [(document, None, 0)]  # (value, (parent's trail, key), depth)
    while pending:
        value, trail, depth = pending.pop()
        if not isinstance(value, (Mapping, list)) or not value:
            continue
        count += len(value)
        if depth >= YAML_MAX_DEPTH or count > YAML_MAX_VALUES:
            loc: list[Any] = []
            while trail:
                trail, key = trail
                loc.append(key)
            why = f"nested deeper than {YAML_MAX_DEPTH} levels" if depth >= YAML_MAX_DEPTH else ""
            why = why or f"expands to more than {YAML_MAX_VALUES:,} values (YAML aliases?)"
            raise SpecError([SpecIssue(file, where(tuple(reversed(loc))), f"not read: {why}")])
        # a map key as text (key_path shows an int as a list index), a list index as an int
        items = ((str(k), v) for k, v in value.items()) if isinstance(value, Mapping) else enumerate(value)
        pending.extend((item, (trail, key), depth + 1) for key, item in items)


class StackFileLines:
    """Where keys are in one stack file, for annotations: the file is read and parsed once, however many keys are
    looked up. Every answer is None when the file cannot be read or parsed, or has no `config:`."""

    def __init__(self, path: Path):
        from ruamel.yaml.error import YAMLError

        try:
            self.config = bounded_yaml("rt").load(read_text(path, str(path)))["config"]
        except (SpecError, YamlTooBig, YAMLError, ValueError, TypeError, KeyError, RecursionError):
            self.config = None

    def line(self, keys: Sequence[str | int]) -> int | None:
        """The 1-based line of the deepest of `config:` → `keys` present."""
        node, line = self.config, None
        for key in keys:
            try:
                position = node.lc.key(key) if isinstance(key, str) else node.lc.item(key)
                node = node[key]
            except (AttributeError, KeyError, IndexError, TypeError):
                break
            if not position:  # a node ruamel keeps no positions for (an !!omap, a !!set)
                break
            line = position[0] + 1
        return line
