"""The Kubernetes minor versions AKS supports, as dated data.

One table for everything that names a supported version: the policy rule `aks-supported-version` checks a pinned
`fluxfleet:cluster.kubernetesVersion` against it, a test checks that the example stacks pin a version in it, and
`fluxfleet plan` and `fluxfleet preflight` print a notice on stderr once it is more than six months old, so that it
cannot rot silently. To update it: re-read the sources below, change the table and AS_OF.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from modules import dated_tables

# Source: "Supported Kubernetes versions in Azure Kubernetes Service (AKS)",
# https://learn.microsoft.com/azure/aks/supported-kubernetes-versions, and its AKS Kubernetes release calendar, read
# 2026-11-29: AKS supports 1.34 to 1.37 (standard support); 1.33 reached end of life in 2026-07. Long-term support
# (https://learn.microsoft.com/azure/aks/long-term-support) runs to 1.37 and keeps older minors a year longer, but
# only on the Premium tier with the AKSLongTermSupport plan; fluxfleet's clusters set neither, so only standard
# support counts here.
AS_OF = date(2026, 11, 29)
AKS_SUPPORTED_MINORS: tuple[tuple[int, int], ...] = ((1, 34), (1, 35), (1, 36), (1, 37))  # oldest first, no gap
OLDEST, NEWEST = AKS_SUPPORTED_MINORS[0], AKS_SUPPORTED_MINORS[-1]

STALE_AFTER = dated_tables.STALE_AFTER
TABLE_FILE = "modules/kubernetes_versions.py"


def shown(minor: tuple[int, ...]) -> str:
    return ".".join(map(str, minor))


def supported_window() -> str:
    """'1.34 to 1.37'."""
    return f"{shown(OLDEST)} to {shown(NEWEST)}"


def today() -> date:
    """The date the table's age is measured on: the system's, in UTC (tests replace this function)."""
    return datetime.now(UTC).date()


def stale_notice(on: date) -> str | None:
    """One line for stderr when the table is more than six months older than the date `on`, else None."""
    update = f"{TABLE_FILE} from https://learn.microsoft.com/azure/aks/supported-kubernetes-versions"
    return dated_tables.stale_notice("supported Kubernetes versions", AS_OF, on, update)
