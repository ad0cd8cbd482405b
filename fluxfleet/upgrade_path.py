"""The check `preflight` and `rollout` both make before a pinned microsoft.flux version is applied: from the version
installed, does the pin skip an upgrade the release notes require first (1.23.0 needs 1.21.0 or later installed)?
The upgrade path is data, in `modules/flux_extension_versions.py`; this is where it meets what Azure reports."""

from __future__ import annotations

from collections.abc import Iterable

from fluxfleet.azure.status import AzureError, AzureReader, ExtensionStatus
from modules.cluster_ref import ClusterRef
from modules.flux_extension import EXTENSION_NAME, EXTENSION_TYPE
from modules.flux_extension_versions import skipped_hop
from modules.spec import StackSpec


def installed_flux(extensions: Iterable[ExtensionStatus]) -> ExtensionStatus | None:
    """The cluster's microsoft.flux extension: the one named as fluxfleet names it, else any."""
    flux = [e for e in extensions if e.extension_type.lower() == EXTENSION_TYPE]
    return next((e for e in flux if e.name == EXTENSION_NAME), flux[0] if flux else None)


def upgrade_path_problem(extensions: Iterable[ExtensionStatus], spec: StackSpec) -> str | None:
    """Why applying the stack's pinned extension version to this cluster would skip a required hop (which hop is
    next, and how to take it), or None: nothing pinned, nothing installed yet (a new install may start anywhere), an
    installed version Azure does not report, or no hop skipped."""
    pinned = spec.flux.extension.version
    installed = installed_flux(extensions) if pinned else None
    if installed is None:
        return None
    return skipped_hop(installed.current_version, pinned)


def read_upgrade_path_problem(reader: AzureReader, subscription_id: str, spec: StackSpec) -> str | None:
    """upgrade_path_problem with the cluster's extensions read through `reader`. A pinned version whose installed
    predecessor cannot be read is a problem too: the update could strand the cluster. An AKS cluster that does not
    exist yet has nothing installed (its update creates it; ARM answers 404 for the extensions of a missing one)."""
    if spec.flux.extension.version is None:
        return None
    cluster = spec.cluster
    try:
        if cluster.is_aks and reader.managed_cluster(subscription_id, cluster.resource_group, cluster.name) is None:
            return None
        extensions = reader.extensions(subscription_id, ClusterRef.of(cluster))
    except AzureError as error:
        return f"cannot read the installed {EXTENSION_TYPE} version to check the upgrade path: {error}"
    return upgrade_path_problem(extensions, spec)
