"""The house's floors: the Pulumi program (modules/, policies/) never imports the command's packages (fluxfleet/),
and nothing but the command line (fluxfleet/cli/) imports typer or the command line itself, so every command's
work can be called and tested without it. Imports inside functions count: they are imports all the same."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at any depth of the file (`from a.b import c` -> a.b)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def sources(*packages: str) -> list[Path]:
    return sorted(path for package in packages for path in (ROOT / package).rglob("*.py"))


def offending(paths: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in paths
        for name in sorted(imported_modules(path))
        if any(name == top or name.startswith(f"{top}.") for top in forbidden)
    ]


def test_the_program_never_imports_the_commands():
    assert offending(sources("modules", "policies"), ("fluxfleet", "typer")) == []
    assert offending([ROOT / "__main__.py"], ("fluxfleet", "typer")) == []


def test_only_the_command_line_imports_typer_or_the_command_line():
    below = [path for path in sources("fluxfleet") if (ROOT / "fluxfleet" / "cli") not in path.parents]
    assert below, "no command package found"
    assert offending(below, ("typer", "click", "fluxfleet.cli")) == []


def test_the_check_sees_an_import_inside_a_function(tmp_path):
    module = tmp_path / "work.py"
    module.write_text("def run():\n    from fluxfleet.cli.output import stderr\n    import typer\n")
    assert imported_modules(module) == {"fluxfleet.cli.output", "typer"}
