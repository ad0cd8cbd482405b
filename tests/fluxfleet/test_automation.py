"""`AutomationRunner` over the real Automation API code path, with a scripted `pulumi` CLI first on PATH
(tests/tools/fake_pulumi/fake_pulumi.py; its docstring describes the scenarios)."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fluxfleet.runner import NoSuchStack, RunnerError
from fluxfleet.runner import ResourceChange, UpdateRecord
from modules.spec import ROLLBACK_REFS_ENV
from tests.conftest import ROOT
from tests.fluxfleet.conftest import FakePulumi

STACK_TYPE = "pulumi:pulumi:Stack"
AKS = "azure-native:containerservice:ManagedCluster"
EXTENSION = "azure-native:kubernetesconfiguration:Extension"
FLUX = "azure-native:kubernetesconfiguration:FluxConfiguration"
PROVIDER = "pulumi:providers:azure-native"
PARENTS = {
    AKS: "fluxfleet:cluster:AksCluster$",
    EXTENSION: "fluxfleet:flux:Extension$",
    FLUX: "fluxfleet:flux:Configuration$",
}
CANARY = "CANARY-9f3b-not-for-logs"


def urn(type_: str, name: str, stack: str = "dev") -> str:
    return f"urn:pulumi:{stack}::fluxfleet::{PARENTS.get(type_, '')}{type_}::{name}"


def step(kind: str, op: str, type_: str, name: str, stack: str = "dev", **metadata: Any) -> dict:
    return {kind: {"metadata": {"op": op, "urn": urn(type_, name, stack), "type": type_, "provider": "", **metadata}}}


def pre(op: str, type_: str, name: str, stack: str = "dev", **metadata: Any) -> dict:
    return step("resourcePreEvent", op, type_, name, stack, **metadata)


def done(op: str, type_: str, name: str, stack: str = "dev", **metadata: Any) -> dict:
    return step("resOutputsEvent", op, type_, name, stack, **metadata)


def op_failed(op: str, type_: str, name: str) -> dict:
    event = step("resOpFailedEvent", op, type_, name)
    event["resOpFailedEvent"].update(status=1, steps=0)
    return event


def diagnostic(message: str, severity: str = "error", resource: str | None = None) -> dict:
    body = {"prefix": f"{severity}: ", "message": message, "color": "never", "severity": severity}
    return {"diagnosticEvent": {**body, **({"urn": resource} if resource else {})}}


def summary(**counts: int) -> dict:
    changes = {op.replace("_", "-"): count for op, count in counts.items()}
    return {
        "summaryEvent": {"maybeCorrupt": False, "durationSeconds": 4, "resourceChanges": changes, "PolicyPacks": {}}
    }


def prelude(stack: str = "dev") -> dict:
    return {"preludeEvent": {"config": {"azure-native:location": "westeurope", "fluxfleet:cluster": f"aks-{stack}"}}}


def changed(*properties: str) -> dict:
    return {
        "diffs": sorted({p.split(".")[0] for p in properties}),
        "detailedDiff": dict.fromkeys(properties, {"diffKind": "update", "inputDiff": True}),
    }


def update_events(stack: str = "dev") -> list[dict]:
    """A successful `up`: the Flux configuration's kustomizations change and a Flux configuration is created."""
    return [
        prelude(stack),
        pre("same", STACK_TYPE, f"fluxfleet-{stack}", stack),
        pre("same", PROVIDER, "default_3_1_0", stack),
        pre("same", AKS, f"aks-{stack}", stack),
        done("same", AKS, f"aks-{stack}", stack),
        pre("update", FLUX, "platform", stack, **changed("kustomizations.apps.path")),
        pre("create", FLUX, "apps", stack),
        done("update", FLUX, "platform", stack, **changed("kustomizations.apps.path")),
        done("create", FLUX, "apps", stack),
        done("same", STACK_TYPE, f"fluxfleet-{stack}", stack),
        summary(same=3, update=1, create=1),
    ]


def paths_only(changes) -> tuple[ResourceChange, ...]:
    """The changes without their property values (the tests of values are their own)."""
    return tuple(dataclasses.replace(change, properties=()) for change in changes)


def sublist(needle: list[str], haystack: list[str]) -> bool:
    return any(haystack[i : i + len(needle)] == needle for i in range(len(haystack) - len(needle) + 1))


# --- up ---


@pytest.mark.parametrize("version", ["3.200.0", "3.210.0"], ids=["event-log-file", "event-log-grpc"])
def test_up_with_changes(fake: FakePulumi, version: str) -> None:
    runner = fake.runner(
        {"version": version, "stacks": {"dev": {"up": {"events": update_events(), "stdout": "Updating (dev)"}}}},
        env={"PULUMI_BACKEND_URL": "file:///state"},
    )
    progress: list[str] = []

    result = runner.up("dev", refresh=True, on_progress=progress.append)

    assert result.ok and not result.cancelled and result.error is None
    assert paths_only(result.changes) == (
        ResourceChange(urn(FLUX, "platform"), FLUX, "platform", "update", ("kustomizations.apps.path",)),
        ResourceChange(urn(FLUX, "apps"), FLUX, "apps", "create"),
    )
    assert result.summary == {"same": 3, "update": 1, "create": 1}
    assert progress == [f"updating {FLUX} platform", f"creating {FLUX} apps"]

    [up] = fake.argv("up")
    assert up[:4] == ["--non-interactive", "up", "--yes", "--skip-preview"]
    for flags in (["--refresh"], ["--stack", "dev"], ["--color", "never"], ["--exec-kind", "auto.local"]):
        assert sublist(flags, up), flags
    event_log = up[up.index("--event-log") + 1]
    assert event_log.startswith("tcp://127.0.0.1:") if version == "3.210.0" else event_log.endswith("eventlog.txt")
    assert fake.argv("stack", "select") == [["--non-interactive", "stack", "select", "--stack", "dev"]]
    # The SDK's own reads after `up`: outputs (masked and, unavoidably, plain) and the newest history entry.
    assert fake.argv("stack", "history") == [
        ["--non-interactive", "stack", "history", "--json", "--page-size", "1", "--page", "1", "--stack", "dev"]
    ]
    for call in fake.calls():
        assert call["cwd"] == str(ROOT)
        if call["argv"] != ["version"]:  # the SDK's version check runs in our own environment
            assert call["env"]["PULUMI_BACKEND_URL"] == "file:///state"
            assert call["env"]["PULUMI_AUTOMATION_API"] == "true"
            assert call["sid"] == call["pid"] != os.getsid(0)  # a session of its own: Ctrl-C does not reach it


def test_up_without_refresh_does_not_refresh(fake: FakePulumi) -> None:
    runner = fake.runner({"stacks": {"dev": {"up": {"events": update_events()}}}})
    assert runner.up("dev").ok
    [up] = fake.argv("up")
    assert "--refresh" not in up


def test_failed_update_is_one_line_without_secrets(fake: FakePulumi) -> None:
    events = [
        prelude(),
        pre("update", FLUX, "platform", **changed("gitRepository.httpsUser")),
        diagnostic(
            '\x1b[31m<{%fg 1%}>Status=400   Code="InvalidParameter"\tMessage="gitRepository.url is not reachable"<{%reset%}>\x1b[0m\n'
            f"  inputs: gitRepository.httpsKey={CANARY}\n",
            resource=urn(FLUX, "platform"),
        ),
        op_failed("update", FLUX, "platform"),
        diagnostic(f"update failed; config fluxfleet:httpsKey={CANARY}", resource=urn(STACK_TYPE, "fluxfleet-dev")),
        summary(same=3),
    ]
    up = {"events": events, "stdout": f"Diagnostics: {CANARY}", "stderr": "error: update failed", "exit": 255}
    runner = fake.runner({"stacks": {"dev": {"up": up}}})
    progress: list[str] = []

    result = runner.up("dev", on_progress=progress.append)

    assert not result.ok and not result.cancelled
    assert result.error == 'platform: Status=400 Code="InvalidParameter" Message="gitRepository.url is not reachable"'
    assert paths_only(result.changes) == (
        ResourceChange(urn(FLUX, "platform"), FLUX, "platform", "update", ("gitRepository.httpsUser",)),
    )
    assert result.summary == {"same": 3}
    assert progress == [f"updating {FLUX} platform", f"failed to update {FLUX} platform"]
    assert CANARY not in repr(result)


def test_command_error_without_diagnostics_is_the_cli_error_line(fake: FakePulumi) -> None:
    up = {"events": [prelude()], "stderr": f"error: could not decrypt configuration value\n  {CANARY}", "exit": 255}
    result = fake.runner({"stacks": {"dev": {"up": up}}}).up("dev")
    assert not result.ok
    assert result.error == "could not decrypt configuration value"


def test_long_error_is_capped(fake: FakePulumi) -> None:
    up = {"events": [diagnostic("x" * 5000)], "exit": 255}
    result = fake.runner({"stacks": {"dev": {"up": up}}}).up("dev")
    assert result.error is not None and len(result.error) == 200 and result.error.endswith("…")


def test_unknown_stack_is_a_failed_result_not_an_exception(fake: FakePulumi) -> None:
    runner = fake.runner({"stacks": {"dev": {}}})
    result = runner.up("nope")
    assert not result.ok and not result.cancelled
    assert result.error == "no stack named 'nope' found"
    assert fake.argv("up") == []
    assert not runner.preview("nope").ok


def test_cancel_interrupts_the_update_like_ctrl_c(fake: FakePulumi) -> None:
    up = {
        "events": [prelude(), pre("update", FLUX, "platform", **changed("suspend"))],
        "wait_for_sigint": {
            "timeout": 30,
            "events": [
                done("update", FLUX, "platform", **changed("suspend")),  # the in-flight step finishes
                diagnostic("update canceled"),
                summary(same=2, update=1),
            ],
            "stderr": "error: update canceled",
            "exit": 255,
        },
    }
    runner = fake.runner({"stacks": {"dev": {"up": up}}})
    started, cancel = threading.Event(), threading.Event()

    def progress(line: str) -> None:
        started.set()

    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(runner.up, "dev", on_progress=progress, cancel=cancel)
        assert started.wait(20), "the update never started"
        cancel.set()
        cancelled_at = time.monotonic()
        result = future.result(timeout=20)
    assert time.monotonic() - cancelled_at < 3

    assert not result.ok and result.cancelled
    assert result.error == "update canceled"
    assert paths_only(result.changes) == (
        ResourceChange(urn(FLUX, "platform"), FLUX, "platform", "update", ("suspend",)),
    )
    assert result.summary == {"same": 2, "update": 1}
    [up_call] = [call for call in fake.calls() if "up" in call["argv"]]
    assert up_call["signal"] == "SIGINT" and up_call["exit"] == 255
    assert up_call["sid"] == up_call["pid"] != os.getsid(0)


def test_cancel_before_the_update_starts_runs_nothing(fake: FakePulumi) -> None:
    cancel = threading.Event()
    cancel.set()
    result = fake.runner({"stacks": {"dev": {"up": {"events": update_events()}}}}).up("dev", cancel=cancel)
    assert not result.ok and result.cancelled
    assert fake.argv("up") == []


def test_an_unset_cancel_changes_nothing(fake: FakePulumi) -> None:
    result = fake.runner({"stacks": {"dev": {"up": {"events": update_events()}}}}).up("dev", cancel=threading.Event())
    assert result.ok and not result.cancelled
    [up_call] = [call for call in fake.calls() if "up" in call["argv"]]
    assert up_call["signal"] is None


def test_concurrent_updates_never_select_at_the_same_time(fake: FakePulumi) -> None:
    stacks = ["dev", "staging", "prod-weu", "edge-store-001"]
    ups = {name: {"up": {"events": update_events(name), "seconds": 1.0}} for name in stacks}
    runner = fake.runner({"select_seconds": 0.1, "stacks": ups})

    with ThreadPoolExecutor(len(stacks)) as pool:
        results = list(pool.map(runner.up, stacks))

    assert [result.ok for result in results] == [True] * len(stacks)
    assert [result.stack for result in results] == stacks
    assert [result.changes[0].urn for result in results] == [urn(FLUX, "platform", name) for name in stacks]
    selects = sorted((call for call in fake.calls() if "select" in call["argv"]), key=lambda call: call["start"])
    assert len(selects) == len(stacks)
    for earlier, later in zip(selects, selects[1:], strict=False):
        assert earlier["end"] <= later["start"], "two `stack select` ran at once"
    updates = [call for call in fake.calls() if "up" in call["argv"]]
    assert max(call["start"] for call in updates) < min(call["end"] for call in updates), "the updates ran one by one"


# --- preview ---


def test_preview_without_changes(fake: FakePulumi) -> None:
    events = [
        prelude(),
        pre("same", STACK_TYPE, "fluxfleet-dev", planning=True),
        pre("refresh", AKS, "aks-dev", planning=True),
        pre("same", AKS, "aks-dev", planning=True),
        pre("read", "azure-native:keyvault:Vault", "kv-dev", planning=True),
        pre("same", FLUX, "platform", planning=True),
        summary(same=4),
    ]
    progress: list[str] = []
    result = fake.runner({"stacks": {"dev": {"preview": {"events": events}}}}).preview(
        "dev", on_progress=progress.append
    )

    assert result.ok and result.error is None
    assert paths_only(result.changes) == ()
    assert result.summary == {"same": 4}
    assert progress == []
    [preview] = fake.argv("preview")
    assert preview[:2] == ["--non-interactive", "preview"]
    for flags in (["--refresh"], ["--stack", "dev"], ["--color", "never"]):
        assert sublist(flags, preview), flags
    assert "--event-log" in preview


def test_preview_with_update_replace_and_delete(fake: FakePulumi) -> None:
    replace_diff = {
        "keys": ["location"],
        "diffs": ["location"],
        "detailedDiff": {"location": {"diffKind": "update-replace", "inputDiff": True}},
    }
    events = [
        prelude(),
        pre("same", STACK_TYPE, "fluxfleet-dev", planning=True),
        pre("update", FLUX, "platform", planning=True, **changed("kustomizations.apps.path", "gitRepository.branch")),
        pre("create-replacement", AKS, "aks-dev", planning=True, **replace_diff),
        pre("replace", AKS, "aks-dev", planning=True, **replace_diff),
        pre("update", EXTENSION, "flux", planning=True, diffs=["configurationSettings"]),
        pre("delete", FLUX, "legacy", planning=True),
        pre("delete-replaced", AKS, "aks-dev", planning=True),
        summary(same=1, update=2, replace=1, delete=1),
    ]
    progress: list[str] = []
    result = fake.runner({"stacks": {"dev": {"preview": {"events": events}}}}).preview(
        "dev", refresh=False, on_progress=progress.append
    )

    assert result.ok
    assert paths_only(result.changes) == (
        ResourceChange(
            urn(FLUX, "platform"), FLUX, "platform", "update", ("kustomizations.apps.path", "gitRepository.branch")
        ),
        ResourceChange(urn(AKS, "aks-dev"), AKS, "aks-dev", "replace", ("location",)),
        ResourceChange(
            urn(EXTENSION, "flux"), EXTENSION, "flux", "update", ("configurationSettings",)
        ),  # no detailedDiff: diffs
        ResourceChange(urn(FLUX, "legacy"), FLUX, "legacy", "delete"),
    )
    assert [change.destructive for change in result.changes] == [False, True, False, True]
    assert result.summary == {"same": 1, "update": 2, "replace": 1, "delete": 1}
    assert progress[:3] == [
        f"would update {FLUX} platform",
        f"would create replacement {AKS} aks-dev",
        f"would replace {AKS} aks-dev",
    ]
    assert len(progress) == 6
    [preview] = fake.argv("preview")
    assert "--refresh" not in preview


def test_preview_refresh_error(fake: FakePulumi) -> None:
    events = [
        prelude(),
        pre("refresh", AKS, "aks-dev", planning=True),
        diagnostic(
            f"azure-native:containerservice:ManagedCluster: refreshing: AuthorizationFailed: client 'ci' has no read access\n  token={CANARY}",
            resource=urn(AKS, "aks-dev"),
        ),
        summary(),
    ]
    preview = {"events": events, "stderr": "error: preview failed", "exit": 255}
    result = fake.runner({"stacks": {"dev": {"preview": preview}}}).preview("dev")

    assert not result.ok and not result.cancelled
    assert result.error == (
        "aks-dev: azure-native:containerservice:ManagedCluster: refreshing: AuthorizationFailed: client 'ci' has no read access"
    )
    assert CANARY not in repr(result)


def test_preview_without_summary_is_a_failure(fake: FakePulumi) -> None:
    result = fake.runner({"stacks": {"dev": {"preview": {"events": [prelude()]}}}}).preview("dev")
    assert not result.ok
    assert result.error == "summary event never found"


def test_preview_replays_a_recorded_event_log(fake: FakePulumi, tmp_path: Path) -> None:
    recorded = [prelude(), pre("update", FLUX, "platform", planning=True, **changed("suspend")), summary(update=1)]
    (tmp_path / "drift.jsonl").write_text(
        "".join(
            json.dumps({"sequence": i, "timestamp": 1764000000 + i, **event}) + "\n" for i, event in enumerate(recorded)
        )
        + json.dumps({"sequence": 3, "timestamp": 1764000003, "cancelEvent": {}})
        + "\n"
    )
    result = fake.runner({"stacks": {"dev": {"preview": {"events_file": "drift.jsonl"}}}}).preview("dev")
    assert result.ok
    assert paths_only(result.changes) == (
        ResourceChange(urn(FLUX, "platform"), FLUX, "platform", "update", ("suspend",)),
    )


# --- history and state ---


def history_entry(result: str, *, ended: bool = True) -> dict:
    entry = {
        "version": 12,
        "kind": "update",
        "startTime": "2026-11-24T10:00:00.000Z",
        "message": "fluxfleet rollout",
        "environment": {"exec.kind": "auto.local"},
        "config": {"fluxfleet:httpsKey": {"secret": True}},
        "result": result,
    }
    if ended:
        entry.update(endTime="2026-11-24T10:04:30.500Z", resourceChanges={"same": 5, "update": 1})
    return entry


def test_history_newest_first_with_each_updates_message(fake: FakePulumi) -> None:
    older = {**history_entry("failed"), "startTime": "2026-11-24T09:00:00.000Z", "message": "by hand"}
    runner = fake.runner({"stacks": {"dev": {"history": [history_entry("succeeded"), older]}}})
    assert runner.history("dev", 5) == [
        UpdateRecord(
            kind="update",
            result="succeeded",
            started=datetime(2026, 11, 24, 10, 0, tzinfo=UTC),
            ended=datetime(2026, 11, 24, 10, 4, 30, 500000, tzinfo=UTC),
            message="fluxfleet rollout",
        ),
        UpdateRecord(
            "update",
            "failed",
            datetime(2026, 11, 24, 9, 0, tzinfo=UTC),
            datetime(2026, 11, 24, 10, 4, 30, 500000, tzinfo=UTC),
            "by hand",
        ),
    ]
    [history] = fake.argv("stack", "history")
    assert "--show-secrets" not in history
    assert sublist(["--page-size", "5"], history)


def test_history_with_an_update_in_progress(fake: FakePulumi) -> None:
    runner = fake.runner({"stacks": {"dev": {"history": [history_entry("in-progress", ended=False)]}}})
    [record] = runner.history("dev", 1)
    assert (record.result, record.ended) == ("in-progress", None)
    assert record.started.tzinfo is UTC


def test_history_of_a_stack_never_updated(fake: FakePulumi) -> None:
    assert fake.runner({"stacks": {"dev": {"history": []}}}).history("dev", 1) == []


def test_history_of_an_unknown_stack_raises_one_line(fake: FakePulumi) -> None:
    with pytest.raises(RunnerError, match=r"^nope: no stack named 'nope' found$"):
        fake.runner({"stacks": {}}).history("nope", 1)


@pytest.mark.parametrize("answer", [{"not": "a list"}, [{"kind": "update"}], ["x"]], ids=["object", "partial", "junk"])
def test_an_unreadable_history_is_a_runner_error_not_a_crash(fake: FakePulumi, answer) -> None:
    with pytest.raises(RunnerError, match=r"^dev: unreadable stack history \(\w+\)$"):
        fake.runner({"stacks": {"dev": {"history": answer}}}).history("dev", 1)


def test_up_is_recorded_with_its_message_and_only_up_holds_the_lock(fake: FakePulumi, tmp_path) -> None:
    runner = fake.runner({"stacks": {"dev": {"up": {"events": update_events()}}}})
    with open(tmp_path / "stack.lock", "w") as lock:
        assert runner.up("dev", message="fluxfleet rollout 20260101T000000Z-ab12: dev #1", lock_fd=lock.fileno()).ok
        lock_fd = lock.fileno()
    [up] = fake.argv("up")
    assert sublist(["--message", "fluxfleet rollout 20260101T000000Z-ab12: dev #1"], up)
    for call in fake.calls():
        assert (lock_fd in call["fds"]) == ("up" in call["argv"]), call["argv"]


def test_a_rollback_update_gives_the_program_its_refs_in_the_environment_and_nothing_else_does(
    fake: FakePulumi,
) -> None:
    runner = fake.runner({"stacks": {"dev": {"up": {"events": update_events()}, "preview": {"events": []}}}})
    refs = {"platform": {"tag": "v1.3.0"}, "apps": {"commit": "0ba6f0d", "branch": "main"}}
    assert runner.up("dev", rollback_refs=refs).ok
    assert runner.up("dev").ok
    runner.preview("dev")
    ups = [call for call in fake.calls() if "up" in call["argv"]]
    assert [json.loads(call["env"].get(ROLLBACK_REFS_ENV, "null")) for call in ups] == [refs, None]
    [preview] = [call for call in fake.calls() if "preview" in call["argv"]]
    assert ROLLBACK_REFS_ENV not in preview["env"]  # a workspace of its own: a later preview sees the files' refs


def test_pending_operations(fake: FakePulumi) -> None:
    deployment = {
        "manifest": {"time": "2026-11-24T10:02:00Z", "version": "v3.200.0"},
        "secrets_providers": {"type": "passphrase", "state": {"salt": "v1:abc"}},
        "resources": [{"urn": urn(STACK_TYPE, "fluxfleet-dev"), "type": STACK_TYPE}],
        "pending_operations": [
            {"resource": {"urn": urn(FLUX, "platform"), "type": FLUX}, "type": "updating"},
            {"resource": {"urn": urn(FLUX, "apps"), "type": FLUX}, "type": "creating"},
        ],
    }
    runner = fake.runner({"stacks": {"dev": {"export": {"version": 3, "deployment": deployment}}}})
    assert runner.pending_operations("dev") == [urn(FLUX, "platform"), urn(FLUX, "apps")]
    assert fake.argv("stack", "export") == [
        ["--non-interactive", "stack", "export", "--stack", "dev"]
    ]  # no --show-secrets


def test_no_pending_operations(fake: FakePulumi) -> None:
    assert fake.runner({"stacks": {"dev": {}}}).pending_operations("dev") == []


def test_managed_resources_are_the_custom_resources_of_the_state_but_its_providers(fake: FakePulumi) -> None:
    resources = [
        {"urn": urn(STACK_TYPE, "fluxfleet-dev"), "type": STACK_TYPE},  # not custom: the stack
        {"urn": urn(PROVIDER, "default_3_29_0"), "type": PROVIDER, "custom": True, "id": "04da6b54"},
        {"urn": urn("fluxfleet:cluster:AksCluster", "aks-dev-weu"), "type": "fluxfleet:cluster:AksCluster"},
        {"urn": urn(AKS, "aks-dev-weu"), "type": AKS, "custom": True, "id": "/subscriptions/x"},
        {"urn": urn(FLUX, "platform"), "type": FLUX, "custom": True, "id": "/subscriptions/y"},
    ]
    runner = fake.runner({"stacks": {"dev": {"export": {"version": 3, "deployment": {"resources": resources}}}}})
    assert runner.managed_resources("dev") == [urn(AKS, "aks-dev-weu"), urn(FLUX, "platform")]
    assert fake.argv("stack", "export") == [["--non-interactive", "stack", "export", "--stack", "dev"]]
    assert runner.managed_resources("gone") is None  # the backend has no such stack: nothing remains
    assert fake.runner({"stacks": {"dev": {}}}).managed_resources("dev") == []  # a stack never updated


@pytest.mark.parametrize("export", ["junk", {"deployment": ["x"]}, {"deployment": {"resources": ["x"]}}])
def test_an_unreadable_export_is_a_runner_error_not_a_crash(fake: FakePulumi, export) -> None:
    runner = fake.runner({"stacks": {"dev": {"export": export}}})
    with pytest.raises(RunnerError, match=r"^dev: unreadable stack export \(\w+\)$"):
        runner.managed_resources("dev")


def test_property_changes_carry_both_sides_with_secrets_masked(fake: FakePulumi) -> None:
    # After a refresh, the state's inputs are what Azure has; the new inputs are what the program declares.
    secret = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "value": CANARY}
    old = {
        "scope": "cluster",
        "kustomizations": {"apps": {"prune": False, "path": "./apps"}},
        "tags": {"fluxfleet.io/owner": "platform"},
        "configurationProtectedSettings": None,
    }
    new = {
        "kustomizations": {"apps": {"path": "./apps/production"}},
        "tags": {"fluxfleet.io/owner": "apps"},
        "configurationProtectedSettings": secret,
    }
    detailed = {
        "scope": {"diffKind": "delete", "inputDiff": True},
        "kustomizations.apps.prune": {"diffKind": "delete", "inputDiff": True},
        "kustomizations.apps.path": {"diffKind": "update", "inputDiff": True},
        'tags["fluxfleet.io/owner"]': {"diffKind": "update", "inputDiff": True},
        "configurationProtectedSettings": {"diffKind": "add", "inputDiff": True},
    }
    metadata = {
        "old": {"type": FLUX, "urn": urn(FLUX, "platform"), "inputs": old, "outputs": {}},
        "new": {"type": FLUX, "urn": urn(FLUX, "platform"), "inputs": new, "outputs": {}},
        "diffs": sorted({path.split(".")[0].split("[")[0] for path in detailed}),
        "detailedDiff": detailed,
    }
    events = [pre("update", FLUX, "platform", planning=True, **metadata), summary(update=1)]
    result = fake.runner({"stacks": {"dev": {"preview": {"events": events}}}}).preview("dev")

    [change] = result.changes
    assert {p.path: (p.kind, p.old, p.new) for p in change.properties} == {
        "scope": ("delete", "cluster", None),
        "kustomizations.apps.prune": ("delete", False, None),
        "kustomizations.apps.path": ("update", "./apps", "./apps/production"),
        'tags["fluxfleet.io/owner"]': ("update", "platform", "apps"),
        "configurationProtectedSettings": ("add", None, "[secret]"),
    }
    assert CANARY not in repr(result)


def test_property_changes_mask_plaintext_credentials_by_key_and_by_look(fake: FakePulumi) -> None:
    """What a refresh reads back from Azure is no Pulumi secret: a credential in plain text there (a setting named
    like a password, a PEM in a substitution) is `[secret]` before drift or a rollout shows it."""
    pem = f"-----BEGIN RSA PRIVATE KEY-----\n{CANARY}\n-----END RSA PRIVATE KEY-----"
    old = {"configurationSettings": {"helm.password": CANARY}, "substitute": {"TLS_KEY": pem, "env": "dev"}}
    new = {"configurationSettings": {"helm.password": "rotated"}, "substitute": {"TLS_KEY": "x", "env": "prod"}}
    detailed = {
        'configurationSettings["helm.password"]': {"diffKind": "update", "inputDiff": True},
        "substitute.TLS_KEY": {"diffKind": "update", "inputDiff": True},
        "substitute.env": {"diffKind": "update", "inputDiff": True},
    }
    metadata = {
        "old": {"type": EXTENSION, "urn": urn(EXTENSION, "flux"), "inputs": old, "outputs": {}},
        "new": {"type": EXTENSION, "urn": urn(EXTENSION, "flux"), "inputs": new, "outputs": {}},
        "diffs": ["configurationSettings", "substitute"],
        "detailedDiff": detailed,
    }
    events = [pre("update", EXTENSION, "flux", planning=True, **metadata), summary(update=1)]
    [change] = fake.runner({"stacks": {"dev": {"preview": {"events": events}}}}).preview("dev").changes
    assert {p.path: (p.old, p.new) for p in change.properties} == {
        'configurationSettings["helm.password"]': ("[secret]", "[secret]"),
        "substitute.TLS_KEY": ("[secret]", "x"),
        "substitute.env": ("dev", "prod"),
    }


def test_outputs_are_read_without_decrypting_secrets(fake: FakePulumi) -> None:
    outputs = {"clusterId": "/subscriptions/x/aks-dev", "secretVersions": {"keyvault:kv/pat": "0" * 32}}
    runner = fake.runner({"stacks": {"dev": {"outputs": outputs}}})
    assert runner.outputs("dev") == outputs
    [call] = fake.argv("stack", "output")
    assert "--show-secrets" not in call and sublist(["--stack", "dev"], call)


def test_a_targeted_destroy_names_each_target_carries_its_message_and_holds_the_lock(
    fake: FakePulumi, tmp_path
) -> None:
    backend_state = {
        "version": 3,
        "deployment": {
            "resources": [
                {"urn": urn(AKS, "aks-dev-weu"), "type": AKS, "custom": True},
                {"urn": urn(EXTENSION, "flux"), "type": EXTENSION, "custom": True},
                {"urn": urn(FLUX, "platform"), "type": FLUX, "custom": True},
                {"urn": urn(FLUX, "apps"), "type": FLUX, "custom": True},
            ]
        },
    }
    runner = fake.runner({"backend": "backend", "stacks": {"dev": {"export": backend_state}}})
    targets = [urn(FLUX, "platform"), urn(FLUX, "apps")]
    with open(tmp_path / "stack.lock", "w") as lock:
        result = runner.destroy(
            "dev", targets=targets, message="fluxfleet decommission r: dev configurations #1", lock_fd=lock.fileno()
        )
        lock_fd = lock.fileno()
    assert result.ok, result.error
    assert result.summary == {"delete": 2}
    assert [(c.op, c.name) for c in result.changes] == [("delete", "platform"), ("delete", "apps")]
    [destroy] = fake.argv("destroy")
    assert sublist(["--target", targets[0], "--target", targets[1]], destroy)
    assert sublist(["--message", "fluxfleet decommission r: dev configurations #1"], destroy)
    assert "--skip-preview" in destroy and "--yes" in destroy
    for call in fake.calls():
        assert (lock_fd in call["fds"]) == ("destroy" in call["argv"]), call["argv"]
    # The state keeps what was not targeted; the history has the destroy, its kind and its message.
    assert runner.managed_resources("dev") == [urn(AKS, "aks-dev-weu"), urn(EXTENSION, "flux")]
    [entry] = runner.history("dev", 5)
    assert (entry.kind, entry.result, entry.message) == (
        "destroy",
        "succeeded",
        "fluxfleet decommission r: dev configurations #1",
    )
    # Pulumi refuses to remove a stack whose state still lists resources; once empty, it goes, config kept.
    with pytest.raises(RunnerError, match=r"^dev: .*still has resources"):
        runner.remove_stack("dev")
    assert runner.destroy("dev", message="all").ok
    assert runner.managed_resources("dev") == []
    runner.remove_stack("dev")
    [*_, removal] = fake.argv("stack", "rm")
    assert [a for a in removal if a != "--non-interactive"] == [
        "stack",
        "rm",
        "--yes",
        "--preserve-config",
        "--stack",
        "dev",
    ]
    assert runner.managed_resources("dev") is None
    with pytest.raises(NoSuchStack):
        runner.remove_stack("dev")


def test_a_destroy_of_a_protected_resource_fails_in_one_line_and_deletes_nothing(fake: FakePulumi) -> None:
    resources = [{"urn": urn(AKS, "aks-dev-weu"), "type": AKS, "custom": True, "protect": True}]
    runner = fake.runner(
        {"backend": "backend", "stacks": {"dev": {"export": {"deployment": {"resources": resources}}}}}
    )
    result = runner.destroy("dev", message="m")
    assert not result.ok and "cannot be deleted because it is protected" in (result.error or "")
    assert runner.managed_resources("dev") == [urn(AKS, "aks-dev-weu")]
    assert runner.history("dev", 1)[0].result == "failed"
