"""Which store holds the run state, from --runs-dir and the environment as Pulumi's azblob backend reads it; a
PULUMI_BACKEND_URL that fluxfleet cannot use is one line saying which variable to set. The choice needs no network;
the last tests use the chosen store, on Azurite, as a user's environment would give it."""

from __future__ import annotations

from pathlib import Path

import pytest
from azure.identity import DefaultAzureCredential

from fluxfleet.runstate.azblob import BlobStore, account_url
from fluxfleet.runstate.backends import fleet_lock_store, run_store
from fluxfleet.runstate.local import LocalStore
from fluxfleet.runstate.store import StoreError
from tests.tools.azurite.server import ACCOUNT, KEY

ACCOUNT_KEY = "a2V5LW9mLXRoZS1hY2NvdW50LWZvci10aGUtYmFja2VuZC10ZXN0cy0wMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OQ=="


def test_runs_dir_wins_over_any_backend(tmp_path):
    env = {"PULUMI_BACKEND_URL": "azblob://state", "AZURE_STORAGE_ACCOUNT": "fleet"}
    store = run_store(tmp_path / "runs", env)
    assert isinstance(store, LocalStore)
    assert store.where == str(tmp_path / "runs")


@pytest.mark.parametrize(
    "backend", [None, "file://~", "file:///srv/pulumi", "s3://state", "gs://state", "https://api.pulumi.com"]
)
def test_any_backend_but_azblob_keeps_the_runs_in_files(tmp_path, backend):
    env = {} if backend is None else {"PULUMI_BACKEND_URL": backend, "AZURE_STORAGE_ACCOUNT": "fleet"}
    runs, fleet = run_store(None, env), fleet_lock_store(tmp_path, env)
    assert (type(runs), runs.where) == (LocalStore, ".fluxfleet/runs")
    assert (type(fleet), fleet.where) == (LocalStore, str(tmp_path / ".fluxfleet"))


@pytest.mark.parametrize(
    "url, env, endpoint",
    [
        ("azblob://state", {"AZURE_STORAGE_ACCOUNT": "fleet"}, "https://fleet.blob.core.windows.net"),
        ("azblob://state?storage_account=fleet", {}, "https://fleet.blob.core.windows.net"),
        (
            "azblob://state?storage_account=fleet",
            {"AZURE_STORAGE_ACCOUNT": "other"},
            "https://fleet.blob.core.windows.net",
        ),
        (
            "azblob://state?domain=blob.core.chinacloudapi.cn",
            {"AZURE_STORAGE_ACCOUNT": "fleet"},
            "https://fleet.blob.core.chinacloudapi.cn",
        ),
        (
            "azblob://state",
            {
                "AZURE_STORAGE_ACCOUNT": "devstoreaccount1",
                "AZURE_STORAGE_DOMAIN": "127.0.0.1:10000",
                "AZURE_STORAGE_PROTOCOL": "http",
                "AZURE_STORAGE_IS_LOCAL_EMULATOR": "true",
                "AZURE_STORAGE_KEY": KEY,
            },
            "http://127.0.0.1:10000/devstoreaccount1",
        ),
    ],
)
def test_azblob_keeps_the_runs_in_pulumis_container_of_the_account_pulumi_reads(tmp_path, url, env, endpoint):
    env = {"PULUMI_BACKEND_URL": url, **env}
    runs, fleet = run_store(None, env), fleet_lock_store(tmp_path, env)
    assert isinstance(runs, BlobStore) and isinstance(fleet, BlobStore)
    assert (runs.where, fleet.where) == ("azblob://state/.fluxfleet/runs", "azblob://state/.fluxfleet")
    assert (runs.prefix, fleet.prefix) == (".fluxfleet/runs/", ".fluxfleet/")
    assert account_url(runs.container) == endpoint
    if "AZURE_STORAGE_KEY" not in env:
        assert isinstance(runs.container.credential, DefaultAzureCredential)  # no key: the signed-in identity


def test_a_path_in_the_url_is_where_the_runs_are_in_the_container():
    store = run_store(None, {"PULUMI_BACKEND_URL": "azblob://state/team-a", "AZURE_STORAGE_ACCOUNT": "fleet"})
    assert store.where == "azblob://state/team-a/.fluxfleet/runs"


def test_a_key_or_a_sas_token_is_the_credential_when_given():
    env = {"PULUMI_BACKEND_URL": "azblob://state", "AZURE_STORAGE_ACCOUNT": "fleet"}
    keyed = run_store(None, {**env, "AZURE_STORAGE_KEY": ACCOUNT_KEY})
    assert (keyed.container.credential.account_name, keyed.container.credential.account_key) == ("fleet", ACCOUNT_KEY)
    signed = run_store(None, {**env, "AZURE_STORAGE_SAS_TOKEN": "?sv=2025-01-05&sp=rwdlac&sig=c2lnbmF0dXJl"})
    assert signed.container.url == "https://fleet.blob.core.windows.net/state?sv=2025-01-05&sp=rwdlac&sig=c2lnbmF0dXJl"
    assert account_url(signed.container) == "https://fleet.blob.core.windows.net"
    connected = run_store(
        None,
        {
            **env,
            "AZURE_STORAGE_CONNECTION_STRING": f"DefaultEndpointsProtocol=https;AccountName=conn;AccountKey={ACCOUNT_KEY};EndpointSuffix=core.windows.net",
        },
    )
    assert account_url(connected.container) == "https://conn.blob.core.windows.net"
    assert connected.container.credential.account_key == ACCOUNT_KEY


@pytest.mark.parametrize(
    "env, message",
    [
        (
            {"PULUMI_BACKEND_URL": "azblob://state"},
            "PULUMI_BACKEND_URL=azblob://state: which storage account? Set AZURE_STORAGE_ACCOUNT (or "
            "azblob://state?storage_account=NAME, or AZURE_STORAGE_CONNECTION_STRING), as Pulumi needs too",
        ),
        (
            {"PULUMI_BACKEND_URL": "azblob://", "AZURE_STORAGE_ACCOUNT": "fleet"},
            "PULUMI_BACKEND_URL: azblob://: not a container's name (3 to 63 lowercase letters, digits and hyphens): "
            "set it to azblob://CONTAINER, the container of Pulumi's state",
        ),
        (
            {"PULUMI_BACKEND_URL": "azblob://Pulumi_State", "AZURE_STORAGE_ACCOUNT": "fleet"},
            "PULUMI_BACKEND_URL: azblob://Pulumi_State: not a container's name (3 to 63 lowercase letters, digits and "
            "hyphens): set it to azblob://CONTAINER, the container of Pulumi's state",
        ),
        (
            {"PULUMI_BACKEND_URL": "azblob://state?account=fleet", "AZURE_STORAGE_ACCOUNT": "fleet"},
            "PULUMI_BACKEND_URL: azblob://state: unknown parameter 'account' (Pulumi's azblob backend takes domain, "
            "localemu, protocol, storage_account)",
        ),
        (
            {"PULUMI_BACKEND_URL": "azblob://state?protocol=http", "AZURE_STORAGE_ACCOUNT": "fleet"},
            "PULUMI_BACKEND_URL=azblob://state: a signed-in identity is used over https only: set AZURE_STORAGE_KEY or "
            "AZURE_STORAGE_SAS_TOKEN to use http",
        ),
        (
            {"PULUMI_BACKEND_URL": "azblob://state", "AZURE_STORAGE_CONNECTION_STRING": f"AccountKey={ACCOUNT_KEY}"},
            "AZURE_STORAGE_CONNECTION_STRING: not a storage account's connection string (it is the one of the storage "
            "account's Access keys)",
        ),
    ],
)
def test_an_azblob_backend_fluxfleet_cannot_use_is_one_line_saying_what_to_set(tmp_path, env, message):
    for choose in (lambda: run_store(None, env), lambda: fleet_lock_store(tmp_path, env)):
        with pytest.raises(StoreError) as raised:
            choose()
        assert str(raised.value) == message
        assert ACCOUNT_KEY not in str(raised.value)


def test_the_store_of_a_connection_string_keeps_runs_and_the_fleets_lock_in_pulumis_container(
    azurite, container, tmp_path
):
    env = {
        "PULUMI_BACKEND_URL": f"azblob://{container.container_name}",
        "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string(),
    }
    run_store(None, env).write("run-1.json", b"{}", new=True)
    lock = fleet_lock_store(tmp_path, env).lock("fleet")
    assert lock.try_acquire("the test")
    lock.release()
    assert sorted(blob.name for blob in container.list_blobs()) == [
        ".fluxfleet/fleet.lock",
        ".fluxfleet/runs/run-1.json",
    ]


def test_the_store_of_an_account_and_key_reaches_an_emulator_as_pulumi_does(azurite, container):
    env = {
        "PULUMI_BACKEND_URL": f"azblob://{container.container_name}?localemu=true&protocol=http&domain=127.0.0.1:{azurite.port}",
        "AZURE_STORAGE_ACCOUNT": ACCOUNT,
        "AZURE_STORAGE_KEY": KEY,
    }
    store = run_store(None, env)
    etag = store.write("run-1.json", b"{}", new=True)
    assert store.read("run-1.json").etag == etag
    assert store.names() == ["run-1.json"]


def test_the_run_store_defaults_to_a_directory_of_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = run_store(None, {})
    store.write("run-1.json", b"{}", new=True)
    assert (tmp_path / ".fluxfleet" / "runs" / "run-1.json").read_bytes() == b"{}"
    assert store.where == str(Path(".fluxfleet/runs"))


def test_the_lease_of_a_holder_that_died_lasts_what_fluxfleet_lease_seconds_says_within_azures_bounds():
    env = {"PULUMI_BACKEND_URL": "azblob://state", "AZURE_STORAGE_ACCOUNT": "fleet", "AZURE_STORAGE_KEY": ACCOUNT_KEY}
    assert run_store(None, env).lease_seconds == 60
    assert run_store(None, env | {"FLUXFLEET_LEASE_SECONDS": "15"}).lease_seconds == 15
    assert fleet_lock_store(Path("stacks"), env | {"FLUXFLEET_LEASE_SECONDS": "30"}).lease_seconds == 30
    for wrong in ("14", "61", "forever", "-20"):
        with pytest.raises(StoreError) as refused:
            run_store(None, env | {"FLUXFLEET_LEASE_SECONDS": wrong})
        assert str(refused.value) == (
            f"FLUXFLEET_LEASE_SECONDS={wrong!r}: a blob lease lasts 15 to 60 seconds: set a number in that range"
        )
