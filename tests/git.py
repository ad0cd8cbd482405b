"""Real git repositories the tests build (commits, tags, branches), for checks that read a checkout at a ref."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def git(root: Path, *args: str) -> str:
    """A git command in `root` with a fixed identity; its stdout, stripped. CalledProcessError when it fails."""
    return subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def commit(root: Path, message: str) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)


def fleet_repository(root: Path) -> Path:
    """A git repository at `root` holding a project (a program, policies, dependencies, a README) and a copy of this
    repository's stacks, committed on main and tagged `base`."""
    shutil.copytree(ROOT / "stacks", root / "stacks")
    shutil.copy(ROOT / "Pulumi.yaml", root / "Pulumi.yaml")
    (root / "__main__.py").write_text("from modules.stack import build_stack\n")
    (root / "modules").mkdir()
    (root / "modules" / "stack.py").write_text("def build_stack():\n    pass\n")
    (root / "policies").mkdir()
    (root / "policies" / "__main__.py").write_text("POLICIES = []\n")
    (root / "pyproject.toml").write_text('[project]\nname = "fleet"\ndependencies = ["pulumi==3.200.0"]\n')
    (root / "README.md").write_text("# fleet\n")
    git(root, "init", "-q", "-b", "main")
    commit(root, "base")
    git(root, "tag", "base")
    return root
