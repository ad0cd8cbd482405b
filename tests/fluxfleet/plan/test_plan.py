"""`fluxfleet plan` end to end: the example stacks, every format, bad input, and no secret in any output."""

from __future__ import annotations

import base64
import json
import logging
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from fluxfleet.plan import FleetPlan, plan_fleet, pool_import_commands
from modules import kubernetes_versions
from modules.kubernetes_versions import AS_OF
from modules.spec import stack_files
from fluxfleet.plan.report import render
from tests.conftest import STANDALONE_STACKS, CANARY, ROOT, fixture_file
from tests.fluxfleet.plan import run, sarif_file
from tests.modules.spec.ssh import DEPLOY_KEY, DeployKeyVault

STACKS = ROOT / "stacks"
EXAMPLES = ["dev", "edge-store-001", "prod-weu", "staging"]


@pytest.fixture
def in_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def test_every_example_stack_plans(in_root):
    result = run("--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [s["stack"] for s in report["stacks"]] == EXAMPLES
    for stack in report["stacks"]:
        assert stack["ok"] and stack["errors"] == [] and stack["file"] == f"stacks/Pulumi.{stack['stack']}.yaml"
        types = [r["type"] for r in stack["resources"]]
        assert types.count("azure-native:kubernetesconfiguration:Extension") == 1
        assert types.count("pulumi-python:dynamic/azure:ProviderRegistration") == 3
        for resource in stack["resources"]:
            assert set(resource) >= {"type", "name", "parent", "inputs", "secrets"}


def test_aks_stacks_use_key_vault_git_credentials(in_root):
    report = json.loads(run("dev", "staging", "prod-weu", "--format", "json").stdout)
    for stack in report["stacks"]:
        [flux] = [r for r in stack["resources"] if r["type"].endswith(":FluxConfiguration")]
        assert flux["inputs"]["configurationProtectedSettings"] == "[secret]"
        assert flux["secrets"] == ["configurationProtectedSettings"]
        assert any(r["type"].endswith(":ManagedCluster") for r in stack["resources"])


def test_arc_example_is_the_tutorial(in_root):
    [stack] = json.loads(run("edge-store-001", "--format", "json").stdout)["stacks"]
    [connected] = [r for r in stack["resources"] if r["type"] == "azure-native:kubernetes:ConnectedCluster"]
    assert connected["read"] is True
    [flux] = [r for r in stack["resources"] if r["type"].endswith(":FluxConfiguration")]
    assert flux["name"] == "gitops-demo" and flux["inputs"]["namespace"] == "gitops-demo"
    assert flux["inputs"]["kustomizations"]["apps"]["dependsOn"] == ["infra"]
    assert stack["kustomizations"] == {
        "gitops-demo": [
            {"name": "infra", "path": "./infrastructure", "dependsOn": []},
            {"name": "apps", "path": "./apps/staging", "dependsOn": ["infra"]},
        ]
    }


def test_resources_are_listed_in_apply_order(in_root):
    [stack] = json.loads(run("dev", "--format", "json").stdout)["stacks"]
    position = {r["urn"]: i for i, r in enumerate(stack["resources"])}
    for resource in stack["resources"]:
        for before in [resource["parent"], *resource["options"]["dependsOn"]]:
            if before:
                assert position[before] < position[resource["urn"]]
    again = json.loads(run("dev", "--format", "json").stdout)["stacks"][0]
    assert [r["urn"] for r in again["resources"]] == [r["urn"] for r in stack["resources"]]


def test_text_format_shows_tree_and_graph(in_root):
    result = run("dev")
    assert result.exit_code == 0
    assert "✔ dev  stacks/Pulumi.dev.yaml" in result.stdout
    assert "azure-native:containerservice:ManagedCluster  aks-dev-weu" in result.stdout
    assert "3. apps  ./apps/staging  after infra-configs" in result.stdout
    assert "1 stack(s) planned, 0 invalid" in result.stdout


def test_markdown_format_has_summary_and_mermaid(in_root, tmp_path):
    out = tmp_path / "plan.md"
    result = run("edge-store-001", "--format", "markdown", "--output", str(out))
    assert result.exit_code == 0 and result.stdout == ""
    text = out.read_text()
    assert "| edge-store-001 | `stacks/Pulumi.edge-store-001.yaml` | ✅ valid |" in text
    assert "```mermaid" in text and "gitops_demo__infra --> gitops_demo__apps" in text


def add_broken_stack(stacks: Path) -> None:
    """`broken`: the dev example on a cluster of its own, with a misspelt dependsOn target."""
    (stacks / "Pulumi.broken.yaml").write_text(
        (STANDALONE_STACKS / "Pulumi.dev.yaml")
        .read_text()
        .replace("name: aks-dev-weu", "name: aks-broken-weu")
        .replace("dependsOn: [infra-controllers]", "dependsOn: [infra-controler]")
    )


def test_one_bad_stack_among_good_ones(tmp_path):
    stacks = tmp_path / "stacks"
    shutil.copytree(STACKS, stacks)
    add_broken_stack(stacks)
    result = run("--stacks-dir", str(stacks), "--format", "json")
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    by_name = {s["stack"]: s for s in report["stacks"]}
    assert not by_name["broken"]["ok"] and by_name["broken"]["resources"] == []
    [error] = by_name["broken"]["errors"]
    assert error["path"] == "fluxfleet:flux.configurations.platform.kustomizations.infra-configs.dependsOn[0]"
    assert error["message"] == "unknown kustomization 'infra-controler' (known: apps, infra-configs, infra-controllers)"
    assert all(by_name[name]["ok"] and by_name[name]["resources"] for name in EXAMPLES)
    assert "Pulumi.broken.yaml: fluxfleet:flux.configurations.platform" in result.stderr
    line = f"{stacks / 'Pulumi.broken.yaml'}: {error['path']}: {error['message']}"
    text = run("--stacks-dir", str(stacks))
    assert text.exit_code == 2
    assert any(row.endswith(line) for row in text.stdout.splitlines()), "an error is one whole line, never wrapped"


def test_unknown_stack_and_bad_arguments_exit_2(in_root, tmp_path):
    result = run("nope")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == (
        "fluxfleet plan: stacks: 'nope': no such stack; the stacks are dev, edge-store-001, prod-weu, staging\n"
    )
    assert run("--format", "yaml").exit_code == 2
    assert run("--stacks-dir", "no-such-dir").exit_code == 2
    result = run("dev", "--output", str(tmp_path / "missing-dir" / "plan.txt"))
    assert result.exit_code == 2 and "No such file or directory" in result.stderr


def test_stack_files_skip_other_files(tmp_path):
    for name in ["Pulumi.a.yaml", "Pulumi.b.yml", "fleet.yaml", "Pulumi.yaml", "notes.txt"]:
        (tmp_path / name).write_text("config: {}\n")
    assert [p.name for p in stack_files(tmp_path)] == ["Pulumi.a.yaml", "Pulumi.b.yml"]


# ---------------------------------------------------------------------------------------------- secrets


def secret_stack(tmp_path: Path) -> list[Path]:
    """A Key Vault-backed stack and a Pulumi-secret-backed one whose ciphertext is the canary."""
    (tmp_path / "Pulumi.kv.yaml").write_text((STANDALONE_STACKS / "Pulumi.prod-weu.yaml").read_text())
    (tmp_path / "Pulumi.cfg.yaml").write_text(
        (STANDALONE_STACKS / "Pulumi.dev.yaml")
        .read_text()
        .replace("httpsKey: {keyVault: kv-fleet-dev, secret: github-pat}", f"httpsKey: {{secure: 'v1:{CANARY}'}}")
    )
    (tmp_path / "Pulumi.ext.yaml").write_text(
        (STANDALONE_STACKS / "Pulumi.staging.yaml")
        .read_text()
        .replace(
            "extension: {releaseTrain: Stable, autoUpgradeMinorVersion: true}",
            "extension: {protectedSettings: {token: {keyVault: kv-fleet-staging, secret: flux-token}}}",
        )
    )
    return stack_files(tmp_path)


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_no_secret_in_plan_output_or_logs(tmp_path, fmt, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    key_vault = DeployKeyVault()  # prod-weu's deploy key must read as an SSH key: the program checks it
    fleet = plan_fleet(secret_stack(tmp_path), key_vault=key_vault)
    assert fleet.ok and len(key_vault.reads) == 3  # the canary really went into the program
    output = render(fleet, fmt) + caplog.text + "".join(capsys.readouterr())
    for leaked in (CANARY, base64.b64encode(CANARY.encode()).decode(), CANARY[4:20], DEPLOY_KEY.splitlines()[1]):
        assert leaked not in output
    assert "[secret]" in output or fmt != "json"


def test_decrypted_pulumi_secret_is_never_rendered(raw):
    """Under `pulumi up` the engine hands the program the decrypted value: it must stay a secret throughout."""
    from fluxfleet.plan import FleetPlan, StackPlan
    from tests.conftest import deploy

    raw["flux"]["configurations"]["demo"]["git"]["httpsKey"] = CANARY
    records = deploy(raw, plain_strings_are_secret=True).records
    fleet = FleetPlan([StackPlan("test", "stacks/Pulumi.test.yaml", resources=records)])
    for fmt in ("text", "json", "markdown"):
        output = render(fleet, fmt)
        assert CANARY not in output and base64.b64encode(CANARY.encode()).decode() not in output


def test_cli_never_prints_a_secure_value(tmp_path):
    secret_stack(tmp_path)
    for fmt in ("text", "json", "markdown"):
        result = run("--stacks-dir", str(tmp_path), "--format", fmt)
        assert result.exit_code == 0 and CANARY not in result.output


# ---------------------------------------------------------------------------------------------- source paths

EXAMPLE_REPO = "https://github.com/fluxcd/flux2-kustomize-helm-example"


def test_example_stack_paths_exist_in_the_gitops_example(in_root):
    checkout = fixture_file("gitops-example")
    result = run("--source", f"{EXAMPLE_REPO}={checkout}", "--format", "json")
    assert result.exit_code == 0, result.stdout  # prod-weu reaches the same repository over ssh://


def test_a_missing_path_is_an_error_with_its_key_path(tmp_path):
    checkout = fixture_file("gitops-example")
    (tmp_path / "Pulumi.edge.yaml").write_text(
        (STANDALONE_STACKS / "Pulumi.edge-store-001.yaml").read_text().replace("./apps/staging", "./apps/stagin")
    )
    result = run(
        "--stacks-dir",
        str(tmp_path),
        "--source",
        f"git@github.com:fluxcd/flux2-kustomize-helm-example.git={checkout}",
        "--format",
        "json",
    )
    assert result.exit_code == 2
    [error] = json.loads(result.stdout)["stacks"][0]["errors"]
    assert error["path"] == "fluxfleet:flux.configurations.gitops-demo.kustomizations.apps.path"
    assert error["message"] == f"'./apps/stagin' is not a directory of {checkout} on disk"


def test_flux_objects_the_extension_no_longer_serves_are_errors_naming_file_and_object(tmp_path):
    from tests.fluxfleet.plan.test_api_scan import EXPECTED_AT_V1, NEW, OLD, commit, git, write

    repo = tmp_path / "repo"
    write(repo, OLD)
    git(repo, "init", "-q", "-b", "main")
    commit(repo, "deprecated API versions", tag="v1.0.0")
    write(repo, NEW)
    commit(repo, "migrated")
    stacks = fleet_with(tmp_path, **{"branch: main": "tag: v1.0.0"})
    result = run("--stacks-dir", str(stacks), "--source", f"{EXAMPLE_REPO}={repo}", "--format", "json")
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    errors = report["stacks"][0]["errors"]
    assert [e["message"] for e in errors] == EXPECTED_AT_V1
    assert {(e["file"], e["path"]) for e in errors} == {
        (f"{stacks}/Pulumi.dev.yaml", "fluxfleet:flux.configurations.platform")
    }
    [note] = report["notes"]  # the Helm template the repository holds: skipped, not a crash
    assert "infrastructure/configs/chart/templates/deployment.yaml: not valid YAML" in note
    assert f"note: {note}" in result.stderr.splitlines()
    assert (
        f"{stacks}/Pulumi.dev.yaml: fluxfleet:flux.configurations.platform: apps/base/podinfo/release.yaml: "
        "HelmRelease podinfo uses helm.toolkit.fluxcd.io/v2beta1, which extension 1.23.0 no longer serves: "
        "use helm.toolkit.fluxcd.io/v2"
    ) in result.stderr.splitlines()
    text = run("--stacks-dir", str(stacks), "--source", f"{EXAMPLE_REPO}={repo}")
    assert text.exit_code == 2 and f"  i {note}" in text.stdout.splitlines()
    (tmp_path / "main").mkdir()
    main = fleet_with(tmp_path / "main")  # branch main: the GA versions
    assert run("--stacks-dir", str(main), "--source", f"{EXAMPLE_REPO}={repo}").exit_code == 0


def test_a_pinned_extension_version_outside_the_window_is_refused_with_file_and_key(tmp_path):
    pinned = "extension: {releaseTrain: Stable, autoUpgradeMinorVersion: false, version: 1.20.4}"
    stacks = fleet_with(tmp_path, **{"extension: {releaseTrain: Stable, autoUpgradeMinorVersion: true}": pinned})
    result = run("--stacks-dir", str(stacks), "--format", "json")
    assert result.exit_code == 2
    [error] = json.loads(result.stdout)["stacks"][0]["errors"]
    assert (error["file"], error["path"]) == (f"{stacks}/Pulumi.dev.yaml", "fluxfleet:flux.extension.version")
    assert error["message"].startswith("1.20.4 is out of support: microsoft.flux supports 1.21 to 1.23")


def test_bad_source_option_exits_2(in_root):
    result = run("--source", "no-equals-sign")
    assert result.exit_code == 2 and "expected URL=DIR" in result.stderr


# --- policy violations ---------------------------------------------------------------------------------------------

SARIF_SCHEMA = ROOT / ".venv" / "share" / "sarif-2.1.0.json"


def fleet_with(tmp_path: Path, **replacements: str) -> Path:
    """A stacks dir with the dev example changed by text replacement, so line numbers stay meaningful."""
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    text = (STANDALONE_STACKS / "Pulumi.dev.yaml").read_text()
    for old, new in replacements.items():
        assert old in text
        text = text.replace(old, new)
    (stacks / "Pulumi.dev.yaml").write_text(text)
    return stacks


UNPRUNED = {"apps: {path: ./apps/staging, prune: true": "apps: {path: ./apps/staging, prune: false"}
# A mandatory violation of a valid stack (a plaintext credential is invalid input, exit 2: see the canary tests).
OUT_OF_SUPPORT = {'kubernetesVersion: "1.35"': 'kubernetesVersion: "1.20"'}


def test_an_advisory_violation_is_reported_and_does_not_fail(tmp_path):
    result = run("--stacks-dir", str(fleet_with(tmp_path, **UNPRUNED)), "--format", "json")
    assert result.exit_code == 0, result.output
    [stack] = json.loads(result.stdout)["stacks"]
    assert {v["level"] for v in stack["violations"]} == {"advisory"}  # flux-source-identity too: dev's GitHub PAT
    assert [v for v in stack["violations"] if v["policy"] == "flux-prune"] == [
        {
            "policy": "flux-prune",
            "level": "advisory",
            "resource": "platform",
            "path": "kustomizations.apps.prune",
            "message": "set prune: true so that what is removed from git is removed from the cluster",
            "file": stack["file"],
        }
    ]


def test_a_mandatory_violation_exits_1_in_every_format(tmp_path):
    stacks = fleet_with(tmp_path, **OUT_OF_SUPPORT)
    for fmt in ("text", "json", "markdown", "sarif"):
        result = run("--stacks-dir", str(stacks), "--format", fmt)
        assert result.exit_code == 1, (fmt, result.output)
        assert "aks-supported-version" in result.stdout
    text = run("--stacks-dir", str(stacks)).stdout
    assert "✗ mandatory [aks-supported-version] aks-dev-weu kubernetesVersion: '1.20' is out of support" in text


def test_a_mandatory_violation_makes_the_stack_not_ok_in_every_format(tmp_path):
    """ok, ✔ and ✅ say the same as the exit code: a stack with a mandatory violation is valid, but not ok."""
    stacks = fleet_with(tmp_path, **OUT_OF_SUPPORT)
    result = run("--stacks-dir", str(stacks), "--format", "json")
    report = json.loads(result.stdout)
    [stack] = report["stacks"]
    assert result.exit_code == 1
    assert (report["ok"], report["valid"], report["compliant"]) == (False, True, False)
    assert (stack["ok"], stack["valid"], stack["compliant"]) == (False, True, False)
    text = run("--stacks-dir", str(stacks)).stdout.splitlines()
    assert text[0].startswith("✗ dev ") and not any("✔" in line for line in text)
    assert text[-1] == "1 stack(s) planned, 0 invalid; 1 mandatory and 1 advisory policy violation(s)"
    markdown = run("--stacks-dir", str(stacks), "--format", "markdown").stdout
    assert f"| dev | `{stacks}/Pulumi.dev.yaml` | ❌ 1 mandatory violation(s) |" in markdown and "✅" not in markdown
    sarif = json.loads(run("--stacks-dir", str(stacks), "--format", "sarif").stdout)
    [invocation] = sarif["runs"][0]["invocations"]
    assert invocation == {
        "executionSuccessful": True,
        "exitCode": 1,
        "exitCodeDescription": "a mandatory policy violated",
    }
    [mandatory] = [r for r in sarif["runs"][0]["results"] if r["ruleId"] == "aks-supported-version"]
    assert mandatory["level"] == "error"
    (tmp_path / "advisory").mkdir()
    advisory = fleet_with(tmp_path / "advisory", **UNPRUNED)
    valid = json.loads(run("--stacks-dir", str(advisory), "--format", "json").stdout)
    assert (valid["ok"], valid["stacks"][0]["ok"]) == (True, True)  # an advisory violation is still ok


def test_invalid_input_still_exits_2_over_a_violation(tmp_path):
    stacks = fleet_with(tmp_path, **OUT_OF_SUPPORT)
    (stacks / "Pulumi.broken.yaml").write_text("config:\n  fluxfleet:cluster: {kind: gke}\n")
    assert run("--stacks-dir", str(stacks)).exit_code == 2


def test_policy_config_raises_lowers_and_disables_levels(tmp_path):
    stacks = fleet_with(tmp_path, **UNPRUNED)
    config = tmp_path / "levels.yaml"
    config.write_text("flux-prune: mandatory\n")
    result = run("--stacks-dir", str(stacks), "--policy-config", str(config), "--format", "json")
    assert result.exit_code == 1
    prune = [v for v in json.loads(result.stdout)["stacks"][0]["violations"] if v["policy"] == "flux-prune"]
    assert [v["level"] for v in prune] == ["mandatory"]
    config.write_text('{"flux-prune": {"enforcementLevel": "disabled"}}')  # the pack's config shape, as JSON
    result = run("--stacks-dir", str(stacks), "--policy-config", str(config), "--format", "json")
    violations = json.loads(result.stdout)["stacks"][0]["violations"]
    assert result.exit_code == 0 and [v["policy"] for v in violations] == ["flux-source-identity"]


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("flux-prnue: mandatory\n", "levels.yaml: flux-prnue: unknown policy (did you mean 'flux-prune'?)"),
        ("flux-prune: strict\n", "levels.yaml: flux-prune: 'strict': use one of mandatory, advisory, disabled"),
        ("flux-prune: {enforcementLevel: off}\n", "levels.yaml: flux-prune.enforcementLevel: 'off': use one of"),
        ("- flux-prune\n", "levels.yaml: -: a map of policy id to mandatory, advisory or disabled"),
    ],
)
def test_bad_policy_config_exits_2_naming_file_and_key(in_root, tmp_path, text, expect):
    config = tmp_path / "levels.yaml"
    config.write_text(text)
    result = run("dev", "--policy-config", str(config))
    assert result.exit_code == 2 and expect in result.stderr and "Traceback" not in result.output


def test_sarif_validates_against_the_sarif_schema_and_points_at_lines(tmp_path):
    if not SARIF_SCHEMA.exists():
        pytest.fail(f"{SARIF_SCHEMA} is absent: run `make test`, which fetches it (tests/tools/fetch_schema.py)")
    import jsonschema

    stacks = fleet_with(tmp_path, **UNPRUNED, **OUT_OF_SUPPORT)
    add_broken_stack(stacks)
    result = run("--stacks-dir", str(stacks), "--format", "sarif")
    assert result.exit_code == 2
    sarif = json.loads(result.stdout)
    schema = json.loads(SARIF_SCHEMA.read_text())
    assert list(jsonschema.Draft4Validator(schema).iter_errors(sarif)) == []
    [run_] = sarif["runs"]
    rule_ids = [rule["id"] for rule in run_["tool"]["driver"]["rules"]]
    assert len(rule_ids) == len(set(rule_ids)) and {"flux-prune", "stack-no-plaintext-secrets"} <= set(rule_ids)
    lines = (stacks / "Pulumi.dev.yaml").read_text().splitlines()
    by_rule = {r["ruleId"]: r for r in run_["results"]}
    assert rule_ids[by_rule["flux-prune"]["ruleIndex"]] == "flux-prune"
    for rule_id, key in (("flux-prune", "apps:"), ("aks-supported-version", "kubernetesVersion:")):
        location = by_rule[rule_id]["locations"][0]["physicalLocation"]
        assert sarif_file(sarif, by_rule[rule_id]) == (stacks / "Pulumi.dev.yaml").resolve()
        assert lines[location["region"]["startLine"] - 1].strip().startswith(key)
    assert by_rule["aks-supported-version"]["level"] == "error" and by_rule["flux-prune"]["level"] == "warning"
    spec_error = by_rule["stack-spec"]
    broken = (stacks / "Pulumi.broken.yaml").read_text().splitlines()
    assert "dependsOn" in broken[spec_error["locations"][0]["physicalLocation"]["region"]["startLine"] - 1]


# --- the supported Kubernetes versions: a violation in the profile that pins one, and the table's age -------------


def test_an_unsupported_version_in_a_profile_names_the_profile_key_and_window(tmp_path):
    stacks = tmp_path / "stacks"
    shutil.copytree(STACKS, stacks)
    profile = stacks / "profiles" / "aks-platform.yaml"
    profile.write_text(profile.read_text().replace('kubernetesVersion: "1.35"', 'kubernetesVersion: "1.31"'))
    result = run("--stacks-dir", str(stacks), "--format", "json")
    assert result.exit_code == 1, result.output
    [violation] = [
        v for v in json.loads(result.stdout)["profiles"]["violations"] if v["policy"] == "aks-supported-version"
    ]
    assert (violation["file"], violation["path"], violation["stacks"]) == (
        str(profile),
        "kubernetesVersion",
        ["dev", "prod-weu", "staging"],
    )
    [line] = [line for line in result.stderr.splitlines() if "aks-supported-version" in line]
    assert line.startswith(f"{profile}: mandatory [aks-supported-version] ")
    assert "'1.31' is out of support: AKS supports 1.34 to 1.37 (table of 2026-11-29)" in line
    assert "fluxfleet:cluster.kubernetesVersion" in line


STALE = AS_OF + timedelta(days=184)
NOTICE = "notice: the supported Kubernetes versions table is from 2026-11-29, more than six months old"


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_each_stale_dated_table_is_one_notice_on_stderr_and_stdout_is_unchanged(in_root, monkeypatch, fmt):
    fresh = run("dev", "--format", fmt)
    monkeypatch.setattr(kubernetes_versions, "today", lambda: STALE)
    stale = run("dev", "--format", fmt)
    assert stale.exit_code == fresh.exit_code == 0, stale.output
    assert stale.stdout == fresh.stdout
    assert NOTICE not in fresh.stderr
    assert [line for line in stale.stderr.splitlines() if line.startswith("notice:")] == [
        f"{NOTICE}: update modules/kubernetes_versions.py from "
        "https://learn.microsoft.com/azure/aks/supported-kubernetes-versions",
        # the other dated table, of the Flux extension's releases, checked the same day
        "notice: the microsoft.flux releases table is from 2026-11-29, more than six months old: update "
        "modules/flux_extension_versions.py from "
        "https://learn.microsoft.com/azure/azure-arc/kubernetes/flux-gitops-release-notes",
    ]


def test_plan_marks_what_a_change_would_destroy_from_the_options_the_program_registers(tmp_path):
    """Changing a Flux configuration's namespace or scope (or the extension's type or scope) replaces it; with prune
    on, replacing Flux deletes everything it applied. `plan` says so on those resources, and only there."""
    stack = tmp_path / "Pulumi.dev.yaml"
    shutil.copy(STANDALONE_STACKS / "Pulumi.dev.yaml", stack)
    document = json.loads(render(plan_fleet([stack], tmp_path), "json"))
    resources = {r["type"].rsplit(":", 1)[1]: r for r in document["stacks"][0]["resources"]}
    configuration = resources["FluxConfiguration"]["destructiveOnChange"]
    assert configuration == "replaced if scope, namespace change(s): that deletes everything Flux applied (prune)"
    assert resources["Extension"]["destructiveOnChange"].startswith("replaced if extensionType, scope change(s)")
    assert resources["ManagedCluster"]["destructiveOnChange"] is None
    assert "replaced if scope, namespace change(s)" in render(plan_fleet([stack], tmp_path), "text")

    stack.write_text(stack.read_text().replace("prune: true", "prune: false"))
    document = json.loads(render(plan_fleet([stack], tmp_path), "json"))
    resources = {r["type"].rsplit(":", 1)[1]: r for r in document["stacks"][0]["resources"]}
    assert resources["FluxConfiguration"]["destructiveOnChange"] == "replaced if scope, namespace change(s)"


# ------------------------------------------------------------------------------------------ node pools (issue 15)

APPS_POOL = (
    '      - {name: apps, vmSize: Standard_D8s_v5, minCount: 3, maxCount: 12, mode: User, zones: ["1", "2", "3"]}\n'
)
BATCH_POOL = '      - {name: batch, vmSize: Standard_D16s_v5, count: 2, nodeTaints: ["workload=batch:NoSchedule"]}\n'
AGENT_POOL = "azure-native:containerservice:AgentPool"


def plan_prod_weu(tmp_path: Path, old: str = "", new: str = ""):
    """The real prod-weu example (its profiles beside it), with `old` replaced by `new` in its stack file."""
    stacks = tmp_path / "stacks"
    shutil.rmtree(stacks, ignore_errors=True)
    shutil.copytree(STACKS, stacks)
    stack = stacks / "Pulumi.prod-weu.yaml"
    text = stack.read_text()
    assert old in text
    stack.write_text(text.replace(old, new, 1))
    [plan] = plan_fleet([stack], tmp_path).stacks
    assert plan.ok, plan.errors
    return plan


def by_urn(plan) -> dict:
    return {r.urn: r for r in plan.resources}


def without_pools(options: dict) -> dict:
    return {**options, "dependsOn": [urn for urn in options["dependsOn"] if f"${AGENT_POOL}::" not in urn]}


def test_a_user_pool_added_or_removed_is_an_agent_pool_create_or_delete_never_a_cluster_update(tmp_path):
    before = plan_prod_weu(tmp_path)
    added = plan_prod_weu(tmp_path, APPS_POOL, APPS_POOL + BATCH_POOL)
    removed = plan_prod_weu(tmp_path, APPS_POOL, "")
    pools = {
        name: {r.name for r in plan.resources if r.type == AGENT_POOL}
        for name, plan in (("before", before), ("added", added), ("removed", removed))
    }
    assert pools == {"before": {"apps"}, "added": {"apps", "batch"}, "removed": set()}
    for after in (added, removed):
        creates = by_urn(after).keys() - by_urn(before).keys()
        deletes = by_urn(before).keys() - by_urn(after).keys()
        assert {by_urn(after)[u].type for u in creates} | {by_urn(before)[u].type for u in deletes} == {AGENT_POOL}
        for urn in by_urn(before).keys() & by_urn(after).keys():  # the cluster, its component, Flux: unchanged
            old, new = by_urn(before)[urn], by_urn(after)[urn]
            assert (old.inputs, old.parent) == (new.inputs, new.parent), urn
            # Flux waits for the cluster component, so for its pools too: a dependency, never an input to update
            assert without_pools(old.options) == without_pools(new.options), urn
    [cluster] = [r for r in added.resources if r.type.endswith(":ManagedCluster")]
    [batch] = [r for r in added.resources if r.name == "batch"]
    assert batch.parent == cluster.parent  # the AksCluster component
    assert (batch.inputs["count"], batch.inputs["nodeTaints"]) == (2, ["workload=batch:NoSchedule"])
    # the policy rules see the same cluster: the same findings with or without the pool
    assert [str(v) for v in added.violations] == [str(v) for v in before.violations]


def test_an_existing_stack_keeps_its_cluster_and_imports_the_pools_that_were_inline(tmp_path):
    """prod-weu's state from before pools were AgentPools (tests/fixtures/pulumi): the cluster keeps its URN, its
    system pool and every other input, nothing makes a change of it a replacement; the pool that was inline is an
    AgentPool with the same properties, and `plan` prints the `pulumi import` that adopts it."""
    state = json.loads(fixture_file("pulumi", "prod-weu_cluster_before_agent_pools.json").read_text())
    plan = plan_prod_weu(tmp_path)
    [cluster] = [r for r in plan.resources if r.type == state["type"]]
    assert cluster.urn == state["urn"]
    old_pools = state["inputs"].pop("agentPoolProfiles")
    new_pools = cluster.inputs["agentPoolProfiles"]
    assert {k: v for k, v in cluster.inputs.items() if k != "agentPoolProfiles"} == state["inputs"]
    assert new_pools == old_pools[:1]  # the system pool, as it was
    assert cluster.options["protect"] is True and cluster.options["replaceOnChanges"] == []
    [apps] = [r for r in plan.resources if r.type == AGENT_POOL]
    path_parameters = ("agentPoolName", "resourceGroupName", "resourceName")
    assert {
        "name": apps.inputs["agentPoolName"],
        **{k: v for k, v in apps.inputs.items() if k not in path_parameters},
    } == old_pools[1]

    [command] = pool_import_commands(plan)
    pool_id = (
        "/subscriptions/$(az account show --query id -o tsv)/resourceGroups/rg-fleet-prod-weu/providers"
        "/Microsoft.ContainerService/managedClusters/aks-prod-weu/agentPools/apps"
    )
    component = "urn:pulumi:prod-weu::fluxfleet::fluxfleet:cluster:AksCluster::aks-prod-weu"
    assert command == (
        f"pulumi import -s prod-weu {AGENT_POOL} apps \"{pool_id}\" --parent 'cluster={component}' "
        "--protect=false --generate-code=false"
    )
    assert apps.urn == f"urn:pulumi:prod-weu::fluxfleet::fluxfleet:cluster:AksCluster${AGENT_POOL}::apps"
    assert command in render(FleetPlan([plan]), "text").replace("\n", "")


# ------------------------------------------------------------------------------------- AKS's own upgrades (issue 24)

TAGS = "    tags: {environment: production, owner: platform}\n"
MAINTENANCE = "azure-native:containerservice:MaintenanceConfiguration"


def test_plan_lists_the_maintenance_configurations_of_an_upgrade_window(tmp_path):
    upgrade = (
        "    upgrade:\n      nodeOSChannel: SecurityPatch\n"
        '      windows: [{cron: "0 22 * * 6", duration: 6h, timezone: Europe/Amsterdam}]\n'
    )
    before = plan_prod_weu(tmp_path)
    after = plan_prod_weu(tmp_path, TAGS, TAGS + upgrade)
    document = json.loads(render(FleetPlan(stacks=[after]), "json"))
    listed = {r["name"]: r for r in document["stacks"][0]["resources"] if r["type"] == MAINTENANCE}
    [component] = [r for r in after.resources if r.type == "fluxfleet:cluster:AksCluster"]
    assert set(listed) == {"aksManagedAutoUpgradeSchedule", "aksManagedNodeOSUpgradeSchedule"}
    for configuration in listed.values():
        assert configuration["parent"] == component.urn
        assert configuration["inputs"]["maintenanceWindow"] == {
            "schedule": {"weekly": {"dayOfWeek": "Saturday", "intervalWeeks": 1}},
            "startTime": "22:00",
            "utcOffset": "+01:00",
            "durationHours": 5,
        }
    text = render(FleetPlan(stacks=[after]), "text", width=200)
    assert text.count("azure-native:containerservice:MaintenanceConfiguration") == 2
    # the cluster's own inputs change only in its auto-upgrade profile
    [old], [new] = ([r for r in plan.resources if r.type.endswith(":ManagedCluster")] for plan in (before, after))
    assert {k: v for k, v in new.inputs.items() if old.inputs.get(k) != v} == {
        "autoUpgradeProfile": {"upgradeChannel": "patch", "nodeOSUpgradeChannel": "SecurityPatch"}
    }


def test_plan_refuses_a_window_aks_cannot_express_in_one_line(tmp_path):
    stacks = tmp_path / "stacks"
    shutil.copytree(STACKS, stacks)
    stack = stacks / "Pulumi.prod-weu.yaml"
    window = '    upgrade: {nodeOSChannel: NodeImage, windows: [{cron: "0 22 * * 1-4", duration: 4h}]}\n'
    stack.write_text(stack.read_text().replace(TAGS, TAGS + window, 1))
    [plan] = plan_fleet([stack], tmp_path).stacks
    [error] = map(str, plan.errors)
    assert not plan.ok and "\n" not in error
    assert error.startswith(
        "stacks/Pulumi.prod-weu.yaml: fluxfleet:cluster.upgrade.windows[0].cron: '0 22 * * 1-4': AKS "
    )
