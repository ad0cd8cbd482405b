"""A scripted `pulumi` CLI for tests: it plays back a scenario, so the real Automation API code path runs without
Pulumi. Tests put a `pulumi` wrapper that execs this script first on PATH.

Environment:
  FAKE_PULUMI_SCENARIO  the scenario JSON file (required)
  FAKE_PULUMI_LOG       a JSON-lines file; one record is appended per invocation:
                        {"argv", "cwd", "pid", "sid", "env" (the PULUMI_* and FLUXFLEET_* variables), "fds"
                        (descriptors above 2 it was started with), "start", "end", "signal", "exit"}
                        ("sid" == "pid": the process leads a session of its own; "signal": "SIGINT" if it got one)

Scenario:
  {
    "backend": "DIR",          optional: a persistent backend in DIR (relative to the scenario), as a self-managed
                               one behaves: `up` records each update in DIR/<stack>.history.json once it has ended
                               (and no sooner), and `stack history` answers from there; DIR/applies.jsonl gets a line
                               as each update starts and one as it ends ({"event": "start"|"end", "stack", "message",
                               "pid", "time"}), so tests can count applies and see two updates of a stack overlap;
                               its `up` writes to stdout at the end, as the CLI does, before it records the update
    "version": "3.200.0",      what `pulumi version` answers. Up to 3.205.0 the SDK gives --event-log a file;
                               above, a tcp:// address of its gRPC event server: both are played back
    "select_seconds": 0.0,     how long `stack select` takes
    "program": {               optional, instead of "stacks": a Python file (relative to the scenario) that plays the
      "file": "program.py",    program: the stacks are those it lists, `stack_names(project_dir)`; `up` plays the RUN
      "seconds": 0.0           of `up(stack, project_dir, environ)` -> (RUN, outputs or None) and, with a backend,
    },                         keeps the outputs in DIR/<stack>.outputs.json for `stack output`; `preview` plays
                               `preview(stack, project_dir, environ)` -> RUN. Each RUN takes "seconds". The program
                               needs site-packages: its wrapper starts Python without -S
    "stacks": {                commands for any other stack fail with "no stack named '...' found"
      "dev": {
        "up": RUN, "preview": RUN, "refresh": RUN, "destroy": RUN,   a command with no RUN fails
        "history": [...],      `stack history --json` (newest first); default: one succeeded update (the SDK's
                               `up` reads it afterwards and fails on an empty history)
        "export": {...},       `stack export`; default {"version": 3, "deployment": {}}
        "outputs": {...}       `stack output --json`; default {}
      }
    }
  }

With a backend, `destroy` and `stack rm` act on the stack's state as Pulumi does. The state starts as the stack's
"export" and is kept in DIR/<stack>.state.json. `destroy` (its "destroy" RUN optional: its "seconds", and an
"exit" that fails it) deletes its `--target` URNs, or every resource for none: a delete step event each, a summary,
the state written and the update recorded in the history with its kind (`destroy`) and `--message` once it has
ended; a protected resource among them fails it, deleting nothing. Each resource it deletes from Azure (a custom
one the state does not mark `external`: one read with `get`, as an adopted Arc cluster, only leaves the state) is a
line of DIR/deleted.jsonl ({"stack", "urn", "message"}); applies.jsonl gets its start and end with "kind":
"destroy". `stack rm` refuses a stack whose state lists resources (as without --force), else the stack is gone:
every later command for it answers "no stack named"; applies.jsonl gets {"event": "rm", "stack"}.

RUN:
  {
    "events": [...],           engine events written to --event-log in order, in the CLI's JSON shape
                               (apitype.EngineEvent: {"resourcePreEvent": {"metadata": {...}}}, "summaryEvent", ...);
                               "sequence" and "timestamp" are filled in when absent, and a {"cancelEvent": {}} is
                               added at the end when absent, as the engine ends every stream with one
    "events_file": "x.jsonl",  instead of "events": a recorded event log, one event a line (relative to the scenario)
    "stdout": "", "stderr": "", "exit": 0,
    "seconds": 0.0,            how long the operation takes after writing its events
    "wait_for_sigint": {       after "events", wait for SIGINT (at most "timeout" seconds, then exit 3), then write
      "timeout": 30,           these events and output and exit with this code, as a cancelled update does
      "events": [...], "stdout": "", "stderr": "", "exit": 255
    }
  }
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

DEFAULT_HISTORY = [
    {
        "version": 1,
        "kind": "update",
        "startTime": "2026-01-01T00:00:00.000Z",
        "endTime": "2026-01-01T00:01:00.000Z",
        "message": "",
        "environment": {"exec.kind": "auto.local"},
        "config": {},
        "result": "succeeded",
        "resourceChanges": {"same": 1},
    }
]
OPERATIONS = ("up", "preview", "refresh", "destroy")
sigint = False


class Failure(Exception):
    def __init__(self, message: str, code: int = 255) -> None:
        super().__init__(message)
        self.code = code


class FileLog:
    def __init__(self, path: str) -> None:
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 closed in close()

    def write(self, event: dict) -> None:
        self._file.write(json.dumps(event) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class GrpcLog:
    """The CLI's side of the SDK's Events service: one client stream, closed (and answered) before exit."""

    def __init__(self, address: str) -> None:
        import queue
        import site

        site.main()  # the wrapper starts Python without site-packages (faster); gRPC needs them
        import grpc
        from pulumi.runtime.proto import events_pb2, events_pb2_grpc

        self._request = events_pb2.EventRequest
        self._queue = queue.Queue()
        self._channel = grpc.insecure_channel(address)
        stub = events_pb2_grpc.EventsStub(self._channel)
        self._call = stub.StreamEvents.future(iter(self._queue.get, None))

    def write(self, event: dict) -> None:
        self._queue.put(self._request(event=json.dumps(event)))

    def close(self) -> None:
        self._queue.put(None)
        self._call.result(timeout=10)
        self._channel.close()


class EventLog:
    def __init__(self, target: str | None) -> None:
        self._sink = None
        if target:
            self._sink = GrpcLog(target.removeprefix("tcp://")) if target.startswith("tcp://") else FileLog(target)
        self._sequence = 0
        self._ended = False

    def write(self, events: list[dict]) -> None:
        for event in events:
            event = {"sequence": self._sequence, "timestamp": int(time.time()), **event}
            self._sequence = event["sequence"] + 1
            self._ended = "cancelEvent" in event
            if self._sink:
                self._sink.write(event)

    def close(self) -> None:
        if not self._ended:
            self.write([{"cancelEvent": {}}])
        if self._sink:
            self._sink.close()


def option(argv: list[str], name: str) -> str | None:
    values = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == name]
    return values[-1] if values else None


def finish(text: str | None, stream=sys.stdout) -> None:
    if text:
        stream.write(text if text.endswith("\n") else text + "\n")
        stream.flush()


def load_events(run: dict, scenario_dir: Path) -> list[dict]:
    if "events_file" in run:
        lines = (scenario_dir / run["events_file"]).read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]
    return run.get("events", [])


def operation(run: dict, argv: list[str], scenario_dir: Path) -> int:
    log = EventLog(option(argv, "--event-log"))
    try:
        log.write(load_events(run, scenario_dir))
        time.sleep(run.get("seconds", 0))
        after = run
        if "wait_for_sigint" in run:
            after = run["wait_for_sigint"]
            deadline = time.monotonic() + after.get("timeout", 30)
            while not sigint and time.monotonic() < deadline:
                time.sleep(0.02)
            if not sigint:
                finish("fake pulumi: no SIGINT came", sys.stderr)
                return 3
            log.write(after.get("events", []))
    finally:
        log.close()
    finish(after.get("stdout"))
    finish(after.get("stderr"), sys.stderr)
    return after.get("exit", 0)


class Backend:
    """The persistent state of `"backend"` scenarios."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def applied(self, event: str, stack: str, message: str, kind: str = "update") -> None:
        record = {"event": event, "stack": stack, "message": message, "pid": os.getpid(), "time": time.time()}
        line = json.dumps(record | ({"kind": kind} if kind != "update" else {}))
        fd = os.open(self.directory / "applies.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    def history(self, stack: str) -> list[dict]:
        path = self.directory / f"{stack}.history.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else []

    def record(self, stack: str, entry: dict) -> None:
        import fcntl

        with open(self.directory / f"{stack}.history.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            entries = [entry, *self.history(stack)]
            temporary = self.directory / f".{stack}.history.{os.getpid()}"
            temporary.write_text(json.dumps(entries), encoding="utf-8")
            os.replace(temporary, self.directory / f"{stack}.history.json")

    def outputs(self, stack: str) -> dict:
        path = self.directory / f"{stack}.outputs.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}

    def state(self, stack: str, initial: dict) -> dict:
        path = self.directory / f"{stack}.state.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else initial

    def write_state(self, stack: str, state: dict) -> None:
        temporary = self.directory / f".{stack}.state.{os.getpid()}"
        temporary.write_text(json.dumps(state), encoding="utf-8")
        os.replace(temporary, self.directory / f"{stack}.state.json")

    def removed(self, stack: str) -> bool:
        return (self.directory / f"{stack}.removed").exists()

    def destroy(self, stack: str, spec: dict, argv: list[str], scenario_dir: Path) -> int:
        message = option(argv, "--message") or ""
        targets = {argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--target"}
        started = utc_now()
        self.applied("start", stack, message, "destroy")
        finish(f"Destroying ({stack})")
        state = self.state(stack, spec.get("export", {"version": 3, "deployment": {}}))
        resources = state.get("deployment", {}).get("resources") or []
        doomed = [r for r in resources if not targets or r.get("urn") in targets]
        run = dict(spec.get("destroy", {}))
        protected = [r["urn"] for r in doomed if r.get("protect")]
        if protected:
            run = {"exit": 255, "stderr": f"error: resource {protected[0]} cannot be deleted because it is protected"}
        events = []
        for resource in doomed if run.get("exit", 0) == 0 else ():
            metadata = {"op": "delete", "urn": resource["urn"], "type": resource.get("type", ""), "provider": ""}
            events += [{"resourcePreEvent": {"metadata": metadata}}, {"resOutputsEvent": {"metadata": metadata}}]
        deleted = sum(1 for r in doomed if r.get("custom"))
        events.append({"summaryEvent": {"resourceChanges": {"delete": deleted} if deleted else {}}})
        code = operation({**run, "events": [*run.get("events", []), *events]}, argv, scenario_dir)
        if code == 0:
            for resource in doomed:
                if resource.get("custom") and not resource.get("external"):
                    line = {"stack": stack, "urn": resource["urn"], "message": message}
                    with open(self.directory / "deleted.jsonl", "a", encoding="utf-8") as log:
                        log.write(json.dumps(line) + "\n")
            kept = [r for r in resources if r not in doomed]
            self.write_state(stack, {**state, "deployment": {**state.get("deployment", {}), "resources": kept}})
        finish(f"Destroy {'failed' if code else 'complete'} ({stack})")
        entry = {"version": 1, "kind": "destroy", "startTime": started, "endTime": utc_now(), "message": message}
        self.record(stack, {**entry, "environment": {}, "config": {}, "result": "failed" if code else "succeeded"})
        self.applied("end", stack, message, "destroy")
        return code

    def remove(self, stack: str, spec: dict) -> int:
        state = self.state(stack, spec.get("export", {"version": 3, "deployment": {}}))
        if state.get("deployment", {}).get("resources"):
            finish(f"error: '{stack}' still has resources; removal rejected. Possible actions: ...", sys.stderr)
            return 255
        (self.directory / f"{stack}.removed").write_text("", encoding="utf-8")
        self.applied("rm", stack, "", "rm")
        return 0

    def update(self, stack: str, run: dict | None, argv: list[str], scenario_dir: Path, program=None) -> int:
        message = option(argv, "--message") or ""
        started = utc_now()
        self.applied("start", stack, message)
        finish(f"Updating ({stack})")
        outputs = None
        if program is not None:
            run, outputs = program.up(stack, Path.cwd(), dict(os.environ))
            run = {**run, "seconds": program.seconds}
        code = operation(run, argv, scenario_dir)
        if outputs is not None and code == 0:
            temporary = self.directory / f".{stack}.outputs.{os.getpid()}"
            temporary.write_text(json.dumps(outputs, sort_keys=True), encoding="utf-8")
            os.replace(temporary, self.directory / f"{stack}.outputs.json")
        # The CLI writes its progress as it goes: on a pipe whose reader died, this write kills it half-way.
        finish(f"Update {'failed' if code else 'complete'} ({stack})")
        entry = {"version": 1, "kind": "update", "startTime": started, "endTime": utc_now(), "message": message}
        self.record(stack, {**entry, "environment": {}, "config": {}, "result": "failed" if code else "succeeded"})
        self.applied("end", stack, message)
        return code


def utc_now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def load_program(scenario: dict, scenario_dir: Path):
    """The scenario's program module (its "program" file), or None."""
    if "program" not in scenario:
        return None
    import importlib.util

    spec = importlib.util.spec_from_file_location("fake_pulumi_program", scenario_dir / scenario["program"]["file"])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.seconds = scenario["program"].get("seconds", 0.0)
    return module


def answer(argv: list[str], scenario: dict, scenario_dir: Path) -> int:
    args = [arg for arg in argv if arg != "--non-interactive"]
    if args == ["version"]:
        finish("v" + scenario.get("version", "3.200.0"))
        return 0
    if args[:1] == ["whoami"]:
        finish(json.dumps({"user": "fake", "organizations": [], "url": "file://~"}) if "--json" in args else "fake")
        return 0
    stack_name = option(args, "--stack")
    program = load_program(scenario, scenario_dir)
    stacks = dict.fromkeys(program.stack_names(Path.cwd()), {}) if program else scenario.get("stacks", {})
    if args[:2] == ["stack", "ls"]:
        finish(json.dumps([{"name": name, "current": False} for name in stacks]))
        return 0
    stack = stacks.get(stack_name)
    backend = Backend(scenario_dir / scenario["backend"]) if "backend" in scenario else None
    if stack is None or (backend and backend.removed(stack_name)):
        raise Failure(f"error: no stack named '{stack_name}' found")
    if args[:2] == ["stack", "select"]:
        time.sleep(scenario.get("select_seconds", 0))
        return 0
    if backend and args[:1] == ["destroy"]:
        return backend.destroy(stack_name, stack, args, scenario_dir)
    if args[:2] == ["stack", "rm"]:
        if backend:
            return backend.remove(stack_name, stack)
        if stack.get("export", {}).get("deployment", {}).get("resources"):
            raise Failure(f"error: '{stack_name}' still has resources; removal rejected")
        return 0
    if program is not None and args[:1] == ["up"]:
        if backend is None:
            raise Failure("fake pulumi: a scenario with a program needs a backend", 2)
        return backend.update(stack_name, None, args, scenario_dir, program)
    if program is not None and args[:1] == ["preview"]:
        run = program.preview(stack_name, Path.cwd(), dict(os.environ))
        return operation({**run, "seconds": program.seconds}, args, scenario_dir)
    if args[:1] and args[0] in OPERATIONS:
        if args[0] not in stack:
            raise Failure(f"fake pulumi: no `{args[0]}` scripted for stack {stack_name}", 2)
        if backend and args[0] == "up":
            return backend.update(stack_name, stack["up"], args, scenario_dir)
        return operation(stack[args[0]], args, scenario_dir)
    if args[:2] == ["stack", "history"]:
        entries = backend.history(stack_name) if backend else stack.get("history", DEFAULT_HISTORY)
        size = option(args, "--page-size")
        finish(json.dumps(entries[: int(size)] if size and isinstance(entries, list) else entries))
        return 0
    if args[:2] == ["stack", "export"]:
        exported = stack.get("export", {"version": 3, "deployment": {}})
        finish(json.dumps(backend.state(stack_name, exported) if backend else exported))
        return 0
    if args[:2] == ["stack", "output"]:
        finish(json.dumps(backend.outputs(stack_name) if program and backend else stack.get("outputs", {})))
        return 0
    raise Failure(f"fake pulumi: unscripted command: {' '.join(argv)}", 2)


def on_sigint(signum, frame) -> None:
    global sigint
    sigint = True


def main() -> int:
    signal.signal(signal.SIGINT, on_sigint)
    scenario_path = Path(os.environ["FAKE_PULUMI_SCENARIO"])
    record = {
        "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd") if int(fd) > 2),  # inherited descriptors
        "argv": sys.argv[1:],
        "cwd": os.getcwd(),
        "pid": os.getpid(),
        "sid": os.getsid(0),
        "env": {key: value for key, value in os.environ.items() if key.startswith(("PULUMI_", "FLUXFLEET_"))},
        "start": time.time(),
    }
    try:
        code = answer(sys.argv[1:], json.loads(scenario_path.read_text(encoding="utf-8")), scenario_path.parent)
    except Failure as failure:
        finish(str(failure), sys.stderr)
        code = failure.code
    record.update(end=time.time(), signal="SIGINT" if sigint else None, exit=code)
    if "FAKE_PULUMI_LOG" in os.environ:
        # One write with O_APPEND: records of concurrent invocations do not interleave.
        fd = os.open(os.environ["FAKE_PULUMI_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, (json.dumps(record) + "\n").encode())
        finally:
            os.close(fd)
    return code


if __name__ == "__main__":
    sys.exit(main())
