"""Markdown rendered as GitHub renders job summaries and comments (markdown-it-py's GFM-like preset: CommonMark, tables,
strikethrough, bare links), and a hostile message to feed every Markdown report."""

from __future__ import annotations

from markdown_it import MarkdownIt

from fluxfleet.markdown import ZWJ

# What a compliance message from Azure can carry: cluster and git content, as written by anyone who can push.
HOSTILE = (
    "<img src=x onerror=alert(1)> [click](http://evil) ![x](http://evil/p.png) @org/team | x | #123 "
    "*bold* `tick` ~~gone~~ www.evil.com <b>raw</b> &amp;\n- forged line"
)
# How each part of it must read once rendered: as written, as text (HTML-escaped where it holds HTML).
SHOWN = (
    "&lt;img src=x onerror=alert(1)&gt;",
    "[click](http://evil)",
    "![x](http://evil/p.png)",
    f"@{ZWJ}org/team",
    "| x |",
    f"#{ZWJ}123",
    "*bold* `tick` ~~gone~~ www.evil.com &lt;b&gt;raw&lt;/b&gt; &amp;amp;\\n- forged line",
)
_GFM = MarkdownIt("gfm-like")


def rendered(markdown: str) -> str:
    return _GFM.render(markdown)


def assert_inert(markdown: str) -> str:
    """The HTML of `markdown`, after checking that HOSTILE in it made no tag, link or image, pinged no one and forged
    no line: each part of it reads as written."""
    html = rendered(markdown)
    for tag in ("<img", "<a ", "<b>", "<em>", "<del>", "<s>"):
        assert tag not in html, (tag, html)
    for part in SHOWN:
        assert part in html, (part, html)
    return html
