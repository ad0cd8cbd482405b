"""fluxfleet/fleet_file.py: one writer of fleet.yaml at a time, each editing the file as it is under the lock, the
file replaced whole at its symlink's target."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fluxfleet import fleet_file
from fluxfleet.cli import app
from fluxfleet.fleet_file import FleetFileBusy, rewrite_fleet, writer_lock
from tests.conftest import ROOT


@pytest.fixture
def linked(tmp_path: Path) -> tuple[Path, Path]:
    """stacks/fleet.yaml, a symlink to shared/fleet.yaml."""
    target = tmp_path / "shared" / "fleet.yaml"
    target.parent.mkdir()
    target.write_text("stages:\n  - {name: dev, stacks: [dev]}\n")
    link = tmp_path / "stacks" / "fleet.yaml"
    link.parent.mkdir()
    link.symlink_to(target)
    return link, target


def test_each_edit_sees_what_the_writer_before_it_wrote(linked):
    link, target = linked
    rewrite_fleet(link, "stacks/fleet.yaml", lambda text: text + "# one\n", "test")
    rewrite_fleet(target, "shared/fleet.yaml", lambda text: text + "# two\n", "test")
    assert target.read_text().endswith("# one\n# two\n") and link.is_symlink()
    assert sorted(path.name for path in target.parent.iterdir()) == [".fluxfleet", "fleet.yaml"]  # no temporary left


def test_an_edit_that_changes_nothing_writes_nothing(linked):
    _, target = linked
    inode = target.stat().st_ino
    assert rewrite_fleet(target, "shared/fleet.yaml", lambda text: None, "test") is None
    assert rewrite_fleet(target, "shared/fleet.yaml", lambda text: text, "test") is None
    assert target.stat().st_ino == inode


def test_a_writer_through_the_link_waits_for_one_through_the_target_then_says_who_holds_it(linked, monkeypatch):
    link, target = linked
    before = target.read_text()
    monkeypatch.setattr(fleet_file, "LOCK_TIMEOUT", 0.2)
    with writer_lock(target).held("process 4242 (promote platform)"), pytest.raises(FleetFileBusy) as caught:
        rewrite_fleet(link, "stacks/fleet.yaml", lambda text: text + "# lost?\n", "test")
    assert str(caught.value) == "waited 0.2s for process 4242 (promote platform) to finish writing it: try again"
    assert target.read_text() == before


def test_promote_while_another_writer_holds_fleet_yaml_is_one_line_and_exit_1(tmp_path, monkeypatch):
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    monkeypatch.chdir(tmp_path)
    fleet = tmp_path / "stacks" / "fleet.yaml"
    before = fleet.read_text()
    monkeypatch.setattr(fleet_file, "LOCK_TIMEOUT", 0.2)
    with writer_lock(fleet).held("process 4242 (rollback of pins)"):
        result = CliRunner().invoke(app, ["promote", "platform", "--to", "v1.4.0"])
    assert result.exit_code == 1 and fleet.read_text() == before and result.stdout == ""
    assert result.stderr == (
        "fluxfleet promote: stacks/fleet.yaml: not written: waited 0.2s for process 4242 (rollback of pins) to finish "
        "writing it: try again\n"
    )
