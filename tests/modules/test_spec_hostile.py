"""Hostile input: every reader ends fast with one bounded line per problem, naming the file and the key, and never
quotes a secret or an unbounded value; and the mistakes that used to pass silently (namespace typos, a bare key
beside its namespaced twin, a bad azure-native:location, control characters in single-line fields) are errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from modules.spec import SpecError, load_fleet, load_policy_levels, load_stack_file, parse_spec
from tests.conftest import ROOT
from tests.modules.test_spec import FILE, demo, errors

LINE_MAX = 1600  # an error line is never longer than this, whatever the input
READERS = {
    "stack": "load_stack_file(path)",
    "fleet": "load_fleet(path, ['dev'])",
    "policy": "load_policy_levels(path, ['flux-prune'])",
    # the file read as the profile it is (in a directory named profiles)
    "profile": "ProfileLibrary(path.parent.parent, str(path.parent.parent)).profile(path.name.removesuffix('.yaml'))",
}


def read_in_a_child(reader: str, path: Path, timeout: float = 60) -> list[str]:
    """Run one reader on `path` in a child process, so that a hang fails the test instead of stalling the suite;
    the lines of its SpecError (it must raise one: exit 2, no traceback)."""
    code = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from modules.spec import ProfileLibrary, SpecError, load_fleet, load_policy_levels, load_stack_file
        path = Path(sys.argv[1])
        try:
            {READERS[reader]}
        except SpecError as error:
            print(error)
            sys.exit(2)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines and all(line.startswith(f"{path}: ") and len(line) < LINE_MAX for line in lines), lines
    return lines


def stack_text(**replacements: str) -> str:
    """The dev example stack as one file (no profiles), edited by text replacement."""
    text = (ROOT / "tests" / "fixtures" / "stacks" / "Pulumi.dev.yaml").read_text()
    for old, new in replacements.items():
        assert old in text
        text = text.replace(old, new)
    return text


def laughs(levels: int = 9) -> str:
    """A billion laughs: 10 ** levels strings from a few hundred bytes, as YAML aliases."""
    anchors = ["&a0 [" + ", ".join(["lol"] * 10) + "]"]
    anchors += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels + 1)]
    return "[" + ", ".join(anchors) + "]"


HOSTILE = {
    # today: the error quotes the expanded value and hangs for minutes
    "billion laughs": (
        stack_text(**{"dependsOn: [infra-configs]": f"dependsOn: {laughs()}"}),
        "not read: expands to more than 100,000 values",
    ),
    "recursive alias": (stack_text(**{"dependsOn: [infra-configs]": "dependsOn: &r [*r]"}), "nested deeper than 64"),
    # today: RecursionError in ruamel's composer
    "1000 levels": (
        stack_text(**{"dependsOn: [infra-configs]": "dependsOn: " + "[" * 1000 + "]" * 1000}),
        "line 30: not read: nested deeper than 64 levels",
    ),
    # today: ValueError from int()
    "a 5000-digit integer": (
        stack_text(**{"count: 2": f"count: {'9' * 5000}"}),
        "line 13: not read: a number of more than 4,300 digits",
    ),
}


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_yaml_ends_fast_in_one_line_for_every_reader(tmp_path, case, reader):
    text, expect = HOSTILE[case]
    path = tmp_path / "profiles" / "Pulumi.x.yaml"
    path.parent.mkdir()
    path.write_text(text)
    [line] = read_in_a_child(reader, path)
    assert expect in line


def test_an_alias_bomb_names_the_key_path_where_the_limit_was_hit(tmp_path):
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text(HOSTILE["billion laughs"][0])
    [line] = read_in_a_child("stack", path)
    assert line.startswith(f"{path}: fluxfleet:flux.configurations.platform.kustomizations.apps.dependsOn[")


def special_file(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / "Pulumi.x.yaml"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink to /dev/zero":
        path.symlink_to("/dev/zero")
    elif kind == "symlink loop":
        path.symlink_to(path.name)
    else:
        path.mkdir()
    return path


@pytest.mark.skipif(not hasattr(os, "mkfifo") or not Path("/dev/zero").exists(), reason="needs FIFOs and /dev/zero")
@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize(
    ("kind", "expect"),
    [
        ("fifo", "-: not a regular file"),  # today: hangs, waiting for a writer
        ("symlink to /dev/zero", "-: not a regular file"),  # today: reads until memory runs out
        ("symlink loop", "-: cannot read: Too many levels of symbolic links"),
        ("directory", "-: not a regular file"),
    ],
)
def test_files_that_are_not_regular_files_are_refused(tmp_path, reader, kind, expect):
    (tmp_path / "profiles").mkdir()
    path = special_file(tmp_path / "profiles", kind)
    [line] = read_in_a_child(reader, path, timeout=30)
    assert line == f"{path}: {expect}"


def test_a_5_mb_value_still_loads_and_is_shown_cut_with_its_length(tmp_path):
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text(stack_text(**{"name: aks-dev-weu": f"name: {'x' * 5_000_000}"}))
    with pytest.raises(SpecError) as caught:
        load_stack_file(path, "stacks/Pulumi.x.yaml")
    [line] = str(caught.value).splitlines()
    assert line.startswith("stacks/Pulumi.x.yaml: fluxfleet:cluster.name: 'xxxxx")
    assert "… (5,000,000 characters) is not a cluster name" in line and len(line) < 300


def test_a_file_over_16_mib_is_refused(tmp_path):
    path = tmp_path / "fleet.yaml"
    path.write_text("# " + "x" * (16 * 1024 * 1024) + "\nstages: []\n")
    with pytest.raises(SpecError) as caught:
        load_fleet(path, ["dev"], "stacks/fleet.yaml")
    assert str(caught.value) == "stacks/fleet.yaml: -: larger than 16 MiB, the most fluxfleet reads"


def test_a_5_mb_key_and_terminal_escapes_in_keys_are_escaped_and_cut(tmp_path):
    path = tmp_path / "levels.yaml"
    escape = json.dumps("flux-prune\x1b[2J\nforged: line")  # a key as YAML writes it: "flux-prune\u001b[2J\n..."
    path.write_text(f"? {'k' * 5_000_000}\n: mandatory\n{escape}: advisory\n")
    with pytest.raises(SpecError) as caught:
        load_policy_levels(path, ["flux-prune"])
    long, escaped = str(caught.value).splitlines()
    assert long.startswith(f"{path}: kkkk") and long.endswith("… (5,000,000 characters): unknown policy")
    assert len(long) < 300
    assert escaped == f"{path}: flux-prune\\x1b[2J\\nforged: line: unknown policy"


def test_a_policy_level_value_is_shown_bounded(tmp_path):
    path = tmp_path / "levels.yaml"
    path.write_text(json.dumps({"flux-prune": "m" * 100_000}))
    with pytest.raises(SpecError) as caught:
        load_policy_levels(path, ["flux-prune"])
    assert str(caught.value).startswith(f"{path}: flux-prune: 'mmm")
    assert "… (100,000 characters): use one of mandatory, advisory, disabled" in str(caught.value)


# ------------------------------------------------------------------------------------------ many errors, long lines


def test_one_file_reports_at_most_1000_errors_then_a_count(raw):
    demo(raw)["kustomizations"]["apps"]["dependsOn"] = [f"missing-{i}" for i in range(3000)]
    messages = errors(raw)
    assert len(messages) == 1001
    assert messages[-1] == f"{FILE}: -: ... and 2,000 more"


def test_the_count_survives_when_errors_are_raised_again(tmp_path):
    deps = ", ".join(f"missing-{i}" for i in range(1500))
    text = stack_text(**{"dependsOn: [infra-configs]": f"dependsOn: [{deps}]"}) + "  fluxflet:extra: 1\n"
    messages = load_errors(tmp_path, text)
    assert (
        messages[0] == "stacks/Pulumi.x.yaml: fluxflet:extra: unknown namespace 'fluxflet' (did you mean 'fluxfleet'?)"
    )
    assert len(messages) == 1001 and messages[-1] == "stacks/Pulumi.x.yaml: -: ... and 501 more"


def test_every_part_of_an_error_line_is_escaped_and_bounded(raw):
    name = "demo\x1b[2J\nstacks/Pulumi.prod.yaml: fluxfleet:cluster: forged" + "d" * 5_000_000
    raw["flux"]["configurations"] = {name: demo(raw)}
    for message in errors(raw):
        assert "\n" not in message and "\x1b" not in message and len(message) < LINE_MAX
        assert message.startswith(f"{FILE}: fluxfleet:flux.configurations.demo\\x1b[2J\\nstacks/Pulumi.prod.yaml")


def test_nesting_from_pulumi_config_is_refused_too(raw):
    nested: Any = "x"
    for _ in range(100):
        nested = [nested]
    demo(raw)["kustomizations"]["apps"]["dependsOn"] = nested
    [message] = errors(raw)
    assert message.startswith(f"{FILE}: fluxfleet:flux.configurations.demo.kustomizations.apps.dependsOn[0][0]")
    assert message.endswith("not read: nested deeper than 64 levels")


# ------------------------------------------------------------------------------------------ durations


@pytest.mark.parametrize(
    ("value", "expect"),
    [
        (999999999999999999999999, "999999999999999999999999 is longer than 30 days (720h)"),  # today: OverflowError
        ("721h", "'721h' is longer than 30 days (720h)"),
        ("9" * 5000 + "s", "'99999"),  # int() never sees the digits
    ],
)
def test_durations_are_bounded(tmp_path, value, expect):
    path = tmp_path / "fleet.yaml"
    path.write_text(json.dumps({"stages": [{"name": "all", "stacks": ["dev"], "afterStageWait": value}]}))
    with pytest.raises(SpecError) as caught:
        load_fleet(path, ["dev"], "stacks/fleet.yaml")
    [line] = str(caught.value).splitlines()
    assert line.startswith(f"stacks/fleet.yaml: stages[0].afterStageWait: {expect}") and len(line) < 300


def test_thirty_days_is_the_longest_duration(raw, tmp_path):
    path = tmp_path / "fleet.yaml"
    path.write_text(json.dumps({"stages": [{"name": "all", "stacks": ["dev"], "afterStageWait": "720h"}]}))
    assert load_fleet(path, ["dev"]).stages[0].after_stage_wait == 30 * 24 * 3600
    demo(raw)["waitForReconciliation"] = True
    demo(raw)["reconciliationWaitDuration"] = "P30DT1S"
    assert errors(raw) == [
        f"{FILE}: fluxfleet:flux.configurations.demo.reconciliationWaitDuration: "
        "'P30DT1S' is longer than 30 days (P30D), the longest duration fluxfleet takes"
    ]


# ------------------------------------------------------------------------------------------ config namespaces


def load(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text(text)
    return load_stack_file(path, "stacks/Pulumi.x.yaml")


def load_errors(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load(tmp_path, text)
    return [str(issue) for issue in caught.value.issues]


@pytest.mark.parametrize("namespace", ["fluxflet", "FLUXFLEET", "FluxFleet", "fluxfleets"])
def test_a_typo_in_the_namespace_is_an_error(tmp_path, namespace):
    # today: silently ignored, and the stack plans green with no Flux configuration
    text = stack_text(**{"fluxfleet:flux:": f"{namespace}:flux:"})
    assert load_errors(tmp_path, text) == [
        f"stacks/Pulumi.x.yaml: {namespace}:flux: unknown namespace '{namespace}' (did you mean 'fluxfleet'?)"
    ]


def test_azure_native_keys_are_the_providers(tmp_path):
    text = stack_text(**{"azure-native:location: westeurope": "azure-native:locaton: westeurope"})
    assert load_errors(tmp_path, text) == [
        "stacks/Pulumi.x.yaml: azure-native:locaton: not a config key of the azure-native provider "
        "(did you mean 'azure-native:location'?)",
        "stacks/Pulumi.x.yaml: fluxfleet:cluster.location: an AKS cluster needs a location: set it here or in "
        "azure-native:location",
    ]
    extra = "\n  azure-native:subscriptionId: 00000000-0000-0000-0000-000000000000\n  azure-native:useOidc: true"
    extra += "\n  pulumi:tags: {team: platform}\n  myapp:anything: {x: 1}\n  azure:location: westeurope"
    assert load(tmp_path, stack_text() + extra).spec.cluster.location == "westeurope"


def test_config_keys_split_at_the_first_colon(tmp_path):
    text = stack_text(**{"fluxfleet:flux:": "fluxfleet:flux:x: 1\n  fluxfleet:flux:"})
    assert load_errors(tmp_path, text) == ["stacks/Pulumi.x.yaml: fluxfleet:flux:x: unknown key (did you mean 'flux'?)"]


def test_a_bare_key_beside_its_namespaced_twin_is_an_error(tmp_path):
    text = stack_text(
        **{"  fluxfleet:flux:": "  cluster: {kind: arc, name: other, resourceGroup: rg}\n  fluxfleet:flux:"}
    )
    assert load_errors(tmp_path, text) == [
        "stacks/Pulumi.x.yaml: cluster: the same key as 'fluxfleet:cluster' (a bare key is in the project "
        "namespace, fluxfleet): keep one"
    ]


def test_azure_native_location_is_checked_like_cluster_location(tmp_path):
    # today: passed to the cluster unchecked
    text = stack_text(**{"azure-native:location: westeurope": 'azure-native:location: "West Europe; DROP\\nx"'})
    assert load_errors(tmp_path, text) == [
        "stacks/Pulumi.x.yaml: azure-native:location: 'West Europe; DROP\\nx' is not an Azure region name such as "
        "westeurope"
    ]


def test_the_pulumi_reader_checks_namespaces_and_the_location(raw):
    from modules.spec import spec_from_pulumi_config
    from tests.test_main import config_of, with_config

    config = {
        **config_of(raw),
        "fluxflet:flux": "{}",
        "azure-native:location": "West Europe\x1b[2J",
        "azure-native:tenantId": "00000000-0000-0000-0000-000000000000",
        "fluxfleet:clustr": "x",
        "pulumi:template": "x",
    }
    with pytest.raises(SpecError) as caught:
        with_config(config)(spec_from_pulumi_config)
    assert [str(issue) for issue in caught.value.issues] == [
        f"{FILE}: fluxflet:flux: unknown namespace 'fluxflet' (did you mean 'fluxfleet'?)",
        f"{FILE}: azure-native:location: 'West Europe\\x1b[2J' is not an Azure region name such as westeurope",
        f"{FILE}: fluxfleet:clustr: unknown key (did you mean 'cluster'?)",
    ]


# ------------------------------------------------------------------------------------------ control characters


@pytest.mark.parametrize(
    ("edit", "path", "expect"),
    [
        (lambda r: r["flux"]["configurations"].update({"apps\n": demo(r)}), "apps\\n", "is not a DNS-1123 label"),
        (
            lambda r: demo(r)["kustomizations"].update({"apps\n": demo(r)["kustomizations"].pop("apps")}),
            "demo.kustomizations.apps\\n",
            "is not a DNS-1123 label",
        ),
        (lambda r: demo(r).update(namespace="flux-system\n"), "demo.namespace", "is not a DNS-1123 label"),
        (lambda r: demo(r)["kustomizations"]["apps"].update(path="./apps\x1b[2J"), "apps.path", "contains \\x1b"),
        (lambda r: demo(r)["git"].update(branch="main\nforged"), "demo.git.branch", "contains \\n"),
        (lambda r: demo(r)["git"].update(url="https://github.com/o/r\u202e"), "demo.git.url", "contains \\u202e"),
        (lambda r: demo(r)["git"].update(branch="v" * 3000), "demo.git.branch", "at most 2048 characters"),
        (lambda r: r["cluster"].update(tags={"team\t": "x"}), "cluster.tags.team\\t", "contains \\t"),
        (lambda r: r["cluster"].update(tags={"team": "a\u2028b"}), "cluster.tags.team", "contains \\u2028"),
        (
            lambda r: demo(r)["git"].update(httpsKey={"keyVault": "kv-test\n", "secret": "pat"}),
            "demo.git.httpsKey",
            "keyVault must be a Key Vault name",
        ),
        (
            lambda r: demo(r)["git"].update(httpsKey={"keyVault": "kv-test", "secret": "pat\n"}),
            "demo.git.httpsKey",
            "secret must be a Key Vault secret name",
        ),
        (
            lambda r: r["cluster"].update(subscriptionId="00000000-0000-0000-0000-000000000000\n"),
            "cluster.subscriptionId",
            "is not a GUID",
        ),
        (
            lambda r: r.setdefault("flux", {}).update(extension={"settings": {"a\x1b": "b"}}),
            "flux.extension.settings.a\\x1b",
            "contains \\x1b",
        ),
    ],
)
def test_single_line_fields_refuse_control_characters(raw, edit, path, expect):
    edit(raw)
    messages = [m for m in errors(raw) if f"{path}: " in m]
    assert messages and expect in messages[0], errors(raw)
    assert all("\n" not in m and "\x1b" not in m for m in errors(raw))


def test_multi_line_fields_keep_newlines_and_tabs_only(raw):
    git = demo(raw)["git"]
    git["httpsCACert"] = "-----BEGIN CERTIFICATE-----\n\tMIIB\n-----END CERTIFICATE-----\n"
    demo(raw)["kustomizations"]["apps"]["postBuild"] = {"substitute": {"banner": "line 1\nline 2", "empty": ""}}
    spec = parse_spec(raw, file=FILE)
    assert spec.flux.configurations["demo"].git.https_ca_cert.count("\n") == 3
    git["httpsCACert"] = "-----BEGIN\x1b[2J"
    assert errors(raw) == [
        f"{FILE}: fluxfleet:flux.configurations.demo.git.httpsCACert: contains \\x1b: only printable text, "
        "newlines and tabs here"
    ]


# ------------------------------------------------------------------------------------------ secrets


def test_a_secure_value_in_a_field_with_fixed_values_is_never_echoed(raw):
    # today: "Input should be 'cluster' or 'namespace' (got {'secure': 'v1:...'})"
    demo(raw)["scope"] = {"secure": "v1:CANARYciphertext"}
    raw["cluster"]["kind"] = {"secure": "v1:CANARYciphertext"}
    messages = errors(raw)
    assert messages == [
        f"{FILE}: fluxfleet:cluster.kind: is a Pulumi secret, but this key is not a secret field: set it without "
        "--secret",
        f"{FILE}: fluxfleet:flux.configurations.demo.scope: is a Pulumi secret, but this key is not a secret field: "
        "set it without --secret",
    ]


def test_a_secure_location_is_never_echoed(tmp_path):
    text = stack_text(**{"azure-native:location: westeurope": "azure-native:location: {secure: v1:CANARYxyz}"})
    [message] = load_errors(tmp_path, text)
    assert "CANARY" not in message and "secure" not in message and message.startswith("stacks/Pulumi.x.yaml: azure")
