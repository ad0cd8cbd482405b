"""The Blob Storage store where it differs from files, on Azurite: where each entry and lock is in the container, the
storage's refusals as one line that says what to do (no such container, 403, out of reach) and never a credential,
and a lease lost while held."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobLeaseClient, ContainerClient

from fluxfleet.runstate.azblob import BlobStore, container_client, container_client_from_connection_string
from fluxfleet.runstate.store import Conflict, StoreError
from tests.fluxfleet.runstate.conftest import LEASE_SECONDS
from tests.tools.azurite.server import KEY, start_azurite

PREFIX = ".fluxfleet/runs/"
WRONG_KEY = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXk0MjQyNDI0Mg=="
FAKE_SAS = (
    "sv=2025-01-05&ss=b&srt=sco&sp=rwdlac&se=2099-01-01T00%3A00%3A00Z&sig=Zm9yZ2VkU2lnbmF0dXJlRm9yVGhlVGVzdA%3D%3D"
)
SECRETS = (KEY, WRONG_KEY, "Zm9yZ2VkU2lnbmF0dXJl", "sig=", "AccountKey")


def failures(store: BlobStore) -> list[str]:
    """The message of every operation of the store, each expected to fail."""
    messages = []
    for operation in (
        lambda: store.read("run.json"),
        lambda: store.write("run.json", b"{}"),
        lambda: store.write("run.json", b"{}", new=True),
        lambda: store.append("run.jsonl", b"{}\n"),
        lambda: store.delete("run.json"),
        lambda: store.names(),
        lambda: store.lock("locks/dev").try_acquire("the test"),
    ):
        with pytest.raises(StoreError) as raised:
            operation()
        assert not isinstance(raised.value, Conflict)
        messages.append(str(raised.value))
    return messages


def assert_one_clean_line(message: str) -> None:
    assert "\n" not in message
    for secret in SECRETS:
        assert secret not in message


def test_entries_and_locks_are_blobs_under_the_prefix(container):
    store = BlobStore(container, PREFIX, lease_seconds=LEASE_SECONDS)
    store.write("run.json", b"{}", new=True)
    store.append("run.jsonl", b"{}\n")
    lock = store.lock("locks/dev")
    assert lock.try_acquire("process 1 on ci (rollout)")
    try:
        blobs = {blob.name: blob for blob in container.list_blobs(include=["metadata"])}
        assert sorted(blobs) == [
            ".fluxfleet/runs/locks/dev.lock",
            ".fluxfleet/runs/run.json",
            ".fluxfleet/runs/run.jsonl",
        ]
        assert blobs[".fluxfleet/runs/run.jsonl"].blob_type == "AppendBlob"
        assert blobs[".fluxfleet/runs/locks/dev.lock"].lease.state == "leased"
        assert container.download_blob(".fluxfleet/runs/locks/dev.lock").readall() == b"process 1 on ci (rollout)"
        assert store.where == f"azblob://{container.container_name}/.fluxfleet/runs"
    finally:
        lock.release()
    assert container.get_blob_client(".fluxfleet/runs/locks/dev.lock").get_blob_properties().lease.state == "available"


def test_names_leave_out_blobs_below_a_further_folder_and_locks(container):
    for name in (
        ".fluxfleet/runs/a.json",
        ".fluxfleet/runs/deeper/b.json",
        ".fluxfleet/runs/c.lock",
        ".fluxfleet/d.json",
    ):
        container.upload_blob(name, b"{}")
    assert BlobStore(container, PREFIX).names() == ["a.json"]
    assert BlobStore(container, ".fluxfleet/").names() == ["d.json"]


def test_conflicts_are_the_storages_409_and_412(container):
    """Azurite answers as Azure does (412 for a failed If-Match, 409 for a blob that If-None-Match: * found, 409
    LeaseAlreadyPresent), and each is the store's Conflict, or a lock not taken."""
    store = BlobStore(container, PREFIX, lease_seconds=LEASE_SECONDS)
    etag = store.write("run.json", b"one", new=True)
    store.write("run.json", b"two", etag=etag)
    blob = container.get_blob_client(".fluxfleet/runs/run.json")
    with pytest.raises(HttpResponseError) as stale:
        blob.upload_blob(b"three", overwrite=True, etag=etag, match_condition=MatchConditions.IfNotModified)
    with pytest.raises(HttpResponseError) as present:
        blob.upload_blob(b"three", overwrite=False)
    assert (stale.value.status_code, present.value.status_code) == (412, 409)
    with pytest.raises(Conflict, match=r"run\.json: changed or gone since it was read"):
        store.write("run.json", b"three", etag=etag)
    with pytest.raises(Conflict, match=r"run\.json: exists already"):
        store.write("run.json", b"three", new=True)
    lock = store.lock("locks/dev")
    assert lock.try_acquire("one")
    with pytest.raises(HttpResponseError) as leased:
        BlobLeaseClient(container.get_blob_client(".fluxfleet/runs/locks/dev.lock")).acquire(lease_duration=15)
    assert (leased.value.status_code, leased.value.error_code) == (409, "LeaseAlreadyPresent")
    assert not store.lock("locks/dev").try_acquire("two")
    lock.release()


def test_a_container_that_does_not_exist_is_one_line_naming_pulumis_container(azurite):
    container = container_client_from_connection_string(azurite.connection_string(), "no-such-container")
    messages = failures(BlobStore(container, PREFIX))
    assert set(messages) == {
        f"azblob://no-such-container/.fluxfleet/runs: no such container in the storage account at {azurite.endpoint}: "
        "it is Pulumi's state container, check PULUMI_BACKEND_URL (azblob://CONTAINER) and AZURE_STORAGE_ACCOUNT"
    }
    assert_one_clean_line(messages[0])


@pytest.mark.parametrize("credential", ["key", "sas"])
def test_an_account_that_refuses_is_one_line_naming_the_role_and_no_credential(azurite, container, credential):
    if credential == "key":
        refused = container_client_from_connection_string(
            azurite.connection_string(WRONG_KEY), container.container_name
        )
    else:
        refused = container_client(azurite.endpoint, container.container_name, FAKE_SAS)
    messages = failures(BlobStore(refused, PREFIX))
    assert {message.split(" (403 ")[0] for message in messages} == {
        f"azblob://{container.container_name}/.fluxfleet/runs: the storage account at {azurite.endpoint} refused access"
    }
    for message in messages:
        assert message.endswith(
            ': the identity needs the role "Storage Blob Data Contributor" on the container (or check '
            "AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN or AZURE_STORAGE_CONNECTION_STRING)"
        )
        assert_one_clean_line(message)


def test_a_storage_that_stops_answering_is_a_store_error_within_seconds(tmp_path: Path):
    azurite = start_azurite(tmp_path / "azurite")
    try:
        container = container_client_from_connection_string(azurite.connection_string(), "runs")
        container.create_container()
        store = BlobStore(container, PREFIX, lease_seconds=LEASE_SECONDS)
        store.write("run.json", b"{}", new=True)
        lock = store.lock("locks/dev")
        assert lock.try_acquire("the test")
    finally:
        azurite.stop()
    assert lock.still_held()  # not renewed, but not expired yet: nobody else can have it
    for operation in (lambda: store.read("run.json"), lambda: store.append("run.jsonl", b"{}\n")):
        start = time.monotonic()
        with pytest.raises(StoreError) as raised:
            operation()
        assert time.monotonic() - start < 10
        assert str(raised.value) == (
            f"azblob://runs/.fluxfleet/runs: cannot reach the storage account at {azurite.endpoint} (connection "
            "refused, 4 tries): check the network, and the account in AZURE_STORAGE_ACCOUNT or PULUMI_BACKEND_URL"
        )
    lock.release()  # it expires on its own


def test_a_held_lock_outlives_its_lease_renewed_by_its_holder(container):
    store = BlobStore(container, PREFIX, lease_seconds=LEASE_SECONDS)
    lock = store.lock("locks/dev")
    assert lock.try_acquire("the holder")
    time.sleep(LEASE_SECONDS + 2)
    assert not store.lock("locks/dev").try_acquire("another")
    assert lock.still_held()
    lock.release()
    assert store.lock("locks/dev").try_acquire("another")


def test_a_lease_broken_by_another_is_seen_by_its_holder(container):
    store = BlobStore(container, PREFIX, lease_seconds=LEASE_SECONDS)
    lock = store.lock("locks/dev")
    assert lock.try_acquire("the first holder")
    assert lock.still_held()
    BlobLeaseClient(container.get_blob_client(".fluxfleet/runs/locks/dev.lock")).break_lease(lease_break_period=0)
    assert not lock.still_held()
    other = store.lock("locks/dev")
    assert other.try_acquire("the second holder")
    assert not lock.still_held()
    lock.release()  # releases nothing of the second holder's
    assert other.still_held()
    assert store.lock("locks/dev").holder() == "the second holder"
    other.release()


def test_the_keeper_is_given_the_key_in_its_environment_never_its_command_line(container):
    store = BlobStore(container, PREFIX, lease_seconds=LEASE_SECONDS)
    lock = store.lock(f"locks/{uuid.uuid4().hex}")
    assert lock.try_acquire("the test")
    try:
        lock.fd  # noqa: B018 - starts the keeper
        pid = lock._keeper.pid
        argv = Path(f"/proc/{pid}/cmdline").read_bytes()
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        assert argv.split(b"\0")[1:3] == [b"-m", b"fluxfleet.runstate.keeper"]
        assert KEY.encode() not in argv
        assert f"FLUXFLEET_KEEPER_ACCOUNT_KEY={KEY}".encode() in environ.split(b"\0")
        assert Path(f"/proc/{pid}/stat").read_text().split()[5] == str(pid)  # a session of its own
    finally:
        lock.release()


@pytest.mark.parametrize("offset", [0, 4])
def test_a_read_that_finds_nothing_while_a_writer_appends_never_names_the_version_with_the_append(
    azurite, container, offset
):
    """A read that finds an entry empty (or nothing past `offset`) makes a second request (the SDK's read of an
    empty blob, or the properties); a writer's append lands in between. The read must give the append, or an ETag
    of the version without it: an ETag of the version with it, beside no data, makes the journal skip that line
    (unchanged ETag: nothing new) and a save delete it."""
    appended = []

    def append_once_after_the_first_answer(response) -> None:
        if not appended and response.http_request.method == "GET":
            appended.append(True)
            container.get_blob_client("journal.log").append_block(b"X\n")

    hooked = ContainerClient.from_connection_string(
        azurite.connection_string(), container.container_name, raw_response_hook=append_once_after_the_first_answer
    )
    store = BlobStore(hooked, "")
    container.get_blob_client("journal.log").create_append_blob()
    if offset:
        container.get_blob_client("journal.log").append_block(b"one\n")
    found = store.read("journal.log", offset=offset)
    assert appended
    assert found is not None and found.data == b"X\n"
    assert found.etag == store.head("journal.log")
