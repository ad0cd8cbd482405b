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


CLI_FUNCTION_MAX_LINES = 40  # a command line function declares, calls and reports; longer is work in the wrong place


def function_bodies(path: Path) -> list[tuple[str, int]]:
    """Each function of `path` and the lines of its body: from its first statement after the docstring to its
    end (the signature that declares options does not count)."""
    bodies = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            statements = node.body
            if isinstance(statements[0], ast.Expr) and isinstance(statements[0].value, ast.Constant):
                statements = statements[1:] or statements  # the docstring
            bodies.append((node.name, node.end_lineno - statements[0].lineno + 1))
    return bodies


def test_no_function_of_the_command_line_is_over_forty_lines():
    modules = sources("fluxfleet/cli")
    assert len(modules) >= 8  # a module per command
    long = [
        f"{path.relative_to(ROOT)}: {name}: {lines} lines"
        for path in modules
        for name, lines in function_bodies(path)
        if lines > CLI_FUNCTION_MAX_LINES
    ]
    assert long == []


def test_the_length_check_counts_the_body_not_the_signature(tmp_path):
    module = tmp_path / "command.py"
    options = "".join(f"    option{n}: int = {n},\n" for n in range(50))
    body = "".join(f"    x{n} = {n}\n" for n in range(41))
    module.write_text(f"def command(\n{options}) -> None:\n    '''Doc.'''\n{body}")
    assert function_bodies(module) == [("command", 41)]
