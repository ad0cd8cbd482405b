"""The table of Kubernetes versions AKS supports: its shape, its age notice, and the examples it governs."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from modules.kubernetes_versions import (
    AKS_SUPPORTED_MINORS,
    AS_OF,
    NEWEST,
    OLDEST,
    STALE_AFTER,
    stale_notice,
    supported_window,
)
from modules.spec import load_stack_file, stack_files
from policies.rules import FLUX_MIN_KUBERNETES, minor_version
from tests.conftest import ROOT, STANDALONE_STACKS


def test_the_table_is_one_window_above_the_flux_floor():
    assert list(AKS_SUPPORTED_MINORS) == [(1, minor) for minor in range(OLDEST[1], NEWEST[1] + 1)]
    assert OLDEST > FLUX_MIN_KUBERNETES
    assert supported_window() == "1.34 to 1.37"


@pytest.mark.parametrize(
    ("days", "stale"), [(0, False), (STALE_AFTER.days, False), (STALE_AFTER.days + 1, True), (400, True)]
)
def test_the_notice_comes_once_the_table_is_over_six_months_old(days, stale):
    notice = stale_notice(AS_OF + timedelta(days=days))
    if not stale:
        assert notice is None
        return
    assert notice == (
        "notice: the supported Kubernetes versions table is from 2026-11-29, more than six months old: update "
        "modules/kubernetes_versions.py from https://learn.microsoft.com/azure/aks/supported-kubernetes-versions"
    )
    assert "\n" not in notice


def test_a_date_before_the_table_is_no_notice():
    assert stale_notice(date(2026, 1, 1)) is None


@pytest.mark.parametrize("directory", [ROOT / "stacks", STANDALONE_STACKS], ids=["stacks", "standalone"])
def test_every_aks_example_pins_a_supported_version(directory: Path):
    pinned = {}
    for path in stack_files(directory, ()):
        cluster = load_stack_file(path).spec.cluster
        if cluster.kind == "aks":
            pinned[path.name] = cluster.kubernetes_version
    assert pinned, f"no AKS example in {directory}"
    assert all(minor_version(version) in AKS_SUPPORTED_MINORS for version in pinned.values()), pinned
