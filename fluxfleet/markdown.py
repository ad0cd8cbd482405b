"""Text from elsewhere (Azure's messages, which quote cluster and git content; names from files) made inert in the
Markdown reports: CI job summaries and pull-request comments, rendered by GitHub (GFM) with the reader's session.

`text` is for inline text, in a table cell or after a list marker; `code` for a code span; `mermaid_label` for a label
inside a Mermaid diagram. Every Markdown report (plan, rollout, status, drift, inventory, promote --status,
affected) writes text from elsewhere through these, and nothing else.
"""

from __future__ import annotations

import re

from modules.spec import printable

ZWJ = "\u200d"  # after `@` and `#`: GitHub then sees no @mention to notify and no #123 to cross-reference

# Every character that opens HTML or an entity, a link or an image (`[`, and `!` or `(` mean nothing without it),
# emphasis, code, strikethrough or a table cell, and the backslash itself: each escaped with a backslash, which
# CommonMark allows before any ASCII punctuation. `@` is also followed by a zero-width joiner.
_SPECIAL = re.compile(r"[\\`*_~\[\]<>&|@]")
_AT_START = re.compile(r"^(?:[-+#](?=[ \t])|\d{1,9}(?=\.[ \t]))")  # a list item, a heading, an ordered item
_ISSUE = re.compile(r"#(?=\d)")  # GitHub links #123 to an issue and notes the mention there
_AUTOLINK = re.compile(r"(?i)(?<=[a-z0-9]):(?=//)|(?<=\bwww)\.")  # GFM links a bare http://... and www....


def text(value: str) -> str:
    """`value` as inert inline Markdown: one line (control characters and newlines shown as `\\x1b`, `\\n`), no HTML,
    no link, image, emphasis or code, no table cell ended, no block started, no one @mentioned, no issue referenced,
    no bare URL made a link. It reads as written once rendered."""
    escaped = _SPECIAL.sub(_escaped, printable(value))
    escaped = _AUTOLINK.sub(lambda match: "\\" + match.group(), escaped)
    escaped = _ISSUE.sub("#" + ZWJ, escaped)
    return _AT_START.sub(
        lambda match: match.group() + "\\" if match.group()[0].isdigit() else "\\" + match.group(), escaped
    )


def _escaped(match: re.Match[str]) -> str:
    return f"\\@{ZWJ}" if match.group() == "@" else "\\" + match.group()


def code(value: str) -> str:
    """`value` as a code span: one line, fenced by more backticks than it holds in a row, `|` escaped so that a
    table cell holds it (GitHub shows `|` in a table; elsewhere the backslash stays visible)."""
    content = printable(value).replace("|", "\\|")
    if not content:
        return ""
    fence = "`" * (max((len(run) for run in re.findall(r"`+", content)), default=0) + 1)
    padded = content[0] == "`" or content[-1] == "`" or (content[0] == " " and content[-1] == " ")
    pad = " " if padded else ""
    return f"{fence}{pad}{content}{pad}{fence}"


def mermaid_label(value: str) -> str:
    """`value` inside a quoted Mermaid label: no quote ends it, no angle bracket opens HTML (Mermaid's entity codes)."""
    return printable(value).replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
