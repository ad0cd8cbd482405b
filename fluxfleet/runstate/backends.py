"""Which store holds the run state: files on this machine, or the container of Pulumi's own state when Pulumi keeps
it in Azure Blob Storage (PULUMI_BACKEND_URL=azblob://CONTAINER), read as Pulumi's azblob backend reads it.

- `--runs-dir DIR`: the directory DIR, whatever the backend.
- PULUMI_BACKEND_URL=azblob://CONTAINER (or azblob://CONTAINER?storage_account=NAME, and Pulumi's other parameters:
  domain, protocol, localemu): the runs under .fluxfleet/runs/ in that container, the fleet's lock under .fluxfleet/.
  The account is signed in to with AZURE_STORAGE_CONNECTION_STRING; or AZURE_STORAGE_ACCOUNT (or storage_account=)
  with AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN; or else the signed-in identity (DefaultAzureCredential: `az
  login`, a managed identity, workload identity), which needs "Storage Blob Data Contributor" on the container.
- otherwise: .fluxfleet/runs in the working directory, and the fleet's lock beside fleet.yaml.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from azure.storage.blob import ContainerClient

from fluxfleet.runstate.azblob import (
    LEASE_SECONDS,
    BlobStore,
    container_client,
    container_client_from_connection_string,
)
from fluxfleet.runstate.local import LocalStore
from fluxfleet.runstate.store import StateStore, StoreError

BACKEND_URL = "PULUMI_BACKEND_URL"
LEASE_SECONDS_ENV = "FLUXFLEET_LEASE_SECONDS"
RUNS_PREFIX = ".fluxfleet/runs/"
FLEET_PREFIX = ".fluxfleet/"
DEFAULT_RUNS_DIR = Path(".fluxfleet/runs")
# A container's name: 3 to 63 lowercase letters, digits and single hyphens, beginning and ending with a letter or digit.
CONTAINER_NAME = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}")
PARAMETERS = {"storage_account", "domain", "protocol", "localemu"}  # those Pulumi's azblob backend (gocloud) takes
TRUE = {"1", "true", "yes"}


def run_store(runs_dir: Path | None, env: Mapping[str, str]) -> StateStore:
    """Where the runs' journals and locks are: `runs_dir` when given, else Pulumi's azblob container, else
    .fluxfleet/runs."""
    if runs_dir is not None:
        return LocalStore(runs_dir)
    located = _azblob(env)
    if located is not None:
        container, path = located
        return BlobStore(container, path + RUNS_PREFIX, lease_seconds=_lease_seconds(env))
    return LocalStore(DEFAULT_RUNS_DIR)


def fleet_lock_store(fleet_dir: Path, env: Mapping[str, str]) -> StateStore:
    """Where the lock that every writer of fleet.yaml takes is: Pulumi's azblob container, else beside fleet.yaml."""
    located = _azblob(env)
    if located is not None:
        container, path = located
        return BlobStore(container, path + FLEET_PREFIX, lease_seconds=_lease_seconds(env))
    return LocalStore(fleet_dir / ".fluxfleet")


def _lease_seconds(env: Mapping[str, str]) -> int:
    """FLUXFLEET_LEASE_SECONDS: how long a lock of a holder that died stays taken (15 to 60, a blob lease's bounds;
    default 60). Shorter frees a crashed machine's stacks sooner, at more renewals while they are held."""
    given = env.get(LEASE_SECONDS_ENV, "").strip()
    if not given:
        return LEASE_SECONDS
    if not given.isdigit() or not 15 <= int(given) <= 60:
        raise StoreError(
            f"{LEASE_SECONDS_ENV}={given!r}: a blob lease lasts 15 to 60 seconds: set a number in that range"
        )
    return int(given)


def _azblob(env: Mapping[str, str]) -> tuple[ContainerClient, str] | None:
    """The container of PULUMI_BACKEND_URL=azblob://CONTAINER[/PATH], and the path in it ("" or "PATH/") below which
    Pulumi keeps its .pulumi/; None for any other backend."""
    url = env.get(BACKEND_URL, "").strip()
    if not url.lower().startswith("azblob://"):
        return None
    parts = urlsplit(url)
    container, path = parts.netloc, parts.path.strip("/")
    if not CONTAINER_NAME.fullmatch(container):
        raise StoreError(
            f"{BACKEND_URL}: azblob://{container}: not a container's name (3 to 63 lowercase letters, digits and "
            "hyphens): set it to azblob://CONTAINER, the container of Pulumi's state"
        )
    parameters = dict(parse_qsl(parts.query))
    unknown = sorted(set(parameters) - PARAMETERS)
    if unknown:
        raise StoreError(
            f"{BACKEND_URL}: azblob://{container}: unknown parameter {unknown[0]!r} (Pulumi's azblob backend takes "
            f"{', '.join(sorted(PARAMETERS))})"
        )
    connection_string = env.get("AZURE_STORAGE_CONNECTION_STRING", "").strip()
    if connection_string:
        try:
            client = container_client_from_connection_string(connection_string, container)
        except ValueError:
            raise StoreError(
                "AZURE_STORAGE_CONNECTION_STRING: not a storage account's connection string (it is the one of "
                "the storage account's Access keys)"
            ) from None
        return client, f"{path}/" if path else ""
    account = parameters.get("storage_account") or env.get("AZURE_STORAGE_ACCOUNT", "").strip()
    if not account:
        raise StoreError(
            f"{BACKEND_URL}=azblob://{container}: which storage account? Set AZURE_STORAGE_ACCOUNT (or "
            f"azblob://{container}?storage_account=NAME, or AZURE_STORAGE_CONNECTION_STRING), as Pulumi needs too"
        )
    protocol = parameters.get("protocol") or env.get("AZURE_STORAGE_PROTOCOL", "").strip() or "https"
    domain = parameters.get("domain") or env.get("AZURE_STORAGE_DOMAIN", "").strip() or "blob.core.windows.net"
    emulator = (parameters.get("localemu") or env.get("AZURE_STORAGE_IS_LOCAL_EMULATOR", "")).strip().lower() in TRUE
    account_url = f"{protocol}://{domain}/{account}" if emulator else f"{protocol}://{account}.{domain}"
    credential = _credential(account, env)
    if protocol != "https" and not isinstance(credential, dict | str):  # the SDK sends a token over https only
        raise StoreError(
            f"{BACKEND_URL}=azblob://{container}: a signed-in identity is used over https only: set "
            "AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN to use http"
        )
    try:
        client = container_client(account_url, container, credential)
    except ValueError:
        raise StoreError(
            f"{BACKEND_URL}=azblob://{container}: {account_url} is not a storage account's address: check "
            "AZURE_STORAGE_ACCOUNT, AZURE_STORAGE_DOMAIN and AZURE_STORAGE_PROTOCOL (or storage_account=, domain= "
            "and protocol= in the URL)"
        ) from None
    return client, f"{path}/" if path else ""


def _credential(account: str, env: Mapping[str, str]) -> object:
    key = env.get("AZURE_STORAGE_KEY", "").strip()
    if key:
        return {"account_name": account, "account_key": key}
    sas = env.get("AZURE_STORAGE_SAS_TOKEN", "").strip()
    if sas:
        return sas.lstrip("?")
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()
