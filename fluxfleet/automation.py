"""`AutomationRunner`: the `StackRunner` that runs real Pulumi operations, through the Pulumi Automation API over
this project directory (a local program: the `pulumi` CLI runs `__main__.py` with the stacks in `stacks/`).

What comes back is reduced to `fluxfleet.runner`'s small types: the engine's events become resource changes, a
summary and one line of error. Stack outputs and config are never read into them.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC
from pathlib import Path
from typing import Any

from pulumi.automation import CommandError, CommandResult, LocalWorkspace, OnOutput, PulumiCommand, Stack
from pulumi.automation.errors import InvalidVersionError, create_command_error
from pulumi.automation.events import EngineEvent, StepEventMetadata

from fluxfleet.redact import mask_secrets
from fluxfleet.runner import (
    NO_PULUMI,
    NoSuchStack,
    OnProgress,
    OperationResult,
    PropertyChange,
    ResourceChange,
    RunnerError,
    UpdateRecord,
    property_path,
)
from modules.spec import ROLLBACK_REFS_ENV, printable
from modules.spec.credentials import masked

SKIP_VERSION_CHECK = "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK"
SECRET_SIGNATURE = "4dabf18193072939515e22adb298388d"  # the key of Pulumi's secret envelope in property values
MAX_ERROR_LENGTH = 200

# Steps that leave the cloud resources as they are (reads and refreshes of state, `get` data sources).
NO_CHANGE_OPS = frozenset({"same", "read", "refresh", "read-replacement", "discard", "discard-replaced"})
DOING = {
    "create": "creating",
    "update": "updating",
    "delete": "deleting",
    "replace": "replacing",
    "create-replacement": "creating replacement",
    "delete-replaced": "deleting original",
    "import": "importing",
}

# `stack select` rewrites the project's ~/.pulumi/workspaces/<project>-<hash>-workspace.json ("current stack");
# concurrent selects from one project directory corrupt it (pulumi/pulumi#8186). Every other command here names its
# stack with --stack and leaves that file alone, so selects alone are serialised, process-wide.
_SELECT_LOCK = threading.Lock()

_NO_STACK = re.compile(r"\bno stack named '[^']*' found")  # the CLI's words for a stack the backend does not have
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_COLOR_TAG = re.compile(r"<\{%[^%]*%\}>")  # the engine's own colour markup, e.g. <{%fg 1%}>


class AutomationRunner:
    """`StackRunner` on the Pulumi Automation API. Thread-safe: each operation gets its own workspace and CLI."""

    def __init__(
        self, project_dir: Path, *, env: Mapping[str, str] | None = None, pulumi_command: PulumiCommand | None = None
    ) -> None:
        """`env` is added to the CLI's environment (backend URL, secrets passphrase, Azure credentials...).
        `pulumi_command` says which CLI to run; by default `pulumi` on PATH, version-checked here."""
        self._project_dir = str(project_dir)
        self._env = dict(env or {})
        try:
            self._cli = pulumi_command or PulumiCommand(skip_version_check=SKIP_VERSION_CHECK in self._env)
        except FileNotFoundError:
            raise RunnerError(NO_PULUMI) from None
        except (subprocess.CalledProcessError, InvalidVersionError) as error:
            raise RunnerError(f"cannot use the `pulumi` CLI: {str(error).strip().splitlines()[0]}") from None

    def up(
        self,
        stack: str,
        *,
        refresh: bool = False,
        message: str | None = None,
        lock_fd: int | None = None,
        on_progress: OnProgress | None = None,
        cancel: threading.Event | None = None,
        rollback_refs: Mapping[str, Mapping[str, str]] | None = None,
    ) -> OperationResult:
        command = _InterruptibleCommand(self._cli, cancel, () if lock_fd is None else (lock_fd,))
        events = _EventTranslator(on_progress, preview=False)
        # The program reads the refs from its environment: nothing is written to the stack's config or any file.
        env = {ROLLBACK_REFS_ENV: json.dumps(rollback_refs, sort_keys=True)} if rollback_refs is not None else {}
        try:
            selected = self._select(stack, command, env)
            if cancel is not None and cancel.is_set():
                return OperationResult(stack, ok=False, cancelled=True, error="cancelled before the update started")
            selected.up(
                color="never",
                refresh=refresh,
                message=message,
                on_event=events,
                show_secrets=False,
                suppress_outputs=True,
            )
        except CommandError as error:
            return events.result(stack, error=error, cancelled=command.interrupted)
        return events.result(stack)

    def destroy(
        self,
        stack: str,
        *,
        targets: Sequence[str] | None = None,
        message: str | None = None,
        lock_fd: int | None = None,
        on_progress: OnProgress | None = None,
    ) -> OperationResult:
        command = _InterruptibleCommand(self._cli, None, () if lock_fd is None else (lock_fd,))
        events = _EventTranslator(on_progress, preview=False)
        try:
            selected = self._select(stack, command)
            selected.destroy(
                color="never",
                message=message,
                target=list(targets) if targets else None,
                on_event=events,
                show_secrets=False,
                suppress_outputs=True,
            )
        except CommandError as error:
            return events.result(stack, error=error)
        return events.result(stack)

    def remove_stack(self, stack: str) -> None:
        # --preserve-config: the stack file is fluxfleet's to delete (a step of its own in a decommission); no
        # --force: Pulumi refuses a stack whose state still lists resources, rather than forgetting them.
        self._cli_json(stack, ["stack", "rm", "--yes", "--preserve-config", "--stack", stack])

    def preview(self, stack: str, *, refresh: bool = True, on_progress: OnProgress | None = None) -> OperationResult:
        events = _EventTranslator(on_progress, preview=True)
        try:
            selected = self._select(stack, _InterruptibleCommand(self._cli))
            selected.preview(color="never", refresh=refresh, on_event=events, suppress_outputs=True)
        except (CommandError, RuntimeError) as error:  # RuntimeError: the SDK found no summary event
            return events.result(stack, error=error)
        return events.result(stack)

    def history(self, stack: str, limit: int) -> list[UpdateRecord]:
        try:
            selected = self._select(stack, _InterruptibleCommand(self._cli))
            entries = selected.history(page_size=limit, show_secrets=False)
            # The SDK parses the CLI's UTC "...Z" times into naive datetimes.
            return [
                UpdateRecord(
                    kind=entry.kind,
                    result=entry.result,
                    started=entry.start_time.replace(tzinfo=UTC),
                    ended=entry.end_time.replace(tzinfo=UTC) if entry.end_time else None,
                    message=entry.message or "",
                )
                for entry in entries
            ]
        except CommandError as error:
            raise RunnerError(f"{stack}: {_command_error_line(error)}") from None
        except (ValueError, KeyError, TypeError, AttributeError) as error:  # an answer that is not a history
            raise RunnerError(f"{stack}: unreadable stack history ({type(error).__name__})") from None

    def pending_operations(self, stack: str) -> list[str]:
        deployment = self._deployment(stack)
        try:
            return [str(operation["resource"]["urn"]) for operation in deployment.get("pending_operations") or []]
        except (KeyError, TypeError, AttributeError) as error:
            raise RunnerError(f"{stack}: unreadable stack export ({type(error).__name__})") from None

    def managed_resources(self, stack: str) -> list[str] | None:
        """The URNs of the cloud resources the stack's state lists (not the stack, its components or providers);
        None when the backend has no such stack."""
        try:
            deployment = self._deployment(stack)
        except NoSuchStack:
            return None
        try:
            return [
                str(resource["urn"])
                for resource in deployment.get("resources") or []
                if resource.get("custom") and not str(resource.get("type", "")).startswith("pulumi:providers:")
            ]
        except (KeyError, TypeError, AttributeError) as error:
            raise RunnerError(f"{stack}: unreadable stack export ({type(error).__name__})") from None

    def _deployment(self, stack: str) -> dict[str, Any]:
        # Not `Stack.export_stack()`: it passes --show-secrets, which needs the secrets provider and decrypts every
        # secret in the state. A plain export keeps them encrypted, and --stack needs no `stack select`.
        exported = self._cli_json(stack, ["stack", "export", "--stack", stack])
        try:
            deployment = json.loads(exported).get("deployment") or {}
        except (ValueError, AttributeError) as error:
            raise RunnerError(f"{stack}: unreadable stack export ({type(error).__name__})") from None
        if not isinstance(deployment, dict):
            raise RunnerError(f"{stack}: unreadable stack export (TypeError)")
        return deployment

    def outputs(self, stack: str) -> dict[str, Any]:
        # Not `Stack.outputs()`: it also runs `stack output --show-secrets`. Without it, secrets read "[secret]".
        try:
            outputs = json.loads(self._cli_json(stack, ["stack", "output", "--json", "--stack", stack]) or "{}")
        except ValueError:
            raise RunnerError(f"{stack}: unreadable stack outputs") from None
        if not isinstance(outputs, dict):
            raise RunnerError(f"{stack}: unreadable stack outputs")
        return outputs

    def _cli_json(self, stack: str, args: list[str]) -> str:
        try:
            return _InterruptibleCommand(self._cli).run(args, self._project_dir, self._env).stdout
        except CommandError as error:
            line = _command_error_line(error)
            raise (NoSuchStack if _NO_STACK.search(line) else RunnerError)(f"{stack}: {line}") from None

    def _select(self, stack: str, command: PulumiCommand, env: Mapping[str, str] | None = None) -> Stack:
        env_vars = {**self._env, **(env or {})}
        workspace = LocalWorkspace(work_dir=self._project_dir, env_vars=env_vars, pulumi_command=command)
        with _SELECT_LOCK:
            return Stack.select(stack, workspace)


class _InterruptibleCommand(PulumiCommand):
    """The CLI for one operation. `run` is the SDK's (3.272) plus three things:
    - the CLI starts in a session of its own, so the terminal's Ctrl-C does not reach it (the orchestrator lets
      in-flight updates end on the first one), and setting `cancel` during `up` sends it SIGINT, which is what
      Ctrl-C does: the engine schedules no more steps, lets the in-flight ones finish and writes the state (the
      Python Automation API has no way to cancel a command);
    - its output goes to files, not pipes: if fluxfleet dies, an update goes on to its end and writes its state
      instead of being killed half-way by a broken pipe (the Go CLI dies of SIGPIPE on its next write to one);
    - `up` and `destroy` keep `keep_fds` open (the stack's lock: see fluxfleet/runstate)."""

    def __init__(self, cli: PulumiCommand, cancel: threading.Event | None = None, keep_fds: tuple[int, ...] = ()):
        # No super().__init__(): it would run `pulumi version` again; `cli` has been checked.
        self.command = cli.command
        self.version = cli.version
        self._cancel = cancel
        self._keep_fds = keep_fds
        self.interrupted = False

    def run(
        self,
        args: list[str],
        cwd: str,
        additional_env: Mapping[str, str],
        on_output: OnOutput | None = None,
        on_error: OnOutput | None = None,
    ) -> CommandResult:
        # Only the update is interrupted: interrupting a read the SDK runs after it (outputs, history) would turn a
        # finished update into a failed one. An update or a destroy holds the stack's lock (`keep_fds`).
        updating = args[:1] in (["up"], ["destroy"])
        cancel = self._cancel if args[:1] == ["up"] else None
        separator = args.index("--") if "--" in args else len(args)
        if "--non-interactive" not in args[:separator]:
            args.insert(0, "--non-interactive")  # fail rather than prompt; before any "--", as the SDK does
        env = {**os.environ, **additional_env, "PULUMI_AUTOMATION_API": "true"}
        if os.path.isabs(self.command):  # plugins bundled beside the CLI come first, as in the SDK
            env["PATH"] = os.pathsep.join([os.path.dirname(self.command), env.get("PATH", "")])

        with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
            process = subprocess.Popen(
                [self.command, *args],
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                cwd=cwd,
                env=env,
                start_new_session=True,
                pass_fds=self._keep_fds if updating else (),
            )
            while cancel is not None and process.poll() is None:
                if cancel.wait(0.1):
                    process.send_signal(signal.SIGINT)  # once: a second Ctrl-C would abandon in-flight steps
                    self.interrupted = True
                    break
            code = process.wait()
            out, err = (_lines(stream) for stream in (stdout, stderr))

        for callback, lines in ((on_output, out), (on_error, err)):
            for line in lines if callback else ():
                callback(line)
        result = CommandResult(stdout="\n".join(out), stderr="\n".join(err), code=code)
        if code != 0:
            raise create_command_error(result)
        return result


def _lines(stream) -> list[str]:
    stream.seek(0)
    return [line.rstrip() for line in stream.read().decode("utf-8", errors="replace").splitlines()]


class _EventTranslator:
    """The `on_event` callback: engine events in, what `OperationResult` needs out. The SDK calls it from one thread
    and has delivered every event by the time `up`/`preview` returns or raises.

    Ignored on purpose: the prelude event (it carries the stack's config) and the cancel event (the engine ends every
    event stream with one, cancelled or not)."""

    def __init__(self, on_progress: OnProgress | None, *, preview: bool) -> None:
        self._on_progress = on_progress
        self._preview = preview
        self._changes: dict[str, ResourceChange] = {}  # by URN, in the order the engine reached them
        self._failed: list[str] = []  # a line per failed step
        self._summary: dict[str, int] = {}
        self._error: str | None = None  # from the first error diagnostic

    def __call__(self, event: EngineEvent) -> None:
        if event.resource_pre_event:
            self._step(event.resource_pre_event.metadata, announce=True)
        elif event.res_outputs_event:
            self._step(event.res_outputs_event.metadata, announce=False)
        elif event.res_op_failed_event:
            metadata = event.res_op_failed_event.metadata
            line = f"failed to {metadata.op.value.replace('-', ' ')} {metadata.type} {_name(metadata.urn)}"
            self._failed.append(line)
            self._progress(line)
        elif event.diagnostic_event:
            diagnostic = event.diagnostic_event
            if diagnostic.severity == "error" and self._error is None:
                line = _one_line(diagnostic.message)
                if line and diagnostic.urn:
                    line = _cap(f"{_name(diagnostic.urn)}: {line}")
                self._error = line
        elif event.summary_event:
            self._summary = {str(op): int(count) for op, count in event.summary_event.resource_changes.items()}

    def _step(self, metadata: StepEventMetadata, *, announce: bool) -> None:
        op = metadata.op.value
        if op in NO_CHANGE_OPS:
            return
        diffs = tuple(metadata.detailed_diff or ()) or tuple(metadata.diffs or ())
        properties = _property_changes(metadata)
        known = self._changes.get(metadata.urn)
        if known is None:
            self._changes[metadata.urn] = ResourceChange(
                metadata.urn, metadata.type, _name(metadata.urn), op, diffs, properties
            )
        else:
            # A replacement is three steps on one URN (create-replacement, replace, delete-replaced): one change.
            merged_op = "replace" if op == "replace" else known.op
            merged_diffs = known.diffs + tuple(d for d in diffs if d not in known.diffs)
            merged_properties = known.properties + tuple(p for p in properties if p.path not in known.diffs)
            self._changes[metadata.urn] = ResourceChange(
                known.urn, known.type, known.name, merged_op, merged_diffs, merged_properties
            )
        if announce:
            verb = f"would {op.replace('-', ' ')}" if self._preview else DOING.get(op, op)
            self._progress(f"{verb} {metadata.type} {_name(metadata.urn)}")

    def _progress(self, line: str) -> None:
        if self._on_progress is not None:
            self._on_progress(line)

    def result(self, stack: str, *, error: Exception | None = None, cancelled: bool = False) -> OperationResult:
        message = None
        if error is not None:
            fallback = _command_error_line(error) if isinstance(error, CommandError) else _one_line(str(error))
            message = self._error or (self._failed[0] if self._failed else None) or fallback
        return OperationResult(
            stack=stack,
            ok=error is None,
            changes=tuple(self._changes.values()),
            summary=self._summary,
            error=message,
            cancelled=cancelled,
        )


def _property_changes(metadata: StepEventMetadata) -> tuple[PropertyChange, ...]:
    """The detailed diff with values: the old side from the state's inputs (an input diff) or its outputs. Secrets
    and plaintext credentials (by their look, or their key: `configurationSettings.helm.password`) are masked."""
    old, new = metadata.old, metadata.new
    changes = []
    for path, diff in (metadata.detailed_diff or {}).items():
        before = (old.inputs if diff.input_diff else old.outputs) if old else None
        key = ([None, *property_path(path)])[-1]
        changes.append(
            PropertyChange(
                path,
                getattr(diff.diff_kind, "value", str(diff.diff_kind)),
                masked(_masked(_value_at(before, path)), key),
                masked(_masked(_value_at(new.inputs if new else None, path)), key),
            )
        )
    return tuple(changes)


def _value_at(values: Any, path: str) -> Any:
    """The value at a Pulumi property path, None when absent."""
    for part in property_path(path):
        if isinstance(part, int) and isinstance(values, list):
            values = values[part] if part < len(values) else None
        elif isinstance(values, dict):
            values = values.get(str(part))
        else:
            return None
    return values


def _masked(value: Any) -> Any:
    """A secret in an event's values (the engine's secret envelope) as the CLI prints it."""
    if isinstance(value, dict):
        if SECRET_SIGNATURE in value:
            return "[secret]"
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return value


def _name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def _one_line(text: str) -> str | None:
    """The first non-blank line, uncoloured, whitespace collapsed, credentials masked, escaped, capped. Only the
    first: diagnostics go on to quote inputs and config, and even the first may quote a provider's request."""
    text = _COLOR_TAG.sub("", _ANSI.sub("", text))
    for line in text.splitlines():
        line = " ".join(line.split())
        if line:
            return _cap(printable(mask_secrets(line.removeprefix("error: "))))
    return None


def _cap(line: str) -> str:
    return line if len(line) <= MAX_ERROR_LENGTH else line[: MAX_ERROR_LENGTH - 1] + "…"


def _command_error_line(error: CommandError) -> str:
    # A CommandError keeps only str(CommandResult): "\n code: N\n stdout: ...\n stderr: ...". Only stderr is read
    # (stdout is the CLI's display of resources), and within it the CLI's own "error: ..." line if there is one.
    text = str(error)
    stderr = text.rpartition("\n stderr: ")[2]
    lines = [line for line in stderr.splitlines() if line.strip()]
    first = next((line for line in lines if line.lstrip().startswith("error:")), lines[0] if lines else "")
    code = re.search(r" code: (-?\d+)", text)
    return _one_line(first) or f"pulumi exited with code {code.group(1) if code else '?'}"
