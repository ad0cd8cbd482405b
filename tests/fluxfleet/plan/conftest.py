"""What the plan tests share: the example stacks to edit, in a temporary directory."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.fixture
def example_stacks(tmp_path: Path) -> Path:
    """A copy of the example stacks, profiles and fleet.yaml."""
    copy = tmp_path / "stacks"
    shutil.copytree(ROOT / "stacks", copy)
    return copy
