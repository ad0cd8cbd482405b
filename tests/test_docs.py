"""The documentation stays true to the code: docs/config.md documents exactly the keys of the spec models, with
their defaults, every relative link of README.md and docs/ leads to a file (and heading) that exists, and every
path of the repository they name (`fluxfleet/plan/report.py`, `modules/spec/`, a module's `report.py`) exists."""

from __future__ import annotations

import fnmatch
import os
import re
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
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


# --------------------------------------------------------------------------------------------- paths


# Files the docs name that the repository lacks on purpose, each with why. Keep it tiny: anything else a document
# names as a file is one of the repository's.
NOT_IN_THE_REPOSITORY = {
    "Pulumi.dev.yml": "the file refused beside Pulumi.dev.yaml (a stack is one file)",
    "trustpolicy.json": "notation's trust policy, which a user keeps in Key Vault",
    "workspace.json": "Pulumi's own workspace file, which concurrent `pulumi stack select`s corrupt",
}
# How a name in a code span ends when it names a file even on its own (`report.py`, `fleet.yaml`).
FILE_SUFFIXES = (".py", ".yaml", ".yml", ".json", ".md", ".toml", ".cjs", ".txt")
_GLOB = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Tree:
    """The repository's files and directories (as path parts), without what .gitignore ignores."""

    root: Path
    files: frozenset[tuple[str, ...]]
    dirs: frozenset[tuple[str, ...]]
    ignored: tuple[str, ...]
    top_level: frozenset[str] = frozenset()  # the names at the root: `modules`, `Pulumi.yaml`, `.github`

    def is_ignored(self, name: str) -> bool:
        return name == ".git" or any(fnmatch.fnmatchcase(name, pattern) for pattern in self.ignored)


def repository_tree(root: Path) -> Tree:
    gitignore = root / ".gitignore"
    lines = gitignore.read_text(encoding="utf-8").splitlines() if gitignore.exists() else []
    ignored = tuple(line.strip().strip("/") for line in lines if line.strip() and not line.startswith("#"))
    tree = Tree(root, frozenset(), frozenset(), ignored)  # for is_ignored
    files, dirs = set(), set()
    for directory, subdirs, names in os.walk(root):
        base = Path(directory).relative_to(root).parts
        subdirs[:] = sorted(name for name in subdirs if not tree.is_ignored(name))
        dirs.update(base + (name,) for name in subdirs)
        files.update(base + (name,) for name in names if not tree.is_ignored(name))
    top_level = frozenset(parts[0] for parts in files | dirs)
    return Tree(root, frozenset(files), frozenset(dirs), ignored, top_level)


@dataclass(frozen=True)
class NamedPath:
    line: int
    name: str
    from_root: bool  # `modules/spec/` is the repository's; a name like `report.py` or `rollout/` may be anywhere


# A code span or a fenced block; Markdown's code spans may run over a line break.
_CODE = re.compile(r"```.*?```|`[^`]+`", re.DOTALL)
_PLACEHOLDER = re.compile(r"[<>{}…:]")  # `Pulumi.<stack>.yaml`, `https://…`, `fluxfleet:flux.…`
_MODULE_FILE = re.compile(r"(?<![\w./-])\w+\.py\b")  # `report.py` outside a code span: a layout in a fenced block


def _is_path_span(span: str, tree: Tree) -> bool:
    """A code span without spaces that names a path: one under a top-level entry of the repository, a Python name
    of a top-level package (`modules.stack.build_stack`), a directory (`plan/`) or a file name (`report.py`). Not a
    URL, a placeholder, a user's path (`~/.azure`, `/tmp/…`, `../gitops-checkout`), a runtime path (`.fluxfleet/`,
    ignored by git), an API group (`helm.toolkit.fluxcd.io/v2`), a label prefix (`kubernetes.azure.com/`) or a git
    repository (`fluxcd/flux2-kustomize-helm-example`)."""
    if _PLACEHOLDER.search(span) or span.startswith(("~", "/", "$", "..")):
        return False
    first = span.removeprefix("./").split("/")[0]
    if tree.is_ignored(first):
        return False
    if first in tree.top_level:
        return "/" in span or "." in span  # a single word (`fluxfleet`, `stacks`) is the command or a value
    if "/" not in span and "." in span and span.split(".")[0] in tree.top_level:
        return re.fullmatch(r"\w+(\.\w+)+", span) is not None
    if span.endswith("/"):
        return "." not in first or first.startswith(".")
    return span.endswith(FILE_SUFFIXES)


def named_paths(text: str, tree: Tree) -> list[NamedPath]:
    """The paths a Markdown text names: code spans that are paths, and anywhere else (prose, fenced blocks, code
    spans of commands) words that start with a top-level directory of the repository (`tests/fixtures/arm`) and
    Python files (`report.py`)."""
    top_dirs = sorted(name for name in tree.top_level if (name,) in tree.dirs)
    in_text = re.compile(rf"(?<![\w./~$-])(?:{'|'.join(map(re.escape, top_dirs))})/[^\s`'\"()\[\]:,;|#]*")
    found: list[NamedPath] = []

    def line_of(offset: int) -> int:
        return text.count("\n", 0, offset) + 1

    def scan(start: int, end: int) -> None:
        for match in in_text.finditer(text, start, end):
            name = match.group().rstrip(".")
            if not _PLACEHOLDER.search(name):
                found.append(NamedPath(line_of(match.start()), name, from_root=True))
        for match in _MODULE_FILE.finditer(text, start, end):
            found.append(NamedPath(line_of(match.start()), match.group(), from_root=False))

    position = 0
    for code in _CODE.finditer(text):
        scan(position, code.start())
        position = code.end()
        span = code.group()
        if span.startswith("```") or re.search(r"\s", span):
            scan(code.start(), code.end())
        elif _is_path_span(name := span[1:-1], tree):
            first = name.removeprefix("./").split("/")[0]
            from_root = first in tree.top_level or ("/" not in name and first.split(".")[0] in tree.top_level)
            found.append(NamedPath(line_of(code.start()), name, from_root))
    scan(position, len(text))
    return found


def _parts_match(parts: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    return len(parts) == len(pattern) and all(map(fnmatch.fnmatchcase, parts, pattern))


def _defines(module: Path, attribute: str) -> bool:
    text = module.read_text(encoding="utf-8")
    return re.search(rf"^(?:async def|def|class) {attribute}\b|^{attribute}\s*[:=]", text, re.MULTILINE) is not None


def _python_name_exists(tree: Tree, parts: tuple[str, ...]) -> bool:
    """`modules.stack.build_stack`, `modules/stack.build_stack`, `fluxfleet.cli`: a module of the repository, or a
    name that one of its modules defines."""
    dotted = (*parts[:-1], *parts[-1].split("."))
    if (*dotted[:-1], f"{dotted[-1]}.py") in tree.files or dotted in tree.dirs:
        return True
    *module, attribute = dotted
    for file in ((*module[:-1], f"{module[-1]}.py"), (*module, "__init__.py")):
        if file in tree.files and _defines(tree.root.joinpath(*file), attribute):
            return True
    return False


def path_exists(tree: Tree, named: NamedPath) -> bool:
    """A path from the root must be there (a glob must match something); any other name must be the end of a path
    of the repository (`report.py`, `rollout/locks.py`). A trailing slash asks for a directory."""
    name = named.name.removeprefix("./")
    pattern = tuple(name.rstrip("/").split("/"))
    pool = tree.dirs if name.endswith("/") else tree.files | tree.dirs
    if named.from_root:
        if any(_parts_match(parts, pattern) for parts in pool):
            return True
        return not _GLOB.search(name) and "." in pattern[-1] and _python_name_exists(tree, pattern)
    return any(_parts_match(parts[-len(pattern) :], pattern) for parts in pool if len(parts) >= len(pattern))


def path_check(document: Path, tree: Tree) -> tuple[list[NamedPath], list[str]]:
    """The paths a document names, and one line per path that does not exist: document, line, name."""
    named = [
        path
        for path in named_paths(document.read_text(encoding="utf-8"), tree)
        if path.name not in NOT_IN_THE_REPOSITORY
    ]
    label = document.relative_to(tree.root).as_posix()
    missing = []
    for path in named:
        if path_exists(tree, path):
            continue
        if _GLOB.search(path.name):
            why = "matches nothing in the repository"
        elif path.from_root:
            why = "no such path in the repository"
        else:
            why = "nothing of that name in the repository"
        missing.append(f"{label}:{path.line}: `{path.name}`: {why}")
    return named, missing


@pytest.fixture(scope="module")
def tree() -> Tree:
    return repository_tree(ROOT)


@pytest.mark.parametrize("document", DOC_FILES, ids=[str(path.relative_to(ROOT)) for path in DOC_FILES])
def test_every_path_the_docs_name_exists(tree, document):
    _, missing = path_check(document, tree)
    assert not missing, "paths named that the repository lacks:\n" + "\n".join(missing)


def test_the_path_check_reads_the_paths_the_docs_name(tree):
    """It cannot pass for finding nothing: the docs name the packages, the modules and the workflows."""
    named = {path.name for document in DOC_FILES for path in path_check(document, tree)[0]}
    assert len(named) >= 50, sorted(named)
    for expected in (
        "modules/spec/",
        "fluxfleet/plan/",
        ".github/workflows/",
        "benchmarks/plan_fleet.py",
        "api_scan.py",
    ):
        assert expected in named


def test_what_is_not_in_the_repository_is_named_and_absent(tree):
    """Each exception is still needed: a document names it, and no file of that name exists."""
    text = "\n".join(document.read_text(encoding="utf-8") for document in DOC_FILES)
    for name in NOT_IN_THE_REPOSITORY:
        assert f"`{name}`" in text, f"{name} is named by no document: drop it from NOT_IN_THE_REPOSITORY"
        assert not path_exists(tree, NamedPath(0, name, from_root=False)), f"{name} exists: drop it"


def test_the_path_check_catches_a_missing_path(tmp_path):
    (tmp_path / ".gitignore").write_text(".venv/\n.fluxfleet/\n", encoding="utf-8")
    for file in ("pkg/__init__.py", "pkg/mod.py", "pkg/sub/report.py", "stacks/Pulumi.dev.yaml", ".venv/lib/hidden.py"):
        (tmp_path / file).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / file).write_text("def thing():\n    pass\n", encoding="utf-8")
    doc = tmp_path / "docs" / "page.md"
    doc.parent.mkdir()
    doc.write_text(
        "# Page\n"
        "| `pkg/mod.py` | `report.py`, `sub/report.py`, `pkg/`, `stacks/Pulumi.*.yaml`, `pkg.mod.thing`, `sub/` |\n"
        "Not paths: `https://example.com/pkg/gone.py` `~/.azure` `/tmp/x.json` `.fluxfleet/runs/<run-id>.json`\n"
        "`Pulumi.<stack>.yaml` `kubernetes.azure.com/` `helm.toolkit.fluxcd.io/v2` `fluxcd/flux2-kustomize-helm-example`\n"
        "`../checkout/x.yaml` `pulumi up -s STACK` `Pulumi.dev.yml` [link](https://host/pkg/gone.py)\n"
        "Missing: `pkg/gone.py` `gone.py` `hidden.py`\n"
        "`stacks/Pulumi.*.yml` `pkg/mod.other` in prose pkg/old/ and\n"
        "```sh\n"
        "run pkg/mod.py then pkg/gone/x.py, mod.py and old.py\n"
        "```\n",
        encoding="utf-8",
    )
    named, missing = path_check(doc, repository_tree(tmp_path))
    assert missing == [
        "docs/page.md:6: `pkg/gone.py`: no such path in the repository",
        "docs/page.md:6: `gone.py`: nothing of that name in the repository",
        "docs/page.md:6: `hidden.py`: nothing of that name in the repository",
        "docs/page.md:7: `stacks/Pulumi.*.yml`: matches nothing in the repository",
        "docs/page.md:7: `pkg/mod.other`: no such path in the repository",
        "docs/page.md:7: `pkg/old/`: no such path in the repository",
        "docs/page.md:9: `pkg/gone/x.py`: no such path in the repository",
        "docs/page.md:9: `old.py`: nothing of that name in the repository",
    ]
    assert {path.name for path in named} == {
        *("pkg/mod.py", "report.py", "sub/report.py", "pkg/", "stacks/Pulumi.*.yaml", "pkg.mod.thing", "sub/"),
        *("pkg/gone.py", "gone.py", "hidden.py", "stacks/Pulumi.*.yml", "pkg/mod.other", "pkg/old/", "pkg/gone/x.py"),
        *("mod.py", "old.py"),
    }
