"""Real git repositories the tests build (commits, tags, branches), for checks that read a checkout at a ref."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git(root: Path, *args: str) -> str:
    """A git command in `root` with a fixed identity; its stdout, stripped. CalledProcessError when it fails."""
    return subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
