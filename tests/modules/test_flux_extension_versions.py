"""The microsoft.flux release table: every hop of its upgrade path, the supported window a pin must be in (with the
file and key a user sees), and the API versions each release no longer serves."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from modules import flux_extension_versions as table
from modules.flux_extension_versions import (
    LATEST,
    RELEASES,
    REMOVED_IN_1_23,
    REPLACEMENTS,
    SUPPORTED_MINORS,
    pin_problem,
    removed_api,
    removed_by,
    shown,
    skipped_hop,
    target_version,
)
from modules.spec import SpecError, load_stack_file, parse_spec, stack_files
from tests.conftest import ROOT, STANDALONE_STACKS

FILE = "stacks/Pulumi.dev.yaml"
NEXT = [(shown(a.version), shown(b.version)) for a, b in zip(RELEASES, RELEASES[1:], strict=False)]


# --------------------------------------------------------------------------------------------- the table


def test_the_table_is_the_release_notes_of_june_2026():
    assert [(shown(r.version), r.released, r.flux) for r in RELEASES] == [
        ("1.19.5", "2026-02", "2.6.4"),
        ("1.20.4", "2026-03", "2.6.4"),
        ("1.21.0", "2026-04", "2.6.4"),
        ("1.21.1", "2026-04", "2.6.4"),
        ("1.22.1", "2026-05", "2.6.4"),
        ("1.22.2", "2026-05", "2.6.4"),
        ("1.23.0", "2026-06", "2.7.5"),
    ]
    assert [r.version for r in RELEASES] == sorted(r.version for r in RELEASES)  # oldest first, once each
    assert len({r.version for r in RELEASES}) == len(RELEASES)
    assert SUPPORTED_MINORS == ((1, 21), (1, 22), (1, 23)) and LATEST == (1, 23, 0)
    assert table.supported_window() == "1.21 to 1.23"
    assert "learn.microsoft.com" in table.RELEASE_NOTES and table.AS_OF.isoformat() == "2026-11-29"


def test_every_required_hop_is_a_release_of_the_table_and_supported():
    for release in RELEASES:
        if release.requires:
            assert release.requires in {r.version for r in RELEASES}, release
            assert release.requires[:2] in SUPPORTED_MINORS and release.requires < release.version


@pytest.mark.parametrize(("installed", "pinned"), NEXT, ids=[f"{a}->{b}" for a, b in NEXT])
def test_each_hop_from_one_release_to_the_next_is_allowed(installed, pinned):
    assert skipped_hop(installed, pinned) is None


@pytest.mark.parametrize(
    ("installed", "pinned", "hop"),
    [
        ("1.20.1", "1.23.0", "1.21"),  # a version older than the table
        ("1.20.4", "1.23.0", "1.21"),
        ("1.19.5", "1.23.0", "1.21"),
        ("1.15.1", "1.23.0", "1.21"),
    ],
)
def test_a_pin_that_skips_the_required_hop_names_the_next_one(installed, pinned, hop):
    assert skipped_hop(installed, pinned) == (
        f"installed {installed}; pinned {pinned} skips {hop}.x: upgrade to {hop}.0 first "
        f"(pin version: {hop}.0, roll out, then {pinned})"
    )


def test_the_issue_s_example_word_for_word():
    assert skipped_hop("1.20.1", "1.23.0") == (
        "installed 1.20.1; pinned 1.23.0 skips 1.21.x: upgrade to 1.21.0 first (pin version: 1.21.0, roll out, then "
        "1.23.0)"
    )


@pytest.mark.parametrize(
    ("installed", "pinned"),
    [
        ("1.21.0", "1.23.0"),  # the hop taken
        ("1.21.1", "1.23.0"),
        ("1.22.2", "1.23.0"),
        ("1.20.4", "1.21.0"),  # taking the hop
        ("1.20.4", "1.22.2"),  # an interim version: the release notes' 1.21.0 - 1.22.2
        ("1.23.0", "1.23.0"),
        (None, "1.23.0"),  # not installed yet: a new install starts anywhere
        ("1.20.4", None),  # nothing pinned: auto-upgrade
        ("unknown", "1.23.0"),
    ],
)
def test_a_pin_that_skips_nothing_passes(installed, pinned):
    assert skipped_hop(installed, pinned) is None


# --------------------------------------------------------------------------------------------- the supported window


@pytest.mark.parametrize("version", ["1.21.0", "1.21.1", "1.22.1", "1.22.2", "1.23.0", "1.23.4"])
def test_a_pin_in_the_window_is_accepted(raw, version):
    raw["flux"]["extension"] = {"autoUpgradeMinorVersion": False, "version": version}
    assert parse_spec(raw, file=FILE).flux.extension.version == version


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (
            "1.20.4",
            "1.20.4 is out of support: microsoft.flux supports 1.21 to 1.23, the latest three minor versions "
            "(modules/flux_extension_versions.py): pin a supported version, or turn autoUpgradeMinorVersion on",
        ),
        (
            "1.15.1",
            "1.15.1 is out of support: microsoft.flux supports 1.21 to 1.23, the latest three minor versions "
            "(modules/flux_extension_versions.py): pin a supported version, or turn autoUpgradeMinorVersion on",
        ),
        (
            "1.24.0",
            "1.24.0 is newer than the releases fluxfleet knows (up to 1.23.0): pin a known version, or add the "
            "release to modules/flux_extension_versions.py from "
            "https://learn.microsoft.com/azure/azure-arc/kubernetes/flux-gitops-release-notes",
        ),
    ],
)
def test_a_pin_outside_the_window_is_refused_with_file_and_key(raw, version, message):
    raw["flux"]["extension"] = {"autoUpgradeMinorVersion": False, "version": version}
    with pytest.raises(SpecError) as caught:
        parse_spec(raw, file=FILE)
    assert [str(issue) for issue in caught.value.issues] == [f"{FILE}: fluxfleet:flux.extension.version: {message}"]
    assert pin_problem(version) == message


def test_a_pin_written_in_a_profile_is_refused_in_the_profile(tmp_path: Path):
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "old-flux.yaml").write_text(
        textwrap.dedent(
            """\
            config:
              fluxfleet:flux:
                extension: {autoUpgradeMinorVersion: false, version: 1.20.4}
            """
        )
    )
    stack = (STANDALONE_STACKS / "Pulumi.edge-store-001.yaml").read_text()
    (tmp_path / "Pulumi.edge.yaml").write_text(
        stack.replace("config:\n", "config:\n  fluxfleet:profiles: [old-flux]\n", 1)
    )
    with pytest.raises(SpecError) as caught:
        load_stack_file(tmp_path / "Pulumi.edge.yaml", "stacks/Pulumi.edge.yaml")
    [issue] = caught.value.issues
    assert issue.file.endswith("profiles/old-flux.yaml") and issue.path == "fluxfleet:flux.extension.version"
    assert issue.message.startswith("1.20.4 is out of support")


@pytest.mark.parametrize("directory", [ROOT / "stacks", STANDALONE_STACKS], ids=["stacks", "standalone"])
def test_every_example_that_pins_the_extension_pins_a_supported_version(directory: Path):
    pinned = {p.name: load_stack_file(p).spec.flux.extension.version for p in stack_files(directory, ())}
    pinned = {name: version for name, version in pinned.items() if version}
    assert pinned == {"Pulumi.prod-weu.yaml": "1.23.0"}
    assert all(pin_problem(version) is None for version in pinned.values())


# --------------------------------------------------------------------------------------------- removed API versions


def test_only_1_23_removes_api_versions_and_later_releases_keep_them_removed():
    assert removed_by((1, 22, 2)) == frozenset()
    assert removed_by((1, 23, 0)) == REMOVED_IN_1_23 == removed_by((1, 23, 4))
    assert target_version(None) == LATEST and target_version("1.22.2") == (1, 22, 2)


@pytest.mark.parametrize(
    ("api_version", "kind", "use"),
    [
        ("kustomize.toolkit.fluxcd.io/v1beta2", "Kustomization", "kustomize.toolkit.fluxcd.io/v1"),
        ("kustomize.toolkit.fluxcd.io/v1beta1", "Kustomization", "kustomize.toolkit.fluxcd.io/v1"),
        ("helm.toolkit.fluxcd.io/v2beta1", "HelmRelease", "helm.toolkit.fluxcd.io/v2"),
        ("helm.toolkit.fluxcd.io/v2beta2", "HelmRelease", "helm.toolkit.fluxcd.io/v2"),
        ("source.toolkit.fluxcd.io/v1beta2", "GitRepository", "source.toolkit.fluxcd.io/v1"),
        ("source.toolkit.fluxcd.io/v1beta2", "HelmRepository", "source.toolkit.fluxcd.io/v1"),
        ("source.toolkit.fluxcd.io/v1beta2", "OCIRepository", "source.toolkit.fluxcd.io/v1"),
        ("source.toolkit.fluxcd.io/v1beta1", "Bucket", "source.toolkit.fluxcd.io/v1"),
        ("source.toolkit.fluxcd.io/v1beta2", "HelmChart", "source.toolkit.fluxcd.io/v1"),
        ("notification.toolkit.fluxcd.io/v1beta1", "Receiver", "notification.toolkit.fluxcd.io/v1"),
        ("notification.toolkit.fluxcd.io/v1beta1", "Alert", "notification.toolkit.fluxcd.io/v1beta3"),
        ("notification.toolkit.fluxcd.io/v1beta1", "Provider", "notification.toolkit.fluxcd.io/v1beta3"),
        ("image.toolkit.fluxcd.io/v1beta1", "ImagePolicy", "image.toolkit.fluxcd.io/v1beta2"),
        ("source.toolkit.fluxcd.io/v1beta2", "NewKind", "an apiVersion of source.toolkit.fluxcd.io that 1.23.0 serves"),
    ],
)
def test_a_removed_api_version_names_what_to_use(api_version, kind, use):
    assert removed_api(api_version, kind, LATEST) == use
    assert removed_api(api_version, kind, (1, 22, 2)) is None  # still served before 1.23.0


@pytest.mark.parametrize(
    "api_version",
    [
        "kustomize.toolkit.fluxcd.io/v1",
        "helm.toolkit.fluxcd.io/v2",
        "source.toolkit.fluxcd.io/v1",
        "notification.toolkit.fluxcd.io/v1beta2",  # deprecated, still served
        "notification.toolkit.fluxcd.io/v1beta3",
        "image.toolkit.fluxcd.io/v1beta2",
        "kustomize.config.k8s.io/v1beta1",  # kustomize's own Kustomization, no Flux object
    ],
)
def test_a_served_api_version_is_no_finding(api_version):
    assert removed_api(api_version, "Kustomization", LATEST) is None


def test_every_replacement_is_served_by_the_latest_release():
    assert not set(REPLACEMENTS.values()) & removed_by(LATEST)


def test_the_release_table_says_when_it_is_over_six_months_old():
    from datetime import timedelta

    from modules.flux_extension_versions import AS_OF, stale_notice

    assert stale_notice(AS_OF + timedelta(days=183)) is None
    notice = stale_notice(AS_OF + timedelta(days=184))
    assert notice is not None and notice.startswith("notice: the microsoft.flux releases table is from 2026-11-29")
    assert notice.endswith("flux-gitops-release-notes")
