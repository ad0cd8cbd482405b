"""The contract of a run-state store, one suite for both backends: files on this machine (LocalStore) and a container
of Azure Blob Storage (BlobStore, on Azurite). What the journal and the orchestrator rely on: an entry read as
written with an ETag, a write conditional on it that never loses another's update, appends from threads and processes
all kept whole, and locks exclusive across processes that die with their holders and live on in a child given `fd`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest

from fluxfleet.runstate.store import Conflict, Entry
from tests.conftest import ROOT
from tests.fluxfleet.runstate.child import line
from tests.fluxfleet.runstate.conftest import LEASE_SECONDS, Backend


def spawn(backend: Backend, *argv: str) -> subprocess.Popen:
    """A second process on the same store (tests/fluxfleet/runstate/child.py)."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.fluxfleet.runstate.child", *argv],
        cwd=ROOT,
        env={**os.environ, **backend.environment},
        stdout=subprocess.PIPE,
        text=True,
    )


def said(process: subprocess.Popen) -> str:
    assert process.stdout is not None
    return process.stdout.readline().strip()


def free_within(backend: Backend, name: str, seconds: float) -> float:
    """How long until the lock `name` could be taken (it is then released again); fails after `seconds`."""
    start = time.monotonic()
    lock = backend.store.lock(name)
    while not lock.try_acquire("the test"):
        assert time.monotonic() - start < seconds, f"{name} still held by {lock.holder()} after {seconds} s"
        time.sleep(0.25)
    lock.release()
    return time.monotonic() - start


def test_an_entry_is_read_as_written_with_an_etag_that_changes_with_each_write(backend):
    store = backend.store
    assert store.read("run.json") is None
    first = store.write("run.json", b'{"stage": 1}', new=True)
    assert store.read("run.json") == Entry(b'{"stage": 1}', first)
    second = store.write("run.json", b'{"stage": 2}', etag=first)
    assert second != first
    assert store.read("run.json") == Entry(b'{"stage": 2}', second)
    third = store.write("run.json", b'{"stage": 3}')
    assert store.read("run.json") == Entry(b'{"stage": 3}', third)


def test_what_was_appended_since_is_read_from_where_the_reader_stopped_and_head_gives_the_etag(backend):
    store = backend.store
    assert store.head("run.log") is None
    store.append("run.log", b"one\n")
    first = store.read("run.log")
    assert first is not None and store.head("run.log") == first.etag
    store.append("run.log", b"two\n")
    since = store.read("run.log", offset=len(first.data))
    assert since is not None and since.data == b"two\n" and since.etag != first.etag
    assert since.etag == store.head("run.log")
    nothing_new = store.read("run.log", offset=len(b"one\ntwo\n"))
    assert nothing_new == Entry(b"", since.etag)


def test_a_write_with_a_stale_etag_is_refused_and_loses_nothing(backend):
    store = backend.store
    stale = store.write("run.json", b"read by two writers", new=True)
    current = store.write("run.json", b"the first writer's update", etag=stale)
    with pytest.raises(Conflict):
        store.write("run.json", b"the second writer's update", etag=stale)
    assert store.read("run.json") == Entry(b"the first writer's update", current)


def test_a_new_entry_where_one_exists_is_refused(backend):
    store = backend.store
    store.write("run.json", b"the first run of this id", new=True)
    with pytest.raises(Conflict):
        store.write("run.json", b"a second run of the same id", new=True)
    assert store.read("run.json").data == b"the first run of this id"


def test_a_conditional_write_of_an_entry_deleted_since_is_refused(backend):
    store = backend.store
    etag = store.write("run.json", b"read", new=True)
    store.delete("run.json")
    with pytest.raises(Conflict):
        store.write("run.json", b"written back", etag=etag)
    assert store.read("run.json") is None


def test_appends_from_several_threads_are_all_kept_whole(backend):
    store = backend.store

    def appender(tag: str) -> None:
        for index in range(20):
            store.append("journal.jsonl", line(tag, index))

    threads = [threading.Thread(target=appender, args=(f"thread{n}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expected = Counter(line(f"thread{n}", index) for n in range(6) for index in range(20))
    assert Counter(store.read("journal.jsonl").data.splitlines(keepends=True)) == expected


def test_appends_from_several_processes_are_all_kept_whole(backend):
    children = [spawn(backend, "append", "journal.jsonl", f"process{n}", "25") for n in range(3)]
    for index in range(25):
        backend.store.append("journal.jsonl", line("parent", index))
    assert [child.wait(timeout=120) for child in children] == [0, 0, 0]
    expected = Counter(
        line(tag, index) for tag in ("process0", "process1", "process2", "parent") for index in range(25)
    )
    data = backend.store.read("journal.jsonl").data
    assert Counter(data.splitlines(keepends=True)) == expected
    # Each writer's appends are in its order.
    assert [item for item in data.splitlines(keepends=True) if item.startswith(b"parent-")] == [
        line("parent", index) for index in range(25)
    ]


def test_an_append_to_an_entry_written_whole_adds_to_it(backend):
    store = backend.store
    store.write("durations.jsonl", b'{"dev": 61}\n', new=True)
    store.append("durations.jsonl", b'{"prod": 240}\n')
    assert store.read("durations.jsonl").data == b'{"dev": 61}\n{"prod": 240}\n'


def test_a_conditional_delete_after_another_writer_appended_is_refused_and_the_append_survives(backend):
    store = backend.store
    store.append("journal.jsonl", b"done dev\n")
    seen = store.read("journal.jsonl")
    store.append("journal.jsonl", b"done prod\n")  # another writer, after the read
    with pytest.raises(Conflict):
        store.delete("journal.jsonl", etag=seen.etag)
    assert store.read("journal.jsonl").data == b"done dev\ndone prod\n"
    store.delete("journal.jsonl", etag=store.read("journal.jsonl").etag)
    assert store.read("journal.jsonl") is None
    store.delete("journal.jsonl")  # none: nothing to do
    with pytest.raises(Conflict):
        store.delete("journal.jsonl", etag=seen.etag)  # gone since it was read


def test_names_are_the_stores_own_entries_sorted_without_locks(backend):
    store = backend.store
    store.write("run-b.json", b"{}", new=True)
    store.write("run-a.json", b"{}", new=True)
    store.append("run-a.jsonl", b"{}\n")
    held = [store.lock("locks/dev"), store.lock("fleet")]
    assert all(lock.try_acquire("the test") for lock in held)
    try:
        assert store.names() == ["run-a.json", "run-a.jsonl", "run-b.json"]
        assert store.names("run-a") == ["run-a.json", "run-a.jsonl"]
        assert store.names("run-c") == []
    finally:
        for lock in held:
            lock.release()


def test_a_lock_is_exclusive_across_processes_and_says_who_holds_it(backend):
    child = spawn(backend, "hold", "locks/dev", "3")
    assert said(child) == "held"
    lock = backend.store.lock("locks/dev")
    assert not lock.try_acquire("the test")
    assert lock.holder().startswith(f"process {child.pid} on ")
    assert lock.holder().endswith("(test child hold)")
    assert child.wait(timeout=60) == 0  # it released the lock
    assert lock.try_acquire("the test")
    assert lock.still_held()
    other = spawn(backend, "hold", "locks/dev", "0")
    assert said(other) == "busy"
    other.wait(timeout=60)
    assert lock.holder() == "the test"
    lock.release()
    assert not lock.still_held()
    again = spawn(backend, "hold", "locks/dev", "0")
    assert said(again) == "held"
    again.wait(timeout=60)


def test_a_lock_is_exclusive_within_one_process_too(backend):
    first, second = backend.store.lock("locks/dev"), backend.store.lock("locks/dev")
    assert first.try_acquire("one")
    assert not second.try_acquire("two")
    first.release()
    assert second.try_acquire("two")
    second.release()


def test_a_lock_whose_holder_is_killed_is_free_again(backend):
    child = spawn(backend, "hold", "locks/dev", "3600")
    assert said(child) == "held"
    child.send_signal(signal.SIGKILL)
    child.wait()
    if backend.kind == "local":
        assert backend.store.lock("locks/dev").try_acquire("the test")  # at once: the kernel closed its flock
    else:
        assert not backend.store.lock("locks/dev").try_acquire("the test")  # the lease runs on
        assert free_within(backend, "locks/dev", LEASE_SECONDS + 3) <= LEASE_SECONDS + 3


def test_a_lock_handed_to_a_child_outlives_its_taker_and_is_free_when_the_child_ends(backend):
    taker = spawn(backend, "hand", "locks/dev", "600")
    child_pid = int(said(taker))
    try:
        taker.send_signal(signal.SIGKILL)  # as a killed fluxfleet whose `pulumi up` goes on
        taker.wait()
        if backend.kind == "blob":
            time.sleep(LEASE_SECONDS + 1)  # past the lease the taker took: only the keeper's renewals hold it now
        lock = backend.store.lock("locks/dev")
        assert not lock.try_acquire("the test")
        assert lock.holder().endswith("(test child hand)")
    finally:
        os.kill(child_pid, signal.SIGKILL)
    assert free_within(backend, "locks/dev", 5) < 5


def test_a_lock_whose_fd_was_taken_is_free_once_released(backend):
    lock = backend.store.lock("locks/dev")
    assert lock.try_acquire("the test")
    assert lock.fd >= 0
    lock.release()
    assert free_within(backend, "locks/dev", 2) < 2
