"""`plan --source`'s scan for Flux objects the target microsoft.flux release no longer serves: against a git copy of
the real GitOps example (clean), and against a repository built here, commit by commit, on deprecated API versions."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from fluxfleet.plan.api_scan import flux_objects
from fluxfleet.plan.checkout import FILE_MAX_BYTES
from fluxfleet.plan.sources import source_issues
from modules.spec import SpecIssue, Stack, load_stack_file
from tests.conftest import STANDALONE_STACKS, fixture_file
from tests.git import git

URL = "https://github.com/fluxcd/flux2-kustomize-helm-example"
DEV = "stacks/Pulumi.dev.yaml"
PLATFORM = "fluxfleet:flux.configurations.platform"


def commit(root: Path, message: str, tag: str | None = None) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    if tag:
        git(root, "tag", tag)


def write(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def stack(tmp_path: Path, name: str = "dev", **replacements: str) -> Stack:
    """An example stack (its profiles merged in), changed by text replacement."""
    text = (STANDALONE_STACKS / f"Pulumi.{name}.yaml").read_text()
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "stacks" / f"Pulumi.{name}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return load_stack_file(path, f"stacks/Pulumi.{name}.yaml")


# --------------------------------------------------------------------------------------------- the real example


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A git repository holding the GitOps example fixture, on branch main and tagged v1.0.0 (prod-weu's tag)."""
    root = tmp_path / "flux2-kustomize-helm-example"
    shutil.copytree(fixture_file("gitops-example"), root)
    for path in root.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)  # the fixture is read-only
    git(root, "init", "-q", "-b", "main")
    commit(root, "the example", tag="v1.0.0")
    return root


@pytest.mark.parametrize("name", ["dev", "staging", "prod-weu", "edge-store-001"])
def test_the_real_example_serves_every_object_on_the_latest_release(tmp_path, example, name):
    issues, notes = source_issues(stack(tmp_path, name), {URL: example})
    assert issues == [] and notes == []


def test_the_example_directory_itself_is_read_as_it_is_with_a_note(tmp_path):
    checkout = fixture_file("gitops-example")  # inside fluxfleet's own repository: no repository of its own
    issues, notes = source_issues(stack(tmp_path), {URL: checkout})
    assert issues == []
    assert notes == [f"{checkout} is not a git repository: its files were checked as they are, not at branch main"]


# --------------------------------------------------------------------------------------------- deprecated versions

OLD = {
    # apps/staging builds ../base/podinfo, outside its path: what it reaches is scanned too
    "apps/base/podinfo/kustomization.yaml": """\
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        resources: [namespace.yaml, repository.yaml, release.yaml]
        """,
    "apps/base/podinfo/namespace.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: podinfo}\n",
    "apps/base/podinfo/repository.yaml": """\
        apiVersion: source.toolkit.fluxcd.io/v1beta2
        kind: HelmRepository
        metadata: {name: podinfo, namespace: podinfo}
        spec: {interval: 5m, url: "https://stefanprodan.github.io/podinfo"}
        """,
    "apps/base/podinfo/release.yaml": """\
        apiVersion: helm.toolkit.fluxcd.io/v2beta1
        kind: HelmRelease
        metadata: {name: podinfo, namespace: podinfo}
        spec: {interval: 50m, chart: {spec: {chart: podinfo, sourceRef: {kind: HelmRepository, name: podinfo}}}}
        """,
    "apps/staging/kustomization.yaml": """\
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        resources: [../base/podinfo, "https://github.com/o/remote//base?ref=v1"]
        patches:
          - path: podinfo-values.yaml
            target: {kind: HelmRelease}
        """,
    "apps/staging/podinfo-values.yaml": """\
        apiVersion: helm.toolkit.fluxcd.io/v2beta2
        kind: HelmRelease
        metadata: {name: podinfo, namespace: podinfo}
        spec: {values: {replicaCount: 1}}
        """,
    # a multi-document file: every document counts, Flux or not
    "infrastructure/controllers/flux.yaml": """\
        apiVersion: source.toolkit.fluxcd.io/v1beta2
        kind: GitRepository
        metadata: {name: platform}
        ---
        apiVersion: kustomize.toolkit.fluxcd.io/v1beta2
        kind: Kustomization
        metadata: {name: platform}
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: settings}
        ---
        apiVersion: notification.toolkit.fluxcd.io/v1beta1
        kind: Alert
        metadata: {name: on-call}
        ---
        apiVersion: notification.toolkit.fluxcd.io/v1beta2
        kind: Provider
        metadata: {name: still-served}
        """,
    "infrastructure/configs/issuer.yml": "apiVersion: cert-manager.io/v1\nkind: ClusterIssuer\nmetadata: {name: le}\n",
    # a Helm chart's template is no YAML until rendered: skipped with a note, never a crash
    "infrastructure/configs/chart/templates/deployment.yaml": "{{- if .Values.enabled }}\nkind: Deployment\n{{- end }}\n",
    "clusters/staging/ignored.yaml": "apiVersion: helm.toolkit.fluxcd.io/v2beta1\nkind: HelmRelease\n",  # no path
}

NEW = {
    "apps/base/podinfo/repository.yaml": OLD["apps/base/podinfo/repository.yaml"].replace("v1beta2", "v1"),
    "apps/base/podinfo/release.yaml": OLD["apps/base/podinfo/release.yaml"].replace("v2beta1", "v2"),
    "apps/staging/podinfo-values.yaml": OLD["apps/staging/podinfo-values.yaml"].replace("v2beta2", "v2"),
    "infrastructure/controllers/flux.yaml": (
        OLD["infrastructure/controllers/flux.yaml"]
        .replace("source.toolkit.fluxcd.io/v1beta2", "source.toolkit.fluxcd.io/v1")
        .replace("kustomize.toolkit.fluxcd.io/v1beta2", "kustomize.toolkit.fluxcd.io/v1")
        .replace("notification.toolkit.fluxcd.io/v1beta1", "notification.toolkit.fluxcd.io/v1beta3")
    ),
}


@pytest.fixture
def deprecated(tmp_path: Path) -> Path:
    """v1.0.0: the example's layout on deprecated API versions; main: migrated; the work tree: deprecated again,
    uncommitted (the scan reads the ref, not the work tree)."""
    root = tmp_path / "repo"
    root.mkdir()
    write(root, OLD)
    git(root, "init", "-q", "-b", "main")
    commit(root, "deprecated API versions", tag="v1.0.0")
    write(root, NEW)
    commit(root, "migrate to the GA API versions")
    write(root, OLD)  # not committed
    return root


EXPECTED_AT_V1 = [
    "apps/base/podinfo/release.yaml: HelmRelease podinfo uses helm.toolkit.fluxcd.io/v2beta1, which extension 1.23.0 "
    "no longer serves: use helm.toolkit.fluxcd.io/v2",
    "apps/base/podinfo/repository.yaml: HelmRepository podinfo uses source.toolkit.fluxcd.io/v1beta2, which "
    "extension 1.23.0 no longer serves: use source.toolkit.fluxcd.io/v1",
    "apps/staging/podinfo-values.yaml: HelmRelease podinfo uses helm.toolkit.fluxcd.io/v2beta2, which extension "
    "1.23.0 no longer serves: use helm.toolkit.fluxcd.io/v2",
    "infrastructure/controllers/flux.yaml: GitRepository platform uses source.toolkit.fluxcd.io/v1beta2, which "
    "extension 1.23.0 no longer serves: use source.toolkit.fluxcd.io/v1",
    "infrastructure/controllers/flux.yaml: Kustomization platform uses kustomize.toolkit.fluxcd.io/v1beta2, which "
    "extension 1.23.0 no longer serves: use kustomize.toolkit.fluxcd.io/v1",
    "infrastructure/controllers/flux.yaml: Alert on-call uses notification.toolkit.fluxcd.io/v1beta1, which "
    "extension 1.23.0 no longer serves: use notification.toolkit.fluxcd.io/v1beta3",
]


def test_each_object_on_a_removed_version_is_an_error_naming_its_file_and_object(tmp_path, deprecated):
    dev = stack(tmp_path, **{"branch: main": "tag: v1.0.0"})
    issues, notes = source_issues(dev, {URL: deprecated})
    assert [(i.file, i.path) for i in issues] == [(DEV, PLATFORM)] * len(EXPECTED_AT_V1)
    assert [i.message for i in issues] == EXPECTED_AT_V1
    assert str(issues[0]) == f"{DEV}: {PLATFORM}: {EXPECTED_AT_V1[0]}"
    [note] = notes
    assert note.startswith(f"{deprecated} at tag v1.0.0: infrastructure/configs/chart/templates/deployment.yaml: ")
    assert "not valid YAML (line 1: " in note and note.endswith(": skipped")


def test_the_ref_is_read_not_the_work_tree(tmp_path, deprecated):
    assert source_issues(stack(tmp_path), {URL: deprecated})[0] == []  # branch main: migrated
    sha = git(deprecated, "rev-parse", "v1.0.0")
    at_commit = stack(tmp_path, **{"branch: main": f"commit: {sha}\n          branch: main"})
    assert [i.message for i in source_issues(at_commit, {URL: deprecated})[0]] == EXPECTED_AT_V1


def test_a_pin_before_the_removal_finds_nothing_and_a_pin_of_it_names_it(tmp_path, deprecated):
    checkouts = {"git@github.com:fluxcd/flux2-kustomize-helm-example.git": deprecated}  # prod-weu uses ssh://
    # apps/production is not in this repository: an error at the path's key, whatever the extension
    no_production = SpecIssue(
        "stacks/Pulumi.prod-weu.yaml",
        f"{PLATFORM}.kustomizations.apps.path",
        f"'./apps/production' is not a directory of {deprecated} at tag v1.0.0 "
        f"({PLATFORM}.git.tag in stacks/Pulumi.prod-weu.yaml)",
    )
    before = stack(tmp_path, "prod-weu", **{"version: 1.23.0": "version: 1.22.2"})
    assert source_issues(before, checkouts) == ([no_production], [])  # 1.22.2 still serves them: no scan
    issues, notes = source_issues(stack(tmp_path, "prod-weu"), checkouts)  # pins 1.23.0, at tag v1.0.0
    assert issues[0] == no_production
    assert {(i.file, i.path) for i in issues[1:]} == {("stacks/Pulumi.prod-weu.yaml", PLATFORM)}
    assert [i.message for i in issues[1:]] == [m for m in EXPECTED_AT_V1 if m.startswith("infrastructure/")]


def test_a_ref_the_checkout_lacks_is_an_error_at_the_ref_key(tmp_path, deprecated):
    dev = stack(tmp_path, **{"branch: main": "tag: v9.9.9"})
    [issue] = source_issues(dev, {URL: deprecated})[0]
    assert (issue.file, issue.path) == (DEV, f"{PLATFORM}.git.tag")
    assert issue.message == f"v9.9.9 is not in {deprecated}: fetch it (git fetch --tags), so its files can be checked"


def test_a_branch_is_read_where_origin_has_it(tmp_path, deprecated):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--no-checkout", str(deprecated), str(clone)], check=True)
    git(clone, "update-ref", "refs/heads/main", "v1.0.0")  # a stale local branch; origin/main is migrated
    assert source_issues(stack(tmp_path), {URL: clone})[0] == []


def test_a_path_missing_at_the_ref_is_an_error_at_its_key_and_the_rest_is_still_scanned(tmp_path, deprecated):
    dev = stack(tmp_path, **{"./apps/staging": "./apps/gone", "branch: main": "tag: v1.0.0"})
    issues, notes = source_issues(dev, {URL: deprecated})
    assert [(i.file, i.path, i.message) for i in issues if i.path != PLATFORM] == [
        (
            DEV,
            f"{PLATFORM}.kustomizations.apps.path",
            f"'./apps/gone' is not a directory of {deprecated} at tag v1.0.0 ({PLATFORM}.git.tag in {DEV})",
        )
    ]
    assert [i.message for i in issues if i.path == PLATFORM] == [
        m for m in EXPECTED_AT_V1 if m.startswith("infrastructure/")
    ]


def test_large_unreadable_and_binary_files_are_skipped_with_a_note(tmp_path):
    root = tmp_path / "repo"
    write(
        root,
        {
            "apps/staging/big.yaml": "# " + "x" * FILE_MAX_BYTES + "\n",
            "apps/staging/binary.yaml": "",
            "apps/staging/release.yaml": OLD["apps/base/podinfo/release.yaml"],
        },
    )
    (root / "apps/staging/binary.yaml").write_bytes(b"\xff\xfe\x00kind")
    git(root, "init", "-q", "-b", "main")
    commit(root, "one")
    issues, notes = source_issues(stack(tmp_path), {URL: root})
    assert [i.message.split(":")[0] for i in issues if i.path == PLATFORM] == ["apps/staging/release.yaml"]
    assert [note for note in notes if note.endswith("skipped")] == [
        f"{root} at branch main: apps/staging/big.yaml: larger than 1 MiB: skipped",
        f"{root} at branch main: apps/staging/binary.yaml: not UTF-8 text (byte 0): skipped",
    ]


# --------------------------------------------------------------------------------------------- one manifest file


def test_documents_before_a_broken_one_still_count():
    text = "apiVersion: helm.toolkit.fluxcd.io/v2beta1\nkind: HelmRelease\nmetadata: {name: a}\n---\nkey: [unclosed\n"
    found, problem = flux_objects("a.yaml", text)
    assert [(o.kind, o.name, o.api_version) for o in found] == [("HelmRelease", "a", "helm.toolkit.fluxcd.io/v2beta1")]
    assert problem is not None and problem.startswith("not valid YAML (line ")


@pytest.mark.parametrize(
    "text",
    [
        "a: &a [*a, *a]\n" + "".join(f"b{i}: &b{i} [*b{i - 1 if i else 0}]\n" for i in range(3)),  # aliases
        "[" * 200 + "]" * 200,  # nesting
        "- 1\n" * 30_000,  # values
        "{apiVersion: 1, kind: [x]}\n",  # no strings
        "just text\n",
        "",
    ],
    ids=["aliases", "deep", "many", "not-strings", "scalar", "empty"],
)
def test_hostile_or_odd_yaml_ends_fast_with_no_object(text):
    found, _ = flux_objects("x.yaml", text)
    assert found == []


def test_an_object_without_a_name_is_still_named():
    [found], problem = flux_objects("x.yaml", "apiVersion: source.toolkit.fluxcd.io/v1beta1\nkind: Bucket\n")
    assert (found.name, problem) == ("(no name)", None)
