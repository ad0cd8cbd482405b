"""`fluxfleet drift` on configurations that track a branch: the source's newer head not applied past the grace period
(3 × the source's sync interval) is drift, with the age of what runs; tags and commits keep the pin rule. Statuses
are the official GetFluxConfiguration example body, edited, read through the real ArmReader."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fluxfleet.drift import Severity, check_fleet, flux_findings
from fluxfleet.simulation import FakeClock, FakeRunner
from modules.cluster_ref import ClusterRef
from modules.spec import load_stack_file
from tests.conftest import STANDALONE_STACKS
from tests.fluxfleet.drift.test_drift import SUB, Cluster, subscription

RUNNING = "main@sha1:0ba6f0d30760d567de0bac86c8c4eec13ce1a590"
HEAD = "main@sha1:abc1234e5f60718293a4b5c6d7e8f90a1b2c3d4e"
APPLIED_AT = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)  # the kustomizations applied RUNNING
FETCHED_AT = datetime(2026, 1, 1, 9, 32, tzinfo=UTC)  # the source fetched HEAD


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def lagging(cluster: Cluster, *, timestamps: bool = True) -> Cluster:
    """The example body as Flux 2 reports a branch whose new head the kustomizations have not applied yet."""
    body = cluster.configurations["value"][0]
    properties = body["properties"]
    properties["gitRepository"]["repositoryRef"]["branch"] = "main"
    properties.update(sourceSyncedCommitId=HEAD, sourceUpdatedAt=stamp(FETCHED_AT), statusUpdatedAt=stamp(FETCHED_AT))
    source, *kustomizations = properties["statuses"]
    source["name"] = body["name"]
    source["statusConditions"][0].update(
        message=f"stored artifact for revision '{HEAD}'", reason="Succeeded", lastTransitionTime=stamp(FETCHED_AT)
    )
    for status, name in zip(kustomizations, ("infra-controllers", "apps"), strict=True):
        status["name"] = f"{body['name']}-{name}"
        status["statusConditions"][0].update(
            message=f"Applied revision: {RUNNING}", lastTransitionTime=stamp(APPLIED_AT)
        )
    if not timestamps:
        for key in ("sourceUpdatedAt", "statusUpdatedAt"):
            del properties[key]
        for status in properties["statuses"]:
            del status["statusConditions"][0]["lastTransitionTime"]
    return cluster


def stack_file(tmp_path, old: str = "", new: str = "", name: str = "dev"):
    text = (STANDALONE_STACKS / f"Pulumi.{name}.yaml").read_text()
    assert old in text
    path = tmp_path / f"Pulumi.{name}.yaml"
    path.write_text(text.replace(old, new))
    return load_stack_file(path)


def dev():
    return load_stack_file(STANDALONE_STACKS / "Pulumi.dev.yaml")  # branch main, syncInterval 5m


def flux(cluster: Cluster, stack, after: timedelta):
    reader = cluster.reader()
    ref = ClusterRef.of(stack.spec.cluster)
    clock = FakeClock(FETCHED_AT + after)
    return flux_findings(stack, reader.flux_configurations(SUB, ref), reader.extensions(SUB, ref), clock)


def test_a_new_head_within_the_grace_period_is_a_note_not_drift():
    [finding] = flux(lagging(Cluster()), dev(), timedelta(minutes=10))
    assert finding.severity is Severity.note
    assert finding.message == (
        "catching up: tracks branch main; runs main@sha1:0ba6f0d, applied 42m ago; the source fetched a newer revision "
        "(main@sha1:abc1234) 10m ago, within the grace period 15m (3 × syncInterval 5m)"
    )


def test_a_new_head_past_the_grace_period_is_drift_with_the_age_of_what_runs():
    [finding] = flux(lagging(Cluster()), dev(), timedelta(hours=2, minutes=40))
    assert (finding.subject, finding.severity) == ("platform", Severity.drift)
    assert finding.message == (
        "stale revision: tracks branch main; runs main@sha1:0ba6f0d, applied 3h12m ago; the source fetched a newer "
        "revision (main@sha1:abc1234) 2h40m ago, past the grace period 15m (3 × syncInterval 5m)"
    )


def test_the_grace_period_is_three_sync_intervals_of_the_source_default_or_set(tmp_path):
    after = timedelta(minutes=20)
    [custom] = flux(lagging(Cluster()), dev(), after)  # syncInterval 5m: 15m of grace
    assert custom.severity is Severity.drift
    default = stack_file(tmp_path, "\n          syncInterval: 5m", "")  # the API's 10m: 30m of grace
    [finding] = flux(lagging(Cluster()), default, after)
    assert finding.severity is Severity.note
    assert finding.message.endswith("within the grace period 30m (3 × syncInterval 10m, the API's default)")
    assert flux(lagging(Cluster()), default, timedelta(minutes=31))[0].severity is Severity.drift
    hourly = stack_file(tmp_path, "syncInterval: 5m", "syncInterval: 1h")
    [finding] = flux(lagging(Cluster()), hourly, timedelta(hours=2, minutes=59))
    assert finding.severity is Severity.note and "within the grace period 3h (3 × syncInterval 1h)" in finding.message


def test_a_branch_running_its_head_is_in_sync_however_old_the_head():
    cluster = Cluster()
    assert flux(cluster, dev(), timedelta(days=400)) == []  # the example as published: everything at one revision
    quiet = lagging(Cluster())
    for status in quiet.configurations["value"][0]["properties"]["statuses"][1:]:
        status["statusConditions"][0]["message"] = f"Applied revision: {HEAD}"
    assert flux(quiet, dev(), timedelta(days=30)) == []


def test_tag_and_commit_pins_keep_the_pin_rule(tmp_path):
    after = timedelta(days=2)
    tagged = lagging(Cluster())
    properties = tagged.configurations["value"][0]["properties"]
    properties["sourceSyncedCommitId"] = HEAD.replace("main", "v1.0.0")
    for status in properties["statuses"]:
        condition = status["statusConditions"][0]
        condition["message"] = condition["message"].replace("main@", "v1.0.0@")
    prod = load_stack_file(STANDALONE_STACKS / "Pulumi.prod-weu.yaml")  # tag v1.0.0
    assert flux(tagged, prod, after) == []  # synced the tag: the kustomizations' revision is no branch lag
    pinned = stack_file(tmp_path, "branch: main", "branch: main\n          commit: abc1234")
    assert flux(lagging(Cluster()), pinned, after) == []
    other = stack_file(tmp_path, "branch: main", "branch: main\n          commit: 0ba6f0d")
    [finding] = flux(lagging(Cluster()), other, after)
    assert finding.message == f"stale revision: synced {HEAD}, not commit 0ba6f0d"


def test_statuses_without_timestamps_say_unknown_and_are_not_drift():
    [finding] = flux(lagging(Cluster(), timestamps=False), dev(), timedelta(days=3))
    assert finding.severity is Severity.note
    assert finding.message == (
        "behind the branch head: tracks branch main; runs main@sha1:0ba6f0d, applied at an unknown time; the source "
        "fetched a newer revision (main@sha1:abc1234) at an unknown time, whether past the grace period 15m "
        "(3 × syncInterval 5m) is unknown"
    )
    listed = lagging(Cluster(), timestamps=False)  # what a list call gives: no conditions at all
    for status in listed.configurations["value"][0]["properties"]["statuses"]:
        status["statusConditions"] = None
    assert flux(listed, dev(), timedelta(days=3)) == []


def test_the_fleet_check_takes_now_from_its_clock():
    cluster = lagging(Cluster())
    runner = FakeRunner(FakeClock())
    paths = [STANDALONE_STACKS / "Pulumi.dev.yaml"]
    for after, severity in ((timedelta(minutes=5), Severity.note), (timedelta(hours=1), Severity.drift)):
        clock = FakeClock(FETCHED_AT + after)
        [stack] = check_fleet(paths, runner, cluster.reader(), subscription, clock=clock).stacks
        [finding] = [f for f in stack.findings if f.kind == "flux"]
        assert finding.severity is severity
