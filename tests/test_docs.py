"""The documentation stays true to the code: docs/config.md documents exactly the keys of the spec models, with
their defaults, and every relative link of README.md and docs/ leads to a file (and heading) that exists."""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Union

import pytest
from pydantic import BaseModel

from modules.spec.fleet import FleetSpec, PinSpec
from modules.spec.profiles import PROFILES_KEY
from modules.spec.fields import SpecModel, parse_duration
from modules.spec.stack import StackSpec

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CONFIG_DOC = DOCS / "config.md"
# The heading of each file's top-level table; the nested maps' headings are their key paths (`cluster.nodePools[]`).
ROOTS = {StackSpec: "fluxfleet:", FleetSpec: "fleet.yaml"}
# Keys of the top level that no model holds: `profiles` is taken out of a stack's config before validation.
EXTRA_KEYS = {StackSpec: {PROFILES_KEY}, FleetSpec: set()}


# --------------------------------------------------------------------------------------------- the models


def _unwrap(annotation: Any) -> Any:
    """`X | None`, `Annotated[X, ...]` -> X."""
    while (origin := typing.get_origin(annotation)) in (Union, types.UnionType, Annotated):
        args = typing.get_args(annotation)
        annotation = args[0] if origin is Annotated else next(a for a in args if a is not type(None))
    return annotation


def _nested(annotation: Any) -> tuple[str, type[SpecModel]] | None:
    """The model a field holds, and how its key path goes on: `.field`, `[]` (a list of), `.<name>` (a map of)."""
    annotation = _unwrap(annotation)
    origin = typing.get_origin(annotation)
    if origin in (list, dict):
        item = _unwrap(typing.get_args(annotation)[-1])
        suffix = "[]" if origin is list else ".<name>"
        return (suffix, item) if isinstance(item, type) and issubclass(item, SpecModel) else None
    return ("", annotation) if isinstance(annotation, type) and issubclass(annotation, SpecModel) else None


def model_sections(root: type[SpecModel]) -> Iterator[tuple[str, type[SpecModel]]]:
    """Each map of a config file, as (key path, model): the root, then every nested model, depth first."""

    def walk(path: str, model: type[SpecModel]) -> Iterator[tuple[str, type[SpecModel]]]:
        yield path or ROOTS[root], model
        for field in model.model_fields.values():
            if nested := _nested(field.annotation):
                suffix, child = nested
                yield from walk(f"{path}.{field.alias}{suffix}" if path else f"{field.alias}{suffix}", child)

    yield from walk("", root)


def user_keys(model: type[BaseModel]) -> dict[str, Any]:
    """The keys of a model as users write them (SpecModel's camelCase aliases), with their fields."""
    return {field.alias or name: field for name, field in model.model_fields.items()}


SECTIONS = [(path, model, root) for root in ROOTS for path, model in model_sections(root)]


# --------------------------------------------------------------------------------------------- the document


def _code_spans(text: str) -> list[str]:
    return re.findall(r"`([^`]+)`", text)


def doc_tables(text: str) -> dict[str, list[list[str]]]:
    """Heading (its first code span) -> the body rows of the first table under it, as cells."""
    tables: dict[str, list[list[str]]] = {}
    heading = None
    for line in text.splitlines():
        if line.startswith("#"):
            spans = _code_spans(line)
            heading = spans[0] if spans else None
            continue
        if heading is None or not line.startswith("|"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[0] == "key" or set(cells[0]) <= {"-", ":"}:
            continue  # the header row and the separator
        tables.setdefault(heading, []).append(cells)
    return tables


@pytest.fixture(scope="module")
def tables() -> dict[str, list[list[str]]]:
    return doc_tables(CONFIG_DOC.read_text(encoding="utf-8"))


def _rows(tables: dict[str, list[list[str]]], path: str) -> dict[str, list[str]]:
    assert path in tables, f"docs/config.md has no table under a heading `{path}`"
    rows = {}
    for cells in tables[path]:
        for key in _code_spans(cells[0]):
            rows[key] = cells
    return rows


# --------------------------------------------------------------------------------------------- config.md


def test_the_walk_reaches_every_map_of_the_spec():
    """The test below covers what users write: nested maps, lists of maps and maps of maps are all found."""
    paths = [path for path, _, _ in SECTIONS]
    for expected in (
        "fluxfleet:",
        "cluster.nodePools[]",
        "flux.configurations.<name>.git",
        "flux.configurations.<name>.azureBlob.managedIdentity",
        "flux.configurations.<name>.kustomizations.<name>.postBuild.substituteFrom[]",
        "fleet.yaml",
        "gate",
        "stages[]",
        "stages[].pins.<name>",
    ):
        assert expected in paths


@pytest.mark.parametrize(("path", "model", "root"), SECTIONS, ids=[path for path, _, _ in SECTIONS])
def test_config_doc_lists_exactly_the_keys_of_each_model(tables, path, model, root):
    """Every key of the model is documented under its key path, and nothing documented there is not a key."""
    expected = set(user_keys(model)) | (EXTRA_KEYS[root] if model is root else set())
    documented = set(_rows(tables, path))
    assert not expected - documented, f"`{path}`: keys missing from docs/config.md: {sorted(expected - documented)}"
    assert not documented - expected, (
        f"`{path}`: docs/config.md documents keys the code lacks: {sorted(documented - expected)}"
    )


def _default_shown(default: Any, cell: str) -> bool:
    spans = _code_spans(cell)
    if isinstance(default, bool):
        return ("true" if default else "false") in spans
    if isinstance(default, int):
        if str(default) in spans:
            return True
        for span in spans:  # a duration, written as users write one (`15m` for 900)
            try:
                if parse_duration(span) == default:
                    return True
            except ValueError:
                continue
        return False
    if isinstance(default, str):
        return default in spans
    if isinstance(default, list):
        return all(str(item) in spans for item in default)
    raise AssertionError(f"no rule for a default of type {type(default).__name__}")


@pytest.mark.parametrize(("path", "model", "root"), SECTIONS, ids=[path for path, _, _ in SECTIONS])
def test_config_doc_states_each_default_of_the_models(tables, path, model, root):
    """The default column says `required` for a required key and shows the model's default value otherwise (empty
    defaults and nested models' defaults are described in words, and not compared)."""
    rows = _rows(tables, path)
    for key, field in user_keys(model).items():
        cells = rows.get(key)
        if cells is None:
            continue  # reported by the test above
        assert len(cells) >= 3, f"`{path}`: the row of `{key}` has no default column"
        default_cell = cells[2]
        if field.is_required():
            assert "required" in default_cell, f"`{path}.{key}` is required; docs/config.md says {default_cell!r}"
            continue
        default = field.get_default(call_default_factory=True)
        if default is None or isinstance(default, BaseModel) or default in ([], {}):
            continue
        assert _default_shown(default, default_cell), (
            f"`{path}.{key}` defaults to {default!r}; docs/config.md says {default_cell!r}"
        )


def test_doc_tables_are_found_only_under_code_headings():
    """The parser reads a table under the heading's first code span, and a table under a plain heading is nobody's."""
    text = "## Plain\n| key | v |\n|---|---|\n| `x` | 1 |\n### `a.b`\n| key | v |\n|---|---|\n| `c` | 2 |\n"
    assert doc_tables(text) == {"a.b": [["`c`", "2"]]}


def test_a_missing_key_is_caught():
    """The check fails when the document lacks a key: a pins table without `tag` is not the PinSpec's."""
    text = "### `stages[].pins.<name>`\n| key | value | default |\n|---|---|---|\n| `commit` | x | none |\n| `branch` | x | none |\n"
    documented = set(_rows(doc_tables(text), "stages[].pins.<name>"))
    [pin] = [model for path, model, _ in SECTIONS if path == "stages[].pins.<name>"]
    assert pin is PinSpec
    assert set(user_keys(pin)) - documented == {"tag", "digest"}


def test_a_wrong_default_is_caught():
    assert _default_shown(900, "`15m`")
    assert not _default_shown(900, "`10m`")
    assert _default_shown(True, "`true`")
    assert not _default_shown(False, "`true`")
    assert not _default_shown("Stable", "`Preview`")


# --------------------------------------------------------------------------------------------- links


DOC_FILES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def links(text: str) -> list[str]:
    """The targets of the Markdown links of a text, outside code blocks and code spans."""
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    text = re.sub(r"`[^`\n]*`", "", text)
    return _LINK.findall(text)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    return {slug(line.lstrip("#")) for line in text.splitlines() if re.match(r"#{1,6} ", line)}


def test_the_docs_exist_and_readme_points_to_them():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = links(readme)
    assert "docs/design.md" in targets
    assert "docs/config.md" in targets
    assert "../shared" not in readme, "README.md points outside the repository: docs/ is the truth"


def broken_links(document: Path) -> list[str]:
    """The relative links of a Markdown file that lead nowhere: no such file, or no such heading in it."""
    broken = []
    for target in links(document.read_text(encoding="utf-8")):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:: not a file of the repository
            continue
        file, _, anchor = target.partition("#")
        path = (document.parent / file).resolve() if file else document
        if not path.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target} (no such heading in {path.name})")
    return broken


@pytest.mark.parametrize("document", DOC_FILES, ids=[str(path.relative_to(ROOT)) for path in DOC_FILES])
def test_every_relative_link_leads_to_a_file_that_exists(document):
    broken = broken_links(document)
    assert not broken, f"{document.relative_to(ROOT)}: broken links: {broken}"


def test_the_link_check_catches_a_broken_link(tmp_path):
    (tmp_path / "a.md").write_text("# Title\n\n## Some `code` heading\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](a.md#some-code-heading) [gone](b.md) [no heading](a.md#other) [self](#title-here) "
        "[web](https://example.com) `[not](a link)`\n\n# Title here\n",
        encoding="utf-8",
    )
    assert broken_links(page) == ["b.md (no such file)", "a.md#other (no such heading in a.md)"]
