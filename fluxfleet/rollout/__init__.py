"""`fluxfleet rollout`: the stacks of `stacks/fleet.yaml` applied stage by stage, each exactly once and gated on Flux.

command.py       the command: its options as one request, checked; the matrix, the dry run, or a run (no typer)
production.py    a real run: the journaled rollout on the system clock, the Flux gate over Azure, Ctrl-C twice
orchestrator.py  stages, concurrency, failure budget, approvals, bake time, resume (Rollout); --dry-run estimates
gate.py          the Flux health gate, and the wait for a cluster with no operation running
journal.py       what a run decided, on disk: snapshot plus change log, read back strictly
locks.py         one process per run, one update per stack (held by the `pulumi up` itself)
report.py        live progress and the summary (text, JSON, Markdown)
"""
