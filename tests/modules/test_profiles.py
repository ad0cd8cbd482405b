"""Profiles: merged under a stack file in order, each value traced to the file that wrote it."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from modules.spec import ConfigSecret, KeyVaultRef, SpecError, load_stack_file, read_stack_config
from modules.spec.profiles import merge
from tests.conftest import ROOT, STANDALONE_STACKS

CANARY = "v1:CANARYprofileCiphertext0123"


def write(directory: Path, relative: str, text: str) -> Path:
    path = directory / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def stacks(tmp_path: Path) -> Path:
    """A stacks directory with `base` (a cluster's defaults) and `edge` (a configuration; uses base)."""
    write(
        tmp_path,
        "profiles/base.yaml",
        """\
        config:
          fluxfleet:cluster:
            kind: aks
            location: westeurope
            kubernetesVersion: "1.30"
            nodePools: [{name: system, vmSize: Standard_D4s_v5, count: 3, mode: System}]
            tags: {owner: platform, cost-center: "42"}
        """,
    )
    write(
        tmp_path,
        "profiles/edge.yaml",
        """\
        config:
          fluxfleet:profiles: [base]
          fluxfleet:flux:
            configurations:
              platform:
                git: {url: "https://github.com/o/r", branch: main}
                kustomizations:
                  infra: {path: ./infra, prune: true}
                  apps: {path: ./apps, prune: true, dependsOn: [infra]}
        """,
    )
    return tmp_path


def stack(stacks: Path, body: str, name: str = "store-1") -> Path:
    return write(stacks, f"Pulumi.{name}.yaml", "config:\n" + textwrap.indent(textwrap.dedent(body), "  "))


def issues(path: Path) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_stack_file(path)
    return [str(issue) for issue in caught.value.issues]


def test_maps_merge_key_by_key_lists_and_scalars_replace_null_removes(stacks):
    path = stack(
        stacks,
        """\
        fluxfleet:profiles: [edge]
        fluxfleet:cluster:
          name: store-1
          resourceGroup: rg-stores
          kubernetesVersion: "1.31"
          nodePools: [{name: system, vmSize: Standard_D2s_v5, count: 1, mode: System}]
          tags: {cost-center: null, store: "1"}
        fluxfleet:flux:
          configurations:
            platform:
              kustomizations:
                apps: {dependsOn: []}
        """,
    )
    loaded = load_stack_file(path)
    cluster = loaded.spec.cluster
    assert (cluster.name, cluster.location, cluster.kubernetes_version) == ("store-1", "westeurope", "1.31")
    assert [(p.vm_size, p.count) for p in cluster.node_pools] == [("Standard_D2s_v5", 1)]  # the list replaced whole
    assert cluster.tags == {"owner": "platform", "store": "1"}  # merged, cost-center removed
    apps = loaded.spec.flux.configurations["platform"].kustomizations["apps"]
    assert (apps.path, apps.prune, apps.depends_on) == ("./apps", True, [])
    assert loaded.profiles == ("base", "edge")  # a profile after the ones it names


def test_each_value_is_traced_to_the_file_that_wrote_it(stacks):
    path = stack(stacks, "fluxfleet:profiles: [edge]\nfluxfleet:cluster: {name: store-1, resourceGroup: rg}\n")
    origins = read_stack_config(path).origins
    assert origins.file_of(("cluster", "name")) == str(path)
    assert origins.file_of(("cluster", "kubernetesVersion")) == str(stacks / "profiles" / "base.yaml")
    assert origins.file_of(("cluster", "tags", "owner")) == str(stacks / "profiles" / "base.yaml")
    assert origins.file_of(("cluster",)) == str(path)  # the stack wrote into it last
    kustomization = ("flux", "configurations", "platform", "kustomizations", "apps", "dependsOn", 0)
    assert origins.file_of(kustomization) == str(stacks / "profiles" / "edge.yaml")


def test_an_error_in_a_profile_names_the_profile_and_its_key(stacks):
    edge = stacks / "profiles" / "edge.yaml"
    edge.write_text(edge.read_text().replace("dependsOn: [infra]", "dependsOn: [infrastructure]"))
    path = stack(stacks, "fluxfleet:profiles: [edge]\nfluxfleet:cluster: {name: store-1, resourceGroup: rg}\n")
    assert issues(path) == [
        f"{edge}: fluxfleet:flux.configurations.platform.kustomizations.apps.dependsOn[0]: "
        "unknown kustomization 'infrastructure' (known: apps, infra)"
    ]


def test_shape_errors_name_the_profile_and_missing_keys_the_file_that_wrote_the_map(stacks):
    base = stacks / "profiles" / "base.yaml"
    base.write_text(base.read_text().replace('kubernetesVersion: "1.30"', "kubernetesVersion: 1.30\n    nodePool: 2"))
    path = stack(stacks, "fluxfleet:profiles: [edge]\nfluxfleet:cluster: {resourceGroup: rg}\n")
    assert sorted(issues(path)) == sorted(
        [
            f"{base}: fluxfleet:cluster.kubernetesVersion: Input should be a valid string",
            f"{base}: fluxfleet:cluster.nodePool: unknown key (did you mean 'nodePools'?)",
            f"{path}: fluxfleet:cluster.name: required key is missing",
        ]
    )


def test_a_secure_value_in_a_profile_is_refused_without_echo(stacks):
    edge = stacks / "profiles" / "edge.yaml"
    edge.write_text(edge.read_text().replace("branch: main}", f"branch: main, httpsKey: {{secure: '{CANARY}'}}}}"))
    path = stack(stacks, "fluxfleet:profiles: [edge]\nfluxfleet:cluster: {name: store-1, resourceGroup: rg}\n")
    [line] = issues(path)
    assert line.startswith(f"{edge}: fluxfleet:flux.configurations.platform.git.httpsKey: a Pulumi secret is encrypted")
    assert "CANARY" not in line


def test_a_plaintext_secret_in_a_profile_is_refused_even_where_pulumi_decrypted_the_stacks_own(stacks):
    """Under `pulumi up`, a `fluxfleet:flux` set with --secret makes its plain strings secrets: never a profile's."""
    from modules.spec.load import compose
    from modules.spec.profiles import ProfileLibrary

    edge = stacks / "profiles" / "edge.yaml"
    edge.write_text(edge.read_text().replace("branch: main}", 'branch: main, httpsUser: git, httpsKey: "ghp_plain"}'))
    own = {"cluster": {"name": "s", "resourceGroup": "rg"}, "profiles": ["edge"]}
    library = ProfileLibrary(stacks, str(stacks))
    with pytest.raises(SpecError) as caught:
        compose("s", "Pulumi.s.yaml", own, library).spec(plain_strings_are_secret=True)
    [line] = map(str, caught.value.issues)
    assert line.startswith(f"{edge}: fluxfleet:flux.configurations.platform.git.httpsKey: plaintext secret")
    assert "ghp_plain" not in line
    # the stack's own decrypted value is its secret
    own["flux"] = {"configurations": {"platform": {"git": {"httpsKey": "ghp_decrypted"}}}}
    edge.write_text(edge.read_text().replace(', httpsKey: "ghp_plain"', ""))
    loaded = compose("s", "Pulumi.s.yaml", own, ProfileLibrary(stacks, str(stacks))).spec(plain_strings_are_secret=True)
    assert loaded.spec.flux.configurations["platform"].git.https_key == ConfigSecret("ghp_decrypted")


@pytest.mark.parametrize(
    ("profiles", "files", "expected"),
    [
        ("[missing]", {}, "{stack}: fluxfleet:profiles[0]: unknown profile 'missing' (known: base, edge)"),
        ("[a]", {"a": "[b]", "b": "[a]"}, "{dir}/b.yaml: fluxfleet:profiles[0]: profile cycle: a -> b -> a"),
        ("[a]", {"a": "[a]"}, "{dir}/a.yaml: fluxfleet:profiles[0]: profile cycle: a -> a"),
        ("[base, base]", {}, "{stack}: fluxfleet:profiles[1]: duplicate 'base'"),
        ("[../base]", {}, "{stack}: fluxfleet:profiles[0]: '../base' is not a profile name"),
        ("base", {}, "{stack}: fluxfleet:profiles: a list of profile names, such as [base, edge-store]"),
    ],
)
def test_profile_references_that_cannot_be_followed(stacks, profiles, files, expected):
    for name, uses in files.items():
        write(stacks, f"profiles/{name}.yaml", f"config:\n  fluxfleet:profiles: {uses}\n")
    path = stack(stacks, f"fluxfleet:profiles: {profiles}\nfluxfleet:cluster: {{name: s, resourceGroup: rg}}\n")
    lines = issues(path)  # with what the stack then misses, when the profiles are not merged
    assert lines[0].startswith(expected.format(stack=path, dir=stacks / "profiles")), lines


def test_a_profile_holds_fluxfleet_keys_only(stacks):
    write(stacks, "profiles/loc.yaml", "config:\n  azure-native:location: eastus\n  pulumi:tags: {a: b}\n")
    path = stack(stacks, "fluxfleet:profiles: [base, loc]\nfluxfleet:cluster: {name: s, resourceGroup: rg}\n")
    lines = issues(path)
    assert [line.split(": ")[:2] for line in lines] == [
        [str(stacks / "profiles" / "loc.yaml"), "'azure-native:location'"],
        [str(stacks / "profiles" / "loc.yaml"), "'pulumi:tags'"],
    ]
    assert all("a profile holds fluxfleet: keys only" in line for line in lines)


def test_a_profile_is_read_once_for_every_stack_that_uses_it(stacks, monkeypatch):
    from modules.spec import files
    from modules.spec.profiles import ProfileLibrary

    reads: list[str] = []
    real = files.read_text
    monkeypatch.setattr(files, "read_text", lambda path, file: reads.append(file) or real(path, file))
    library = ProfileLibrary(stacks, str(stacks))
    for index in range(5):
        path = stack(
            stacks, "fluxfleet:profiles: [edge]\nfluxfleet:cluster: {name: s, resourceGroup: rg}\n", f"s{index}"
        )
        load_stack_file(path, library=library)
    assert sorted(reads).count(str(stacks / "profiles" / "base.yaml")) == 1
    assert len(reads) == 5 + 2


def test_merge_removes_nested_nulls_and_keeps_list_items():
    merged, origins = merge([("p", {"a": {"b": 1, "c": [None, 2]}}), ("s", {"a": {"b": None, "d": {"e": None}}})], "s")
    assert merged == {"a": {"c": [None, 2], "d": {}}}
    assert (
        origins.file_of(("a", "c", 0)) == "p" and origins.file_of(("a", "d")) == "s" and origins.file_of(("a",)) == "s"
    )


@pytest.mark.parametrize("name", ["dev", "staging", "prod-weu", "edge-store-001"])
def test_the_example_stacks_are_their_standalone_files(name):
    """The examples over profiles and tests/fixtures/stacks (one file each, used by tests that edit text) agree."""
    over_profiles = load_stack_file(ROOT / "stacks" / f"Pulumi.{name}.yaml")
    standalone = load_stack_file(STANDALONE_STACKS / f"Pulumi.{name}.yaml")
    assert over_profiles.spec == standalone.spec
    assert over_profiles.profiles and not standalone.profiles


def test_the_example_store_is_five_lines():
    lines = (ROOT / "stacks" / "Pulumi.edge-store-001.yaml").read_text().splitlines()
    assert len([line for line in lines if not line.startswith("#")]) <= 5


def test_key_vault_references_in_a_profile_are_allowed(stacks):
    edge = stacks / "profiles" / "edge.yaml"
    reference = "httpsUser: git, httpsKey: {keyVault: kv-stores, secret: pat}"
    edge.write_text(edge.read_text().replace("branch: main}", f"branch: main, {reference}}}"))
    path = stack(stacks, "fluxfleet:profiles: [edge]\nfluxfleet:cluster: {name: s, resourceGroup: rg}\n")
    git = load_stack_file(path).spec.flux.configurations["platform"].git
    assert git.https_key == KeyVaultRef("kv-stores", "pat")
    assert json.dumps(str(git.https_key)) == '"keyvault:kv-stores/pat"'


def test_profiles_nested_without_end_are_one_error(stacks):
    for index in range(200):
        write(stacks, f"profiles/p{index}.yaml", f"config:\n  fluxfleet:profiles: [p{index + 1}]\n")
    path = stack(stacks, "fluxfleet:profiles: [p0]\nfluxfleet:cluster: {name: s, resourceGroup: rg}\n")
    lines = issues(path)
    assert lines[0] == (
        f"{stacks / 'profiles' / 'p15.yaml'}: fluxfleet:profiles[0]: profiles nested deeper than 16 levels "
        "(p0 -> p1 -> p2 -> …)"
    )
