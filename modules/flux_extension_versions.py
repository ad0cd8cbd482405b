"""The releases of the microsoft.flux extension, as dated data: which are supported, which upgrade must come before
another, and which Flux API versions a release no longer serves.

One table for everything that judges an extension version:
- the spec refuses a pinned `fluxfleet:flux.extension.version` outside the supported window (`pin_problem`), and the
  policy rule `flux-extension-upgrades`, `preflight` and `drift` judge installed versions against the same window;
- `preflight` and `rollout` refuse a pinned version that skips a required hop from the version installed
  (`skipped_hop`, through `fluxfleet/upgrade_path.py`);
- `plan --source` reports the Flux objects of a source on an API version the target release no longer serves
  (`removed_api`, through `fluxfleet/plan/api_scan.py`).
To update it: re-read the sources below, add the releases, and change AS_OF.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from modules import dated_tables

# Sources, read 2026-11-29:
# - "Flux (GitOps) extension release notes": MicrosoftDocs/azure-management-docs,
#   articles/azure-arc/kubernetes/flux-gitops-release-notes.md (ms.date 2026-06-11), published as
#   https://learn.microsoft.com/azure/azure-arc/kubernetes/flux-gitops-release-notes. It gives each release below, its
#   month and the Flux it bundles; "the most recent version ... and the two previous versions (N-2) are supported";
#   the API versions 1.23.0 removes, with the version to use instead of each kind (REPLACEMENTS); and "Clusters must be
#   running version 1.21.0 or higher in order to subsequently upgrade to version 1.23.0" (1.21.0 migrates the Flux
#   objects stored in etcd off the deprecated API versions; "if your clusters are running 1.20.4 or lower, upgrade
#   them to an interim version (1.21.0 - 1.22.2) first").
# - Upstream Flux, for comparison: Flux 2.7 removed source/kustomize/image/notification v1beta1 and helm v2beta1
#   (fluxcd/flux2#5474; https://fluxcd.io/blog/2025/09/flux-v2.7.0/), Flux 2.8 source and kustomize v1beta2 and helm
#   v2beta2 (fluxcd/flux2#5711). Extension 1.23.0 bundles Flux 2.7.5 yet removes both sets, as its release notes
#   list: this table follows the release notes, which say what the extension serves.
# N-2 is read as minor versions (1.23, 1.22, 1.21): the hop the release notes require, 1.21.0, must itself be
# supported, and the notes list patch releases (1.22.1, 1.22.2) as updates of one minor.
# The newest release notes found are of June 2026: a release after 1.23.0 is not here, and the spec refuses a pin of it
# until it is added.
AS_OF = date(2026, 11, 29)
TABLE_FILE = "modules/flux_extension_versions.py"
RELEASE_NOTES = "https://learn.microsoft.com/azure/azure-arc/kubernetes/flux-gitops-release-notes"

Version = tuple[int, int, int]

# The Flux API versions extension 1.23.0 removed (the release notes' list).
REMOVED_IN_1_23 = frozenset(
    {
        "source.toolkit.fluxcd.io/v1beta1",
        "source.toolkit.fluxcd.io/v1beta2",
        "kustomize.toolkit.fluxcd.io/v1beta1",
        "kustomize.toolkit.fluxcd.io/v1beta2",
        "helm.toolkit.fluxcd.io/v2beta1",
        "helm.toolkit.fluxcd.io/v2beta2",
        "notification.toolkit.fluxcd.io/v1beta1",
        "image.toolkit.fluxcd.io/v1beta1",
    }
)


@dataclass(frozen=True)
class Release:
    version: Version
    released: str  # the month of its release notes
    flux: str  # the Flux release it bundles
    requires: Version | None = None  # the lowest installed version it can be upgraded from
    removes: frozenset[str] = frozenset()  # Flux apiVersions it (and every later release) no longer serves


RELEASES: tuple[Release, ...] = (  # oldest first
    Release((1, 19, 5), "2026-02", "2.6.4"),
    Release((1, 20, 4), "2026-03", "2.6.4"),
    Release((1, 21, 0), "2026-04", "2.6.4"),  # migrates stored Flux objects off the deprecated API versions
    Release((1, 21, 1), "2026-04", "2.6.4"),
    Release((1, 22, 1), "2026-05", "2.6.4"),
    Release((1, 22, 2), "2026-05", "2.6.4"),
    Release((1, 23, 0), "2026-06", "2.7.5", requires=(1, 21, 0), removes=REMOVED_IN_1_23),
)

# The apiVersion to move each kind to, from the release notes: versions that 1.22 and 1.23 both serve, so a
# repository can move before the upgrade and keep working across it.
REPLACEMENTS = {
    "Kustomization": "kustomize.toolkit.fluxcd.io/v1",
    "HelmRelease": "helm.toolkit.fluxcd.io/v2",
    **dict.fromkeys(
        ("Bucket", "GitRepository", "HelmChart", "HelmRepository", "OCIRepository"), "source.toolkit.fluxcd.io/v1"
    ),
    "Receiver": "notification.toolkit.fluxcd.io/v1",
    **dict.fromkeys(("Alert", "Provider"), "notification.toolkit.fluxcd.io/v1beta3"),
    **dict.fromkeys(("ImageRepository", "ImagePolicy", "ImageUpdateAutomation"), "image.toolkit.fluxcd.io/v1beta2"),
}

SUPPORTED_MINORS: tuple[tuple[int, int], ...] = tuple(
    sorted({r.version[:2] for r in RELEASES})[-3:]  # N-2, of minor versions
)
OLDEST_SUPPORTED, NEWEST_SUPPORTED = SUPPORTED_MINORS[0], SUPPORTED_MINORS[-1]
LATEST: Version = RELEASES[-1].version

_VERSION = re.compile(r"(\d{1,6})\.(\d{1,6})\.(\d{1,6})")


def parse(text: object) -> Version | None:
    """(1, 23, 0) of "1.23.0"; None when the text is no X.Y.Z version."""
    match = _VERSION.fullmatch(str(text or "").strip())
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def shown(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


def supported_window() -> str:
    """'1.21 to 1.23'."""
    return f"{shown(OLDEST_SUPPORTED)} to {shown(NEWEST_SUPPORTED)}"


def pin_problem(text: str) -> str | None:
    """Why a pinned extension version is refused (outside the supported window, or newer than this table), or None."""
    version = parse(text)
    if version is None:
        return None  # the spec's pattern says what a version looks like
    if version[:2] < OLDEST_SUPPORTED:
        return (
            f"{text} is out of support: microsoft.flux supports {supported_window()}, the latest three minor versions "
            f"({TABLE_FILE}): pin a supported version, or turn autoUpgradeMinorVersion on"
        )
    if version[:2] > NEWEST_SUPPORTED:
        return (
            f"{text} is newer than the releases fluxfleet knows (up to {shown(LATEST)}): pin a known version, or add "
            f"the release to {TABLE_FILE} from {RELEASE_NOTES}"
        )
    return None


def skipped_hop(installed: str | None, pinned: str | None) -> str | None:
    """Why upgrading from the installed version straight to the pinned one would strand the cluster (a release in
    between requires an interim version first), naming the next hop; None when nothing is skipped or either version
    is unknown."""
    start, target = parse(installed), parse(pinned)
    if start is None or target is None:
        return None
    for release in RELEASES:
        if release.requires and start < release.version <= target and start < release.requires:
            hop = shown(release.requires)
            return (
                f"installed {installed}; pinned {pinned} skips {shown(release.requires[:2])}.x: upgrade to {hop} "
                f"first (pin version: {hop}, roll out, then {pinned})"
            )
    return None


def target_version(pinned: str | None) -> Version:
    """The release a cluster will run: the pinned one, else (auto-upgrade) the latest in the table."""
    return parse(pinned) or LATEST


def removed_by(target: Version) -> frozenset[str]:
    """The Flux apiVersions a cluster on `target` no longer serves."""
    return frozenset().union(*(r.removes for r in RELEASES if r.version <= target))


def removed_api(api_version: str, kind: str, target: Version) -> str | None:
    """For a Flux object on an apiVersion that `target` no longer serves: what to use instead; else None."""
    if api_version not in removed_by(target):
        return None
    group = api_version.split("/", 1)[0]
    replacement = REPLACEMENTS.get(kind)
    if replacement and replacement.split("/", 1)[0] == group:
        return replacement
    return f"an apiVersion of {group} that {shown(target)} serves"


def stale_notice(on: date) -> str | None:
    """One line for stderr when the table of releases is more than six months older than the date `on`, else None:
    a release newer than the table is refused until it is updated."""
    return dated_tables.stale_notice("microsoft.flux releases", AS_OF, on, f"{TABLE_FILE} from {RELEASE_NOTES}")
