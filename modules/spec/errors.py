"""How a problem with input is told: one bounded, printable line naming the file and the key path."""

from __future__ import annotations

import re
import reprlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modules.spec.credentials import MASK, credential_kind

NAMESPACE = "fluxfleet"  # the config namespace of the project
Loc = tuple[str | int, ...]  # a key path as keys and list indexes


# --------------------------------------------------------------------------------------------- errors


# Characters that can move a terminal's cursor, clear it, start a new (forged) log line or reorder what is shown
# (C0 and C1 controls, DEL, Unicode line separators and bidirectional overrides), and lone surrogates (a file name
# that is not UTF-8, as os.listdir gives it), which cannot be printed at all.
UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
UNPRINTABLE_IN_LINES = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
SHOWN_MAX = 60  # characters of a value quoted in a message


def printable(text: str, *, lines: bool = False) -> str:
    """`text` safe to print: every control character escaped (`\\x1b`); with `lines`, newlines and tabs kept."""
    pattern = UNPRINTABLE_IN_LINES if lines else UNPRINTABLE
    return pattern.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), text)


class _Shown(reprlib.Repr):
    """A bounded repr for messages: long strings cut with their length, containers a few items deep, control
    characters escaped, and a Pulumi secure value never shown, not even its ciphertext, nor a string that looks like
    a credential (`[secret]`)."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel, self.maxdict, self.maxlist, self.maxtuple, self.maxset = 3, 4, 4, 4, 4
        self.maxother = SHOWN_MAX

    def repr_str(self, value: str, level: int) -> str:
        if credential_kind(value):
            return MASK
        if len(value) <= SHOWN_MAX:
            return repr(value)
        return f"{value[: SHOWN_MAX - 1]!r}… ({len(value):,} characters)"

    def repr_dict(self, value: dict, level: int) -> str:
        if is_pulumi_secure(value):
            return "a Pulumi secret (not shown)"
        return super().repr_dict(value, level)

    def repr_int(self, value: int, level: int) -> str:
        return str(value) if value.bit_length() < 200 else f"an integer of {value.bit_length():,} bits"


def is_pulumi_secure(value: Any) -> bool:
    """`{secure: ...}`: a value `pulumi config set --secret` wrote, encrypted."""
    return isinstance(value, Mapping) and len(value) == 1 and "secure" in value


def shown(value: Any) -> str:
    """A value as a message may quote it: bounded in length, escaped, and never a secret."""
    return printable(_Shown().repr(value))


def bounded(text: str, limit: int) -> str:
    """`text` escaped (see printable) and cut to about `limit` characters, saying how long it was."""
    escaped = printable(text[: limit + 1])
    if len(text) <= limit and len(escaped) <= limit:
        return escaped
    return f"{escaped[: limit - 1]}… ({len(text):,} characters)"


def listed(names: Iterable[str], most: int = 10) -> str:
    """'a, b, c' for a message: each name bounded, at most `most` of them, then how many in all."""
    names = list(names)
    text = ", ".join(bounded(str(name), 40) for name in names[:most])
    return text + (f", … ({len(names):,} in all)" if len(names) > most else "")


KEY_PART_MAX = 80  # characters of one key of a key path
ISSUE_PART_MAX = 500  # characters of each part of an error line: file, key path, message
MAX_ISSUES = 1000  # errors reported for one file; the rest are counted in one more line


@dataclass(frozen=True)
class SpecIssue:
    file: str
    path: str
    message: str

    def __str__(self) -> str:  # one line of bounded length, whatever the input was
        return ": ".join(bounded(part, ISSUE_PART_MAX) for part in (self.file, self.path, self.message))


@dataclass(frozen=True)
class _Omitted(SpecIssue):
    """The issues of a file past the first MAX_ISSUES: "... and N more"."""

    count: int = 0


class SpecError(Exception):
    """Invalid stack input. `issues` holds every problem found in one file: at most MAX_ISSUES of a file, then one
    "... and N more" (counts carried over when a SpecError's issues are raised again in another)."""

    def __init__(self, issues: Sequence[SpecIssue]):
        self.issues: list[SpecIssue] = []
        kept: dict[str, int] = {}
        omitted: dict[str, int] = {}
        for issue in issues:
            if isinstance(issue, _Omitted) or kept.get(issue.file, 0) >= MAX_ISSUES:
                omitted[issue.file] = omitted.get(issue.file, 0) + (issue.count if isinstance(issue, _Omitted) else 1)
            else:
                kept[issue.file] = kept.get(issue.file, 0) + 1
                self.issues.append(issue)
        self.issues += [_Omitted(file, "-", f"... and {count:,} more", count) for file, count in omitted.items()]
        super().__init__("\n".join(str(issue) for issue in self.issues))


def key_path(loc: Sequence[Any], namespace: str = NAMESPACE) -> str:
    """('flux', 'configurations', 'demo', 'dependsOn', 0) -> 'fluxfleet:flux.configurations.demo.dependsOn[0]';
    with no namespace (a file of fluxfleet's own, such as fleet.yaml): 'stages[1].stacks[0]'.
    An int is a list index; a map key comes as text, even one YAML read as a number (a configuration `1:` is
    'configurations.1'). Each key is escaped and cut (a key is whatever the file holds: 5 MB, or a terminal escape)."""
    text = bounded(namespace, KEY_PART_MAX)
    for index, part in enumerate(loc):
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        elif index == 0:
            text += (":" if namespace else "") + bounded(str(part), KEY_PART_MAX)
        else:
            text += "." + bounded(str(part), KEY_PART_MAX)
    return text


def key_path_parts(path: str) -> list[str | int]:
    """The inverse of key_path: 'fluxfleet:flux.configurations.demo.dependsOn[0]' -> ['fluxfleet:flux', ..., 0]."""
    parts: list[str | int] = []
    for token in re.findall(r"\[(\d+)\]|([^.\[\]]+)", path):
        parts.append(int(token[0]) if token[0] else token[1])
    return parts
