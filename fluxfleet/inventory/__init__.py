"""`fluxfleet inventory`: the clusters a selection names in Azure, compared with the stack files.

One Resource Graph query reads every AKS and Arc cluster of the selected kinds in the subscriptions looked in, with
a `selected` column that says whether the rest of the selection (resource group, location, tags) holds. Reading
more than the selection is what keeps the comparison safe: a stack whose cluster merely moved to a resource group
outside an `rg:` term, or lost a tag, is found there and reported as moved or outside the selection, never as gone.

    in step    a stack's cluster is where its file says, and in the selection
    new        a selected cluster no stack names
    moved      a stack's cluster is not where its file says (an ARM GET there answers 404), but a cluster of the
               same kind and name is elsewhere (another resource group or subscription); the stack file is left as
               it is, for a person to edit
    gone       a stack's cluster is nowhere among the readable subscriptions looked in, nothing the stack file
               declares (kind, resource group, location, tags) is outside the selection, and an ARM GET of the
               cluster answers 404 (`confirm_gone`)
    unchecked  a stack in a subscription that could not be read: nothing is known of its cluster
    unconfirmed  a stack that may be gone or moved, but that nothing confirms: its subscription is unknown (the
               file names none and there is no default one), or is the default one and was not looked in; or
               Resource Graph does not show its cluster where its file says and the ARM GET there answered other
               than 404 (200: not indexed yet, 403, a transport error)

A stack file that names no subscription is in the default one, as for `pulumi up` (`azure.account`), whatever
--subscription says; a stack whose own subscription was not looked in is another inventory's. `write_members` writes
a minimal stack file for each new member, all or none; `prune_gone` deletes the files of gone stacks, and only
theirs. Both change nothing while a subscription could not be read: the picture is incomplete.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import re
import secrets
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from fluxfleet.azure.resource_graph import DeniedSubscription, ResourceGraphReader, kql_string
from fluxfleet.azure.status import AzureError, AzureReader
from fluxfleet.inventory_state import LeftState, StateReader, left_states
from modules.clouds import CLOUDS, DEFAULT_CLOUD
from modules.spec import ClusterSpec, SpecError, SpecIssue, Stack, load_stack_file, shown, stack_files
from modules.spec.profiles import ProfileLibrary
from modules.spec.selection import Pattern, Selection

RESOURCE_TYPES = {  # as Resource Graph spells them (lower case)
    "aks": "microsoft.containerservice/managedclusters",
    "arc": "microsoft.kubernetes/connectedclusters",
}
KIND_OF_TYPE = {resource_type: kind for kind, resource_type in RESOURCE_TYPES.items()}
STACK_NAME_MAX = 100
SUFFIX_ROOM = 6  # characters kept free for a collision's `-<n>`
_NOT_IN_STACK_NAME = re.compile(r"[^a-z0-9_.-]+")
_TEXT_COLUMNS = ("type", "id", "name", "subscriptionId")
_RESOURCE_GROUP_IN_ID = re.compile(r"/resourceGroups/([^/]+)/", re.IGNORECASE)
STACK_FILE_NAME = "Pulumi.stack.yaml"  # any file of the directory, to learn how reports name the directory
ARM_READS_AT_ONCE = 8  # ARM GETs in flight while confirming gone stacks (ArmReader bounds each subscription too)
DEFAULT_SUBSCRIPTION = "AZURE_SUBSCRIPTION_ID, ARM_SUBSCRIPTION_ID or `az account set`"
Display = Callable[[Path], str]


# --------------------------------------------------------------------------------------------- what is compared


class _Located:
    """Where a cluster is, for a cluster Azure answered and for one a stack file names alike."""

    kind: str
    name: str
    resource_group: str
    subscription_id: str  # lower case

    @property
    def key(self) -> tuple[str, str]:
        """Kind and name: what stays when a cluster moves (Azure compares names without case)."""
        return self.kind, self.name.lower()

    @property
    def place(self) -> tuple[str, str]:
        return self.subscription_id, self.resource_group.lower()

    @property
    def identity(self) -> tuple[str, str, str, str]:
        return (*self.place, *self.key)


@dataclass(frozen=True)
class Cluster(_Located):
    """A cluster as Resource Graph answered it."""

    kind: str  # aks | arc
    name: str
    resource_group: str  # as the resource id spells it
    subscription_id: str  # lower case
    location: str
    tags: tuple[tuple[str, str], ...]
    selected: bool  # the selection's resource group, location and tag terms hold


@dataclass(frozen=True)
class StackCluster(_Located):
    """A stack and the cluster its file names."""

    stack: str
    file: str  # as reports name it
    path: Path
    kind: str
    name: str
    resource_group: str
    subscription_id: str | None  # lower case; the default subscription when the file names none; None: unknown
    location: str | None  # None: the file does not say (an Arc cluster may leave it out)
    tags: Mapping[str, str] | None  # None: the file declares no tags (an Arc cluster cannot)
    names_subscription: bool = True  # False: the file names none; `subscription_id` is the default one (or None)
    digest: str | None = None  # sha256 of the file as it was read: --prune deletes only that file

    def outside(self, selection: Selection) -> bool:
        return selection.excludes(self.kind, self.resource_group, self.location, self.tags)


@dataclass(frozen=True)
class NewMember:
    cluster: Cluster
    stack: str  # the stack name its file gets
    file: str
    path: Path
    collision: str | None = None  # why it is not named after the cluster alone
    problem: str | None = None  # why no stack file can be written for it


@dataclass(frozen=True)
class Moved:
    stack: StackCluster
    cluster: Cluster  # where it is now


@dataclass(frozen=True)
class Undecided:
    """A stack of which the inventory cannot say where its cluster is (unchecked or unconfirmed), and why."""

    stack: StackCluster
    reason: str


@dataclass(frozen=True)
class Inventory:
    selection: str
    subscriptions: tuple[str, ...]  # looked in
    denied: tuple[DeniedSubscription, ...]
    in_step: tuple[StackCluster, ...]
    new: tuple[NewMember, ...]
    moved: tuple[Moved, ...]
    gone: tuple[StackCluster, ...]
    unchecked: tuple[Undecided, ...]
    unconfirmed: tuple[Undecided, ...] = ()
    requests: int = 0  # Resource Graph requests made
    written: tuple[str, ...] = ()  # files --write created
    pruned: tuple[str, ...] = ()  # files --prune deleted
    left_state: tuple[LeftState, ...] = ()  # what the gone stacks leave in Pulumi (asked with --prune)
    proposed: tuple[str, ...] = ()  # files --prune kept: their stacks still hold state, `decommission` is proposed
    held_back: str | None = None  # why --write or --prune changed nothing
    errors: tuple[str, ...] = field(default=())  # files that could not be written or deleted

    @property
    def differences(self) -> bool:
        return bool(self.new or self.moved or self.gone)

    @property
    def exit_code(self) -> int:
        """1 when the picture is incomplete (a subscription unreadable, a stack unconfirmed) or a file could not be
        changed (it wins over 3, as in `drift`), 3 when stacks and clusters differ (whether or not --write/--prune
        acted on it), else 0."""
        if self.denied or self.unconfirmed or self.errors:
            return 1
        return 3 if self.differences else 0


# --------------------------------------------------------------------------------------------- stacks


def load_stacks(
    stacks_dir: Path, default_subscription: str | None, display: Display, cloud: str | None = None
) -> list[StackCluster]:
    """Every stack file of the directory as the cluster it names (with `cloud`, only the stacks in that cloud: the
    others are no inventory's of it); one that names no subscription is in `default_subscription`, the one `pulumi
    up` would use (None: unknown, and the stack unconfirmed). SpecError with every problem of every file."""
    issues: list[SpecIssue] = []
    stacks: list[StackCluster] = []
    paths = stack_files(stacks_dir)
    library = _library(stacks_dir, display)
    for path in paths:
        try:
            digest: str | None = _digest(path)  # before it is parsed: --prune sees a change made after either
        except OSError:
            digest = None  # unreadable: load_stack_file says why
        try:
            stack = load_stack_file(path, display(path), library)
        except SpecError as error:
            issues += error.issues
            continue
        if cloud is not None and stack.spec.cluster.cloud != cloud:
            continue
        stacks.append(replace(stack_cluster(stack, path, default_subscription), digest=digest))
    if issues:
        raise SpecError(issues)
    return stacks


def _library(stacks_dir: Path, display: Display) -> ProfileLibrary:
    """The profiles of the directory, each read once however many stacks use it; named as the stacks are."""
    return ProfileLibrary(stacks_dir, str(Path(display(stacks_dir / STACK_FILE_NAME)).parent))


def stack_cluster(stack: Stack, path: Path, default_subscription: str | None) -> StackCluster:
    cluster = stack.spec.cluster
    subscription_id = cluster.subscription_id or default_subscription
    return StackCluster(
        stack=stack.name,
        file=stack.file,
        path=path,
        kind=cluster.kind,
        name=cluster.name,
        resource_group=cluster.resource_group,
        subscription_id=subscription_id.lower() if subscription_id else None,
        location=cluster.location,
        tags=dict(cluster.tags) if cluster.tags is not None else None,
        names_subscription=cluster.subscription_id is not None,
    )


def subscriptions_of(stacks: Iterable[StackCluster], default_subscription: str | None) -> tuple[str, ...]:
    """Where to look when no --subscription is given: the stacks' subscriptions and the default one."""
    found = {stack.subscription_id for stack in stacks if stack.subscription_id}
    if default_subscription:
        found.add(default_subscription.lower())
    return tuple(sorted(found))


# --------------------------------------------------------------------------------------------- Resource Graph


def cluster_query(selection: Selection) -> str:
    """The KQL of the one Resource Graph query: every cluster of the selected kinds, and whether the rest of the
    selection holds. Every value of the selection is a KQL string literal (see `kql_string`)."""
    types = ", ".join(kql_string(RESOURCE_TYPES[kind]) for kind in selection.selected_kinds)
    terms = [_any_of("resourceGroup", selection.resource_groups), _any_of("location", selection.locations)]
    terms += [_any_of(f"tostring(tags[{kql_string(key)}])", patterns) for key, patterns in selection.tags]
    selected = " and ".join(term for term in terms if term) or "true"
    return (
        f"resources\n| where type in~ ({types})\n| extend selected = {selected}\n"
        "| project id, name, type, subscriptionId, resourceGroup, location, tags, selected\n| order by id asc"
    )


def _any_of(column: str, patterns: Sequence[Pattern]) -> str:
    if not patterns:
        return ""
    return "(" + " or ".join(_matches(column, pattern) for pattern in patterns) + ")"


def _matches(column: str, pattern: Pattern) -> str:
    """KQL for `Pattern.matches`: `=~` / `==` for a plain value, the pattern's own regex (which RE2 reads as Python
    does) for a glob."""
    if pattern.is_glob:
        return f"{column} matches regex {kql_string(pattern.regex)}"
    return f"{column} {'=~' if pattern.ignore_case else '=='} {kql_string(pattern.text)}"


def clusters_from_rows(rows: Iterable[Mapping[str, Any]]) -> list[Cluster]:
    """The rows of `cluster_query` as clusters; AzureError on a row that does not fit the query."""
    clusters = []
    for row in rows:
        try:
            resource_type, resource_id, name, subscription = (row[key] for key in _TEXT_COLUMNS)
            tags = row.get("tags") or {}
            if not all(isinstance(row[key], str) for key in _TEXT_COLUMNS):
                raise TypeError(f"{', '.join(_TEXT_COLUMNS)} are not all strings")
            if not isinstance(tags, Mapping) or not isinstance(row["selected"], bool):
                raise TypeError("tags is not an object, or selected is not a boolean")
            kind = KIND_OF_TYPE[resource_type.lower()]
            in_id = _RESOURCE_GROUP_IN_ID.search(resource_id)
            clusters.append(
                Cluster(
                    kind=kind,
                    name=name,
                    resource_group=in_id.group(1) if in_id else str(row["resourceGroup"]),
                    subscription_id=subscription.lower(),
                    location=str(row.get("location") or "").replace(" ", "").lower(),  # "East US" → eastus
                    tags=tuple(sorted((str(k), str(v)) for k, v in tags.items())),
                    selected=row["selected"],
                )
            )
        except (KeyError, TypeError) as error:
            detail = f"{type(error).__name__}: {shown(str(error))}"
            raise AzureError(
                f"cannot read Azure Resource Graph's answer: a row does not fit the query ({detail}); run again, "
                "and if it persists, `az graph query` shows what Azure sends"
            ) from None
    return clusters


def take_inventory(
    reader: ResourceGraphReader,
    selection: Selection,
    stacks: Sequence[StackCluster],
    subscriptions: Sequence[str],
    display: Display,
    stacks_dir: Path,
    arm: AzureReader,
) -> Inventory:
    """Query Resource Graph once, compare, then confirm each gone stack with an ARM GET of its cluster (`arm`).
    AzureError when Resource Graph cannot be read at all."""
    result = reader.query(cluster_query(selection), subscriptions)
    clusters = clusters_from_rows(result.rows)
    inventory = compare(selection, clusters, stacks, subscriptions, result.denied, stacks_dir, display)
    return confirm_gone(replace(inventory, requests=result.requests), arm)


def confirm_gone(inventory: Inventory, arm: AzureReader) -> Inventory:
    """Keep as gone (or moved) only the stacks whose cluster an ARM GET, where the file says, answers 404 for.
    Resource Graph not showing a cluster proves nothing: it indexes a change minutes late, and leaves out what the
    identity may not read. Any other answer (the cluster, 403, a transport error) makes the stack unconfirmed,
    with the reason: never pruned, never to be edited to another cluster of its name."""
    absent = [*inventory.gone, *(moved.stack for moved in inventory.moved)]
    if not absent:
        return inventory
    with ThreadPoolExecutor(max_workers=min(ARM_READS_AT_ONCE, len(absent))) as pool:
        doubts = list(pool.map(lambda stack: _doubt_of_absence(arm, stack), absent))
    doubt_of = {stack.file: doubt for stack, doubt in zip(absent, doubts, strict=True)}  # a file is one stack
    gone = tuple(stack for stack in inventory.gone if doubt_of[stack.file] is None)
    moved = tuple(moved for moved in inventory.moved if doubt_of[moved.stack.file] is None)
    doubted = [Undecided(stack, doubt) for stack, doubt in zip(absent, doubts, strict=True) if doubt]
    unconfirmed = sorted([*inventory.unconfirmed, *doubted], key=lambda u: (u.stack.stack, u.stack.file))
    return replace(inventory, gone=gone, moved=moved, unconfirmed=tuple(unconfirmed))


def _doubt_of_absence(arm: AzureReader, stack: StackCluster) -> str | None:
    """None when ARM answers that the stack's cluster is not where its file says; else why that is not confirmed."""
    read = arm.managed_cluster if stack.kind == "aks" else arm.connected_cluster
    try:
        found = read(stack.subscription_id, stack.resource_group, stack.name)
    except AzureError as error:
        return f"not in Resource Graph where its file says, and ARM cannot confirm it is not there: {error}"
    if found is None:
        return None
    return (
        f"not in Resource Graph, but ARM has {stack.kind} cluster {stack.name} in "
        f"{stack.resource_group} in {stack.subscription_id}, where its file says (not indexed yet, or hidden from "
        "Resource Graph): neither gone nor moved; run again later"
    )


# --------------------------------------------------------------------------------------------- comparison


def compare(
    selection: Selection,
    clusters: Sequence[Cluster],
    stacks: Sequence[StackCluster],
    subscriptions: Sequence[str],
    denied: Sequence[DeniedSubscription] = (),
    stacks_dir: Path = Path("stacks"),
    display: Display = str,
) -> Inventory:
    """Clusters against stacks (see the module's docstring); new members named as `name_new_members` says.
    Every list is sorted, so the same clusters and stacks give the same inventory, byte for byte."""
    looked_in = {s.lower() for s in subscriptions}
    unreadable = {d.subscription_id.lower(): d.reason for d in denied}
    at = {cluster.identity: cluster for cluster in clusters}
    matched: set[tuple[str, str, str, str]] = set()
    in_step, elsewhere, unchecked, unconfirmed = [], [], [], []
    for stack in sorted(stacks, key=lambda s: (s.stack, s.file)):
        if stack.kind not in selection.selected_kinds:
            continue  # another kind: not this inventory's
        if stack.subscription_id is None or stack.subscription_id not in looked_in:
            # A subscription the file names and that was not looked in is another inventory's; the default one the
            # file leaves its cluster in, not looked in (or unknown), leaves the stack undecided, never gone.
            if not stack.names_subscription and not stack.outside(selection):
                unconfirmed.append(Undecided(stack, _undecided_subscription(stack.subscription_id)))
            continue
        if stack.subscription_id in unreadable:
            if not stack.outside(selection):
                unchecked.append(Undecided(stack, f"subscription {stack.subscription_id} could not be read"))
            continue
        cluster = at.get(stack.identity)
        if cluster is None:
            elsewhere.append(stack)
            continue
        matched.add(cluster.identity)
        if cluster.selected:
            in_step.append(stack)
    # A cluster found at no stack's place may be a stack's cluster that moved: the same kind and name elsewhere,
    # in the stack's own subscription first.
    movable: dict[tuple[str, str], list[Cluster]] = defaultdict(list)
    for cluster in sorted(clusters, key=lambda c: c.identity):
        if cluster.identity not in matched:
            movable[cluster.key].append(cluster)
    moved, gone = [], []
    for stack in elsewhere:
        candidates = [c for c in movable[stack.key] if c.identity not in matched]
        if candidates:
            cluster = min(candidates, key=lambda c: (c.subscription_id != stack.subscription_id, c.identity))
            matched.add(cluster.identity)
            if cluster.selected or not stack.outside(selection):
                moved.append(Moved(stack, cluster))
        elif not stack.outside(selection):
            gone.append(stack)
    new = [c for c in sorted(clusters, key=lambda c: c.identity) if c.selected and c.identity not in matched]
    members = name_new_members(new, stacks, stacks_dir, display)
    # A stack whose subscription is undecided may be the very stack of a "new" cluster of its kind and name: a second
    # stack file for it would have two Pulumi stacks manage one cluster.
    claimed = {undecided.stack.key: undecided.stack for undecided in unconfirmed}
    members = tuple(_claimed(member, claimed.get(member.cluster.key)) for member in members)
    return Inventory(
        selection=str(selection),
        subscriptions=tuple(sorted(looked_in)),
        denied=tuple(sorted(denied, key=lambda d: d.subscription_id)),
        in_step=tuple(in_step),
        new=members,
        moved=tuple(moved),
        gone=tuple(gone),
        unchecked=tuple(unchecked),
        unconfirmed=tuple(unconfirmed),
    )


def _claimed(member: NewMember, stack: StackCluster | None) -> NewMember:
    if stack is None or member.problem:
        return member
    problem = (
        f"may be the cluster of stack {stack.stack} ({stack.file}), whose subscription is unconfirmed: not written"
    )
    return replace(member, problem=problem)


def _undecided_subscription(default: str | None) -> str:
    """Why a stack that names no subscription is undecided: the default one is unknown, or was not looked in."""
    if default is None:
        return (
            f"names no subscriptionId, and there is no default subscription ({DEFAULT_SUBSCRIPTION}): where its "
            "cluster is, is unknown; set fluxfleet:cluster.subscriptionId"
        )
    return (
        f"names no subscriptionId, so its cluster is in the default subscription {default} (as for `pulumi up`: "
        f"{DEFAULT_SUBSCRIPTION}), which was not looked in; add --subscription {default}, or set "
        "fluxfleet:cluster.subscriptionId"
    )


# --------------------------------------------------------------------------------------------- new members


def stack_name_of(cluster_name: str) -> str:
    """A stack name for a cluster: its name in lower case (stack files of names differing in case would collide
    on a case-insensitive file system), with anything a stack name cannot hold as '-'."""
    name = _NOT_IN_STACK_NAME.sub("-", cluster_name.lower()).strip("-.") or "cluster"
    return name[: STACK_NAME_MAX - SUFFIX_ROOM]


def name_new_members(
    clusters: Sequence[Cluster], stacks: Sequence[StackCluster], stacks_dir: Path, display: Display
) -> tuple[NewMember, ...]:
    """Each new member named after its cluster; a name taken (by a stack, or by a new member before it in order)
    gets the first free `-2`, `-3`... Names are compared without case. A cluster no valid stack can name (a name
    or resource group the stack spec refuses) is kept, with the problem, and never written."""
    taken = {stack.stack.lower(): stack.file for stack in stacks}
    members = []
    for cluster in clusters:
        base = name = stack_name_of(cluster.name)
        number = 1
        while name in taken:
            number += 1
            name = f"{base}-{number}"
        path = stacks_dir / f"Pulumi.{name}.yaml"
        collision = f"{base} is taken by {taken[base]}" if name != base else None
        taken[name] = f"the new member {cluster.name} in {cluster.resource_group}"
        members.append(NewMember(cluster, name, display(path), path, collision, _cluster_problem(cluster)))
    return tuple(members)


def _cluster_problem(cluster: Cluster) -> str | None:
    try:
        ClusterSpec.model_validate(_cluster_block(cluster), by_alias=True)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"no stack can name it: cluster.{where}: {first['msg'].removeprefix('Value error, ')}"
    return None


def _cluster_block(cluster: Cluster, cloud: str = DEFAULT_CLOUD) -> dict[str, str]:
    block = {"kind": cluster.kind, "name": cluster.name, "resourceGroup": cluster.resource_group}
    if cluster.kind == "aks":  # an AKS stack needs its location; an Arc cluster is adopted where it is
        block["location"] = cluster.location
    block["subscriptionId"] = cluster.subscription_id
    if cloud != DEFAULT_CLOUD:
        block["cloud"] = cloud
    return block


def stack_file_text(member: NewMember, profile: str, today: date, cloud: str = DEFAULT_CLOUD) -> str:
    """The minimal stack file of a new member: its profile and where its cluster is (in a cloud other than
    AzureCloud, the cloud and the azure-native:environment the spec asks for with it)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    profiles = CommentedSeq([profile])
    profiles.fa.set_flow_style()
    config = CommentedMap({"fluxfleet:profiles": profiles, "fluxfleet:cluster": _cluster_block(member.cluster, cloud)})
    if cloud != DEFAULT_CLOUD:
        config.insert(0, "azure-native:environment", CLOUDS[cloud].environment)
    document = CommentedMap(config=config)
    document.yaml_set_start_comment(
        f"{member.stack}: written by `fluxfleet inventory --write` from Azure Resource Graph ({today.isoformat()})."
    )
    yaml = YAML()  # round-trip: quotes a value only where YAML would read it as something else (`0042`, `true`)
    yaml.indent(mapping=2, sequence=4, offset=2)
    buffer = io.StringIO()
    yaml.dump(document, buffer)
    return buffer.getvalue()


def write_members(
    inventory: Inventory, profile: str, today: date, stacks_dir: Path, display: Display, cloud: str = DEFAULT_CLOUD
) -> Inventory:
    """A stack file for every new member that can have one: all of them or, when one cannot be written or would
    not be a valid stack with its profile, none. Each goes to a temporary file in the directory first, then is
    linked into place (a file that appeared meanwhile is never overwritten), then is read back as `plan` reads it.
    Nothing while a subscription could not be read."""
    if inventory.denied:
        return _held_back(inventory)
    members = [member for member in inventory.new if member.problem is None]
    temporaries: list[Path] = []
    created: list[NewMember] = []
    member = None
    try:
        for member in members:
            temporaries.append(_temporary(member.path, stack_file_text(member, profile, today, cloud)))
        for member, temporary in zip(members, temporaries, strict=True):
            _link(temporary, member.path)
            created.append(member)
        library = _library(stacks_dir, display)
        for member in created:
            load_stack_file(member.path, member.file, library)
    except SpecError as error:
        for done in created:
            done.path.unlink(missing_ok=True)
        problem = f"{error.issues[0]}" + (f" (and {len(error.issues) - 1} more)" if len(error.issues) > 1 else "")
        message = f"the new stack files would not be valid with profile {profile}: {problem}: no stack file written"
        return replace(inventory, errors=(*inventory.errors, message))
    except OSError as error:
        for done in created:
            done.path.unlink(missing_ok=True)
        why = "a file of that name appeared meanwhile" if error.errno == errno.EEXIST else error.strerror or error
        failed = member.file if member else "?"
        return replace(inventory, errors=(*inventory.errors, f"cannot write {failed}: {why}: no stack file written"))
    finally:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)
    return replace(inventory, written=tuple(done.file for done in created))


def _temporary(path: Path, text: str) -> Path:
    """`text` in a new hidden file beside `path` (created with the umask's mode, as any file the user writes)."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", closefd=False) as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
    finally:
        os.close(descriptor)
    return temporary


def _link(temporary: Path, path: Path) -> None:
    """`temporary` as `path`, failing with EEXIST rather than replacing a file already there."""
    try:
        os.link(temporary, path)
    except FileExistsError:
        raise
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV):
            raise
        if os.path.lexists(path):  # a file system without hard links: check, then rename
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from None
        os.rename(temporary, path)


def prune_gone(inventory: Inventory, open_state: Callable[[], StateReader] | None = None) -> Inventory:
    """Delete the stack file of every gone stack, and nothing else: not one that changed since it was read (it may
    name another cluster now). Nothing while a subscription could not be read. With `open_state`, Pulumi is first
    asked what each gone stack's state still holds (`inventory_state`): a stack whose state still lists resources
    keeps its file, and `fluxfleet decommission STACK` is proposed."""
    if inventory.denied:
        return _held_back(inventory)
    pruned, errors = [], []
    left = left_states((stack.stack for stack in inventory.gone), open_state) if open_state else ()
    holding = {state.stack for state in left if state.holds_state}
    for stack in inventory.gone:
        if stack.stack in holding:
            continue  # `fluxfleet decommission STACK` is proposed: it reads the file, and deletes it last
        try:
            if stack.digest is not None and _digest(stack.path) != stack.digest:
                errors.append(f"not deleting {stack.file}: it changed since it was read; run again")
                continue
            stack.path.unlink()
        except FileNotFoundError:
            pruned.append(stack)  # already gone: what --prune was asked for
        except OSError as error:
            errors.append(f"cannot delete {stack.file}: {error.strerror or error}")
        else:
            pruned.append(stack)
    kept = {stack.stack for stack in pruned} | holding
    return replace(
        inventory,
        pruned=tuple(stack.file for stack in pruned),
        proposed=tuple(stack.file for stack in inventory.gone if stack.stack in holding),
        left_state=tuple(state for state in left if state.stack in kept),
        errors=(*inventory.errors, *errors),
    )


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _held_back(inventory: Inventory) -> Inventory:
    subscriptions = ", ".join(denied.subscription_id for denied in inventory.denied)
    return replace(
        inventory,
        held_back=(
            f"nothing written or deleted: subscription(s) {subscriptions} could not be read, so the picture is "
            "incomplete; fix the access, or leave them out with --subscription"
        ),
    )
