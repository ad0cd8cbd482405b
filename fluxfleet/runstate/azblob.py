"""Run state in a container of Azure Blob Storage, beside Pulumi's own state (PULUMI_BACKEND_URL=azblob://CONTAINER):
the store of a rollout that several machines work on (CI's matrix legs, an operator's laptop).

An entry "X.json" is the blob PREFIX + "X.json" (PREFIX ".fluxfleet/runs/" for runs); its ETag is the blob's. A whole
write is one Put Blob, conditional on If-Match (the ETag read) or If-None-Match: * (a new entry); the storage answers
412 or 409 when the condition fails, and the writer is told (`Conflict`). A log is an append blob: each append is one
Append Block, kept whole and never interleaved with another writer's.

A lock "locks/S" is a lease on the blob PREFIX + "locks/S.lock", whose content is its holder's description (written
under the lease). The lease lasts `lease_seconds` (60 by default) and a thread of the holder renews it every third of
that: a holder that dies frees its locks within a lease, and one that loses its lease (broken by an operator, or
expired while the storage could not be reached) sees it in `still_held()`. A lock's `fd` behaves as an flock's: the
lease is then also renewed by a small keeper process (fluxfleet/runstate/keeper.py, in a session of its own), which
holds it until every copy of `fd` is closed, so a `pulumi up` given `fd` keeps the stack locked for as long as it
runs, even after fluxfleet was killed.

Every failure is a `StoreError` of one line that names the store and what to do; no account key, SAS token or
connection string is ever part of one. Retries are azure-core's, kept short (a dead endpoint answers in seconds).
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import urlsplit

from azure.core import MatchConditions
from azure.core.credentials import AzureSasCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobClient, BlobLeaseClient, BlobPrefix, ContainerClient, ExponentialRetry

from fluxfleet.runstate.store import Conflict, Entry, StoreError

LEASE_SECONDS = 60  # Azure's leases last 15 to 60 s (or forever): a dead holder's lock is free within a minute
RETRIES = 3


def client_options() -> dict[str, Any]:
    """A client's network settings: azure-core's retry, short (1.5, 1.8 and 2.2 s between four tries), and timeouts
    that let a dead or unreachable endpoint answer within seconds. A policy of its own for each client: a pipeline
    links its policies to each other, and one shared by two clients would send the requests of one through the
    other's credential."""
    return {
        "retry_policy": ExponentialRetry(
            initial_backoff=0.25, increment_base=1.25, retry_total=RETRIES, random_jitter_range=0
        ),
        "connection_timeout": 5,
        "read_timeout": 30,
        "logging_enable": False,  # would log requests and answers
    }


KEEPER_START_SECONDS = 60

# What the keeper is given, in its environment (never its command line, which every user of the machine can read).
KEEPER_ACCOUNT_URL = "FLUXFLEET_KEEPER_ACCOUNT_URL"
KEEPER_ACCOUNT_NAME = "FLUXFLEET_KEEPER_ACCOUNT_NAME"
KEEPER_ACCOUNT_KEY = "FLUXFLEET_KEEPER_ACCOUNT_KEY"
KEEPER_SAS = "FLUXFLEET_KEEPER_SAS"
KEEPER_CONTAINER = "FLUXFLEET_KEEPER_CONTAINER"
KEEPER_BLOB = "FLUXFLEET_KEEPER_BLOB"
KEEPER_LEASE_ID = "FLUXFLEET_KEEPER_LEASE_ID"
KEEPER_LEASE_SECONDS = "FLUXFLEET_KEEPER_LEASE_SECONDS"
KEEPER_HELD = "held"

# Answers that say a lease is no longer ours: broken, taken by another after it expired, or its blob gone.
LEASE_LOST = {
    "LeaseIsBrokenAndCannotBeRenewed",
    "LeaseIdMismatchWithLeaseOperation",
    "LeaseNotPresentWithLeaseOperation",
    "LeaseLost",
    "BlobNotFound",
}


def container_client(account_url: str, container: str, credential: Any) -> ContainerClient:
    """A client of `container` with fluxfleet's network settings (short retries and timeouts)."""
    return ContainerClient(account_url, container, credential=credential, **client_options())


def container_client_from_connection_string(connection_string: str, container: str) -> ContainerClient:
    return ContainerClient.from_connection_string(connection_string, container, **client_options())


READ_RETRIES = 20  # reads of an entry that grows between two requests of one read


class BlobStore:
    def __init__(self, container: ContainerClient, prefix: str, *, lease_seconds: int = LEASE_SECONDS):
        if not 15 <= lease_seconds <= 60:
            raise ValueError(f"a blob lease lasts 15 to 60 s, not {lease_seconds}")
        self.container = container
        self.prefix = prefix
        self.lease_seconds = lease_seconds

    @property
    def where(self) -> str:
        return f"azblob://{self.container.container_name}/{self.prefix.rstrip('/')}"

    def read(self, name: str, *, offset: int = 0) -> Entry | None:
        blob = self._blob(name)
        with self._answers():
            for _ in range(READ_RETRIES):
                try:
                    download = blob.download_blob(offset=offset or None)
                    data = download.readall()
                except HttpResponseError as error:
                    if _code(error) == "BlobNotFound":
                        return None
                    if _code(error) != "InvalidRange":  # else nothing past `offset`
                        raise
                    data = b""
                if data:
                    return Entry(data, str(download.properties.etag))  # the version whose bytes these are
                # Nothing (past `offset`) names no version: an InvalidRange answer has no ETag, and the SDK reads an
                # empty blob again without a range and keeps that second answer's ETag, a version that may hold an
                # append made in between. Such an ETag, taken for "nothing new", lost that append: a refresh saw the
                # ETag unchanged and skipped its line, a save deleted it. The ETag of nothing is the one of
                # properties that also say the entry holds nothing past `offset`.
                try:
                    properties = blob.get_blob_properties()
                except HttpResponseError as error:
                    if _code(error) == "BlobNotFound":
                        return None
                    raise
                if properties.size <= offset:
                    return Entry(b"", str(properties.etag))
            raise StoreError(f"{self.where}: {name} kept growing while it was read: try again")

    def head(self, name: str) -> str | None:
        with self._answers():
            try:
                return str(self._blob(name).get_blob_properties().etag)
            except HttpResponseError as error:
                if _code(error) == "BlobNotFound":
                    return None
                raise

    def write(self, name: str, data: bytes, *, etag: str | None = None, new: bool = False) -> str:
        if new:
            conditions: dict[str, Any] = {"overwrite": False}  # If-None-Match: *
        elif etag is not None:
            conditions = {"overwrite": True, "etag": etag, "match_condition": MatchConditions.IfNotModified}
        else:
            conditions = {"overwrite": True}
        with self._answers():
            try:
                result = self._blob(name).upload_blob(data, **conditions)
            except HttpResponseError as error:
                code = _code(error)
                if code == "BlobAlreadyExists":
                    raise Conflict(f"{self.where}: {name}: exists already") from None
                if code in ("ConditionNotMet", "BlobNotFound"):
                    raise Conflict(f"{self.where}: {name}: changed or gone since it was read") from None
                raise
        return str(result["etag"])

    def append(self, name: str, data: bytes) -> None:
        blob = self._blob(name)
        with self._answers():
            try:
                blob.append_block(data)
                return
            except HttpResponseError as error:
                code = _code(error)
                if code == "InvalidBlobType":  # an entry written whole: appended to by conditional rewrites
                    self._append_by_rewriting(name, data)
                    return
                if code != "BlobNotFound":
                    raise
            try:
                # If-None-Match: * -- an append blob that another writer has just created is never truncated.
                blob.create_append_blob(match_condition=MatchConditions.IfMissing)
            except HttpResponseError as error:
                if _code(error) not in ("BlobAlreadyExists", "ConditionNotMet"):
                    raise
            blob.append_block(data)

    def _append_by_rewriting(self, name: str, data: bytes) -> None:
        while True:
            entry = self.read(name)
            try:
                if entry is None:
                    self.write(name, data, new=True)
                else:
                    self.write(name, entry.data + data, etag=entry.etag)
                return
            except Conflict:
                continue  # another writer came first: read its write and add to it

    def delete(self, name: str, *, etag: str | None = None) -> None:
        conditions: dict[str, Any] = {}
        if etag is not None:
            conditions = {"etag": etag, "match_condition": MatchConditions.IfNotModified}
        with self._answers():
            try:
                self._blob(name).delete_blob(**conditions)
            except HttpResponseError as error:
                code = _code(error)
                if code == "BlobNotFound" and etag is None:
                    return
                if code in ("ConditionNotMet", "BlobNotFound"):
                    raise Conflict(f"{self.where}: {name}: changed or gone since it was read") from None
                raise

    def names(self, prefix: str = "") -> list[str]:
        found = []
        with self._answers():
            for item in self.container.walk_blobs(name_starts_with=self.prefix + prefix, delimiter="/"):
                if isinstance(item, BlobPrefix):
                    continue  # a folder below the store's own entries
                name = item.name[len(self.prefix) :]
                if "/" not in name and not name.startswith(".") and not name.endswith(".lock"):
                    found.append(name)
        return sorted(found)

    def lock(self, name: str) -> BlobLock:
        return BlobLock(self, f"{self.prefix}{name}.lock")

    def _blob(self, name: str) -> BlobClient:
        return self.container.get_blob_client(self.prefix + name)

    @contextmanager
    def _answers(self) -> Iterator[None]:
        """Every failure of the storage or the network, as a StoreError of one line (a Conflict passes as it is)."""
        try:
            yield
        except StoreError:
            raise
        except AzureError as error:
            raise StoreError(f"{self.where}: {failure(error, self.container)}") from None

    def keeper_environment(self, blob: str, lease_id: str) -> dict[str, str]:
        """What the keeper of a lease needs to renew and release it: where it is, and the store's credential."""
        parts = urlsplit(self.container.url)
        env = {
            KEEPER_ACCOUNT_URL: account_url(self.container),
            KEEPER_ACCOUNT_NAME: self.container.account_name or "",
            KEEPER_CONTAINER: self.container.container_name,
            KEEPER_BLOB: blob,
            KEEPER_LEASE_ID: lease_id,
            KEEPER_LEASE_SECONDS: str(self.lease_seconds),
        }
        credential = self.container.credential
        if getattr(credential, "account_key", None):  # a shared key (an account key, or a connection string's)
            env[KEEPER_ACCOUNT_KEY] = credential.account_key
        elif isinstance(credential, AzureSasCredential):
            env[KEEPER_SAS] = credential.signature
        elif parts.query:  # a SAS token in the URL
            env[KEEPER_SAS] = parts.query
        return env  # with neither, the keeper signs in as fluxfleet does (DefaultAzureCredential)


class BlobLock:
    def __init__(self, store: BlobStore, blob: str):
        self._store = store
        self._blob = store.container.get_blob_client(blob)
        self._lease: BlobLeaseClient | None = None
        self._lost = False
        self._renewed_at = 0.0
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self._keeper: subprocess.Popen | None = None
        self._keeper_stdin: int | None = None

    def try_acquire(self, holder: str) -> bool:
        lease = BlobLeaseClient(self._blob)
        with self._store._answers():
            try:
                lease.acquire(lease_duration=self._store.lease_seconds)
            except HttpResponseError as error:
                code = _code(error)
                if code == "LeaseAlreadyPresent":
                    return False
                if code != "BlobNotFound":
                    raise
                self._create()
                try:
                    lease.acquire(lease_duration=self._store.lease_seconds)
                except HttpResponseError as again:
                    if _code(again) == "LeaseAlreadyPresent":
                        return False
                    raise
            try:
                self._blob.upload_blob(holder.encode(), overwrite=True, lease=lease)
            except BaseException:
                _release_quietly(lease)
                raise
        self._lease, self._lost, self._renewed_at = lease, False, time.monotonic()
        self._stop = threading.Event()
        self._renewer = threading.Thread(target=self._renew_until_stopped, name=f"lease {self._blob.blob_name}")
        self._renewer.daemon = True
        self._renewer.start()
        return True

    def _create(self) -> None:
        """The lock's blob, the first time the lock is taken: If-None-Match: *, so that none is ever replaced."""
        try:
            self._blob.upload_blob(b"", overwrite=False)
        except HttpResponseError as error:
            if _code(error) not in ("BlobAlreadyExists", "ConditionNotMet", "LeaseIdMissing"):
                raise

    def holder(self) -> str:
        try:
            text = self._blob.download_blob().readall().decode("utf-8", "replace").strip()
        except AzureError:
            return "another process"
        return text[:200] or "another process"

    def still_held(self) -> bool:
        """Whether the lease is still this holder's: renewed now; False once another broke or took it, or when it
        could not be renewed for a whole lease (it has expired)."""
        if self._lease is None:
            return False
        self._renew()
        return not self._lost and time.monotonic() - self._renewed_at < self._store.lease_seconds

    @property
    def fd(self) -> int:
        if self._lease is None:
            raise StoreError(f"{self._store.where}: {self._blob.blob_name}: the lock is not held")
        if self._keeper_stdin is None:
            self._start_keeper(self._lease.id)
        assert self._keeper_stdin is not None
        return self._keeper_stdin

    def release(self) -> None:
        lease, self._lease = self._lease, None
        if lease is None:
            return
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        if self._keeper_stdin is not None:
            # The keeper releases the lease when the last copy of its stdin is closed: now, unless a child given
            # `fd` still runs.
            os.close(self._keeper_stdin)
            self._keeper_stdin = None
            keeper, self._keeper = self._keeper, None
            if keeper is not None:
                # A child given `fd` that still runs holds the lock on: the keeper goes on until that child ends.
                with suppress(subprocess.TimeoutExpired):
                    keeper.wait(timeout=5)
            return
        _release_quietly(lease)

    def _renew_until_stopped(self) -> None:
        while not self._stop.wait(self._store.lease_seconds / 3):
            if not self._renew():
                return

    def _renew(self) -> bool:
        """Renew the lease; False once it is lost. A storage out of reach is tried again at the next renewal."""
        lease = self._lease
        if lease is None or self._lost:
            return False
        with self._guard:
            try:
                lease.renew()
            except HttpResponseError as error:
                if _code(error) in LEASE_LOST or error.status_code == 404:
                    self._lost = True
                    return False
                return True
            except AzureError:
                return True
            self._renewed_at = time.monotonic()
        return True

    def _start_keeper(self, lease_id: str) -> None:
        env = {**os.environ, **self._store.keeper_environment(self._blob.blob_name, lease_id)}
        read_end, write_end = os.pipe()  # both not inheritable: the keeper gets only the read end, as its stdin
        try:
            keeper = subprocess.Popen(
                [sys.executable, "-m", "fluxfleet.runstate.keeper"],
                stdin=read_end,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # a kill of fluxfleet's process group spares it
            )
        except OSError as error:
            os.close(write_end)
            raise StoreError(f"{self._store.where}: cannot start the keeper of a lock: {error.strerror}") from None
        finally:
            os.close(read_end)
        assert keeper.stdout is not None
        ready, _, _ = select.select([keeper.stdout], [], [], KEEPER_START_SECONDS)
        answer = keeper.stdout.readline().decode("utf-8", "replace").strip() if ready else ""
        keeper.stdout.close()
        if answer != KEEPER_HELD:
            os.close(write_end)
            keeper.kill()
            keeper.wait()
            reason = answer or f"no answer within {KEEPER_START_SECONDS} s"
            raise StoreError(f"{self._store.where}: {self._blob.blob_name}: the lock's keeper failed: {reason}")
        self._keeper, self._keeper_stdin = keeper, write_end


def account_url(container: ContainerClient) -> str:
    """The storage account's endpoint, without a SAS token: https://ACCOUNT.blob.core.windows.net (an emulator's
    ends in /ACCOUNT)."""
    parts = urlsplit(container.url)
    return f"{parts.scheme}://{parts.netloc}{parts.path.rsplit('/', 1)[0]}"


def failure(error: AzureError, container: ContainerClient) -> str:
    """What went wrong and what to do, in words that hold no credential (never the SDK's own text, which quotes the
    request it signed)."""
    endpoint = account_url(container)
    if isinstance(error, ServiceRequestError | ServiceResponseError):
        return (
            f"cannot reach the storage account at {endpoint} ({_network_reason(error)}, {RETRIES + 1} tries): check "
            "the network, and the account in AZURE_STORAGE_ACCOUNT or PULUMI_BACKEND_URL"
        )
    if isinstance(error, ClientAuthenticationError) and error.status_code is None:
        from fluxfleet.azure.access import SIGN_IN

        return f"no Azure token for the storage account at {endpoint}: {SIGN_IN}, or set AZURE_STORAGE_KEY"
    if isinstance(error, HttpResponseError):
        code = _code(error)
        if code == "ContainerNotFound":
            return (
                f"no such container in the storage account at {endpoint}: it is Pulumi's state container, check "
                "PULUMI_BACKEND_URL (azblob://CONTAINER) and AZURE_STORAGE_ACCOUNT"
            )
        if error.status_code in (401, 403):
            return (
                f"the storage account at {endpoint} refused access ({error.status_code} {code or 'Forbidden'}): the "
                'identity needs the role "Storage Blob Data Contributor" on the container (or check '
                "AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN or AZURE_STORAGE_CONNECTION_STRING)"
            )
        return f"the storage account at {endpoint} answered {error.status_code} {code or ''}".rstrip()
    return f"the storage account at {endpoint} failed: {type(error).__name__}"


def _code(error: HttpResponseError) -> str:
    code = error.error_code
    return str(getattr(code, "value", code) or "")


def _network_reason(error: BaseException) -> str:
    """The socket's reason (refused, no such host, timed out), from the chain of causes."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, TimeoutError) or "timed out" in type(seen).__name__.lower():
            return "timed out"
        if "NameResolution" in type(seen).__name__ or "gaierror" in type(seen).__name__:
            return "no such host"
        seen = seen.__cause__ or seen.__context__
    text = str(error).lower()
    for words, reason in (
        ("refused", "connection refused"),
        ("timed out", "timed out"),
        ("name or service", "no such host"),
        ("resolution", "no such host"),
        ("reset", "connection reset"),
        ("aborted", "connection aborted"),
    ):
        if words in text:
            return reason
    return "no answer"


def _release_quietly(lease: BlobLeaseClient) -> None:
    # Lost already, or the storage is out of reach: the lease expires on its own within its duration.
    with suppress(AzureError):
        lease.release()


def keeper_lease(env: Mapping[str, str]) -> tuple[ContainerClient, BlobLeaseClient, int]:
    """The container, the lease that a keeper renews and its duration, from the keeper's environment."""
    if env.get(KEEPER_ACCOUNT_KEY):
        credential: Any = {"account_name": env[KEEPER_ACCOUNT_NAME], "account_key": env[KEEPER_ACCOUNT_KEY]}
    elif env.get(KEEPER_SAS):
        credential = env[KEEPER_SAS]
    else:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    container = container_client(env[KEEPER_ACCOUNT_URL], env[KEEPER_CONTAINER], credential)
    blob = container.get_blob_client(env[KEEPER_BLOB])
    return container, BlobLeaseClient(blob, lease_id=env[KEEPER_LEASE_ID]), int(env[KEEPER_LEASE_SECONDS])
