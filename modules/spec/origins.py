"""Where each value of a stack's effective config was written: its stack file or one of its profiles.

A stack's config is its profiles merged in order, then its stack file (see profiles.py). An error, a policy
violation or a SARIF result names the file that wrote the offending value, so that a mistake in a profile that
500 stacks use is one mistake, in the profile, not 500 in the stack files.
"""

from __future__ import annotations

from typing import Any

from modules.spec.errors import Loc, key_path


class Origins:
    """A tree beside the merged config: each key that was written, with the file that wrote it.

    A map that several files wrote into belongs to the last of them (the stack file when it wrote any of it); a
    list or a scalar belongs to the one file that wrote it whole (lists replace, they do not merge)."""

    __slots__ = ("file", "keys")

    def __init__(self, file: str):
        self.file = file
        self.keys: dict[Any, Origins] = {}

    def file_of(self, loc: Loc) -> str:
        """The file that wrote the value at `loc`, or its deepest written parent (a key that is missing, an item of
        a list)."""
        node = self
        for key in loc:
            child = node.keys.get(key) if isinstance(key, str) else None
            if child is None:
                break
            node = child
        return node.file

    def missing_partner(self, present: Loc, missing: Loc, rule: str) -> tuple[str, str]:
        """The file and message of a rule that pairs values (`rule`: "httpsUser and httpsKey go together") when the
        value at `present` is set and the one at `missing` is not. Written in another file than the stack's (a
        profile), the message names both files and says where the missing value goes: the stack file, under its key
        path. (keys without the namespace)"""
        written = self.file_of(present)
        if written == self.file:
            return self.file, rule
        message = (
            f"{present[-1]} is set in {written} ({key_path(present)}) but {missing[-1]} is missing: add it to "
            f"{self.file} under {key_path(missing)} ({rule})"
        )
        return self.file, message
