"""`plan --format sarif` as GitHub code scanning takes it: Microsoft's SARIF multitool (tests/tools/sarif, installed
by `make test`) finds nothing in it with its default rules nor with GitHub's ingestion rules, for the example fleet
and a fleet with violations (two on one line), its stacks dir given relative or absolute; every rule documented in
docs/policies.md; one fingerprint per finding, the same from run to run."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest

from fluxfleet.plan.sarif import FINGERPRINT, POLICY_DOCS, SRCROOT
from policies.rules import RULES
from tests.conftest import ROOT, STANDALONE_STACKS
from tests.fluxfleet.plan import run
from tests.test_docs import anchors

MULTITOOL = ROOT / "tests" / "tools" / "sarif"
DEFAULT_RULES = ""  # the multitool's own: the SARIF spec's SHALLs and SHOULDs
GITHUB_RULES = "Sarif;Gh"  # those and what GitHub code scanning requires of an upload

# dev's three kustomizations as one flow mapping on one line: two flux-prune results on it
KUSTOMIZATIONS = """        kustomizations:
          infra-controllers: {path: ./infrastructure/controllers, prune: true, wait: true}
          infra-configs: {path: ./infrastructure/configs, prune: true, dependsOn: [infra-controllers]}
          apps: {path: ./apps/staging, prune: true, dependsOn: [infra-configs], retryInterval: 2m}
"""
ONE_LINE = (
    "        kustomizations: {infra: {path: ./infrastructure, prune: false}, apps: {path: ./apps, prune: false}}\n"
)


def multitool(kinds: str, *files: Path) -> list[dict]:
    """What `Sarif.Multitool validate --rule-kind KINDS` finds in the files: [{file, line, rule, level, message}]."""
    node = shutil.which("node")
    if node is None or not (MULTITOOL / "node_modules").is_dir():
        pytest.fail(
            "the SARIF multitool is not installed: run `make test`, which installs it with npm (Node.js needed)"
        )
    result = subprocess.run(
        [node, str(MULTITOOL / "validate.cjs"), kinds, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def shown(findings: list[dict]) -> str:
    return "\n".join(f"{f['file']}:{f['line']}: {f['level']} {f['rule']}: {f['message']}" for f in findings)


def violations_fleet(root: Path) -> Path:
    """dev with an unsupported Kubernetes version and two unpruned kustomizations on one line."""
    stacks = root / "violations" / "stacks"
    stacks.mkdir(parents=True)
    text = (STANDALONE_STACKS / "Pulumi.dev.yaml").read_text()
    assert KUSTOMIZATIONS in text and 'kubernetesVersion: "1.35"' in text
    text = text.replace(KUSTOMIZATIONS, ONE_LINE).replace('kubernetesVersion: "1.35"', 'kubernetesVersion: "1.20"')
    (stacks / "Pulumi.dev.yaml").write_text(text)
    return stacks


def sarif_of(stacks: str, exit_code: int) -> str:
    result = run("--stacks-dir", stacks, "--format", "sarif")
    assert result.exit_code == exit_code, result.output
    return result.stdout


@pytest.fixture
def no_github(monkeypatch):
    """Outside GitHub Actions, whatever runs the tests."""
    monkeypatch.delenv("GITHUB_SERVER_URL", raising=False)
    monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)


@pytest.fixture
def in_tmp(tmp_path, monkeypatch, no_github) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_multitool_finds_nothing_with_the_default_and_the_github_rules(tmp_path, monkeypatch, no_github):
    logs = tmp_path / "logs"
    logs.mkdir()
    monkeypatch.chdir(ROOT)  # the example fleet, as CI plans it
    (logs / "example-relative.sarif").write_text(sarif_of("stacks", 0))
    (logs / "example-absolute.sarif").write_text(sarif_of(str(ROOT / "stacks"), 0))
    monkeypatch.chdir(tmp_path)
    stacks = violations_fleet(tmp_path)
    (logs / "violations-relative.sarif").write_text(sarif_of("violations/stacks", 1))
    (logs / "violations-absolute.sarif").write_text(sarif_of(str(stacks), 1))
    files = sorted(logs.iterdir())

    # what is validated is what it should be: results, two of them on one line, absolute paths as relative ones
    violations = json.loads((logs / "violations-absolute.sarif").read_text())["runs"][0]["results"]
    prune = [r for r in violations if r["ruleId"] == "flux-prune"]
    assert len(prune) == 2 and len({r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in prune}) == 1
    example = json.loads((logs / "example-absolute.sarif").read_text())["runs"][0]["results"]
    assert example and {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in example} == {
        "stacks/Pulumi.dev.yaml",
        "stacks/Pulumi.prod-weu.yaml",
        "stacks/Pulumi.staging.yaml",
    }
    for relative, absolute in (files[0:2][::-1], files[2:4][::-1]):
        assert relative.read_text() == absolute.read_text(), (relative.name, absolute.name)

    for kinds in (DEFAULT_RULES, GITHUB_RULES):
        findings = multitool(kinds, *files)
        assert findings == [], f"--rule-kind {kinds!r}:\n{shown(findings)}"


def test_the_multitool_reports_what_github_refuses(in_tmp):
    # Proves the check above can fail, and that it runs GitHub's rules: a rule without its full description and
    # help (GH2012, GitHub's only), and a file given by an absolute path that is no URI (SARIF1004).
    stacks = violations_fleet(in_tmp)
    sarif = json.loads(sarif_of("violations/stacks", 1))
    [run_] = sarif["runs"]
    for rule in run_["tool"]["driver"]["rules"]:
        del rule["fullDescription"], rule["help"]
    location = run_["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    location["uri"] = str(stacks / "Pulumi.dev.yaml")
    del location["uriBaseId"]
    broken = in_tmp / "broken.sarif"
    broken.write_text(json.dumps(sarif, indent=2))
    default = {f["rule"] for f in multitool(DEFAULT_RULES, broken)}
    github = multitool(GITHUB_RULES, broken)
    assert "SARIF1004" in default and "GH2012" not in default
    assert {"SARIF1004", "GH2012"} <= {f["rule"] for f in github}
    missing = [f["message"] for f in github if f["rule"] == "GH2012"]
    assert len(missing) == 2 * len(run_["tool"]["driver"]["rules"]), shown(github)


def test_each_finding_has_its_own_fingerprint_the_same_from_run_to_run(in_tmp):
    stacks = violations_fleet(in_tmp)
    first = sarif_of("violations/stacks", 1)
    assert sarif_of("violations/stacks", 1) == first  # byte for byte
    assert sarif_of(str(stacks), 1) == first
    results = json.loads(first)["runs"][0]["results"]
    prints = [r["partialFingerprints"][FINGERPRINT] for r in results]
    assert len(prints) == len(set(prints)) == 4  # flux-source-identity, two flux-prune, aks-supported-version
    assert all(re.fullmatch(r"[0-9a-f]{64}", p) for p in prints)

    # lines move above the findings: the same alerts, at their new lines
    stack = stacks / "Pulumi.dev.yaml"
    stack.write_text("# moved\n# down\n" + stack.read_text())
    moved = json.loads(sarif_of("violations/stacks", 1))["runs"][0]["results"]
    assert [r["partialFingerprints"] for r in moved] == [r["partialFingerprints"] for r in results]
    lines = [r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in results]
    assert [r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in moved] == [n + 2 for n in lines]

    # another message is another finding
    stack.write_text(stack.read_text().replace('kubernetesVersion: "1.20"', 'kubernetesVersion: "1.19"'))
    changed = json.loads(sarif_of("violations/stacks", 1))["runs"][0]["results"]
    [old] = [r for r in results if r["ruleId"] == "aks-supported-version"]
    [new] = [r for r in changed if r["ruleId"] == "aks-supported-version"]
    assert new["partialFingerprints"] != old["partialFingerprints"]


def test_a_profile_finding_keeps_its_fingerprint_when_another_stack_uses_the_profile(in_tmp):
    stacks = in_tmp / "stacks"
    shutil.copytree(ROOT / "stacks", stacks)
    profile = stacks / "profiles" / "aks-platform.yaml"
    written = "infra-configs: {path: ./infrastructure/configs, prune: true"  # no stack overrides it
    profile.write_text(profile.read_text().replace(written, written.replace("true", "false")))

    def prune_result() -> dict:
        results = json.loads(sarif_of("stacks", 0))["runs"][0]["results"]
        [result] = [r for r in results if r["ruleId"] == "flux-prune"]
        return result

    before = prune_result()
    assert before["properties"]["stacks"] == ["dev", "prod-weu", "staging"]
    text = (stacks / "Pulumi.staging.yaml").read_text()
    (stacks / "Pulumi.staging-2.yaml").write_text(text.replace("aks-staging-weu", "aks-staging-weu-2"))
    after = prune_result()
    assert sorted(after["properties"]["stacks"]) == ["dev", "prod-weu", "staging", "staging-2"]
    assert after["message"] != before["message"] and after["partialFingerprints"] == before["partialFingerprints"]


def test_every_rule_has_help_and_a_section_of_the_policy_docs(in_tmp):
    violations_fleet(in_tmp)
    [run_] = json.loads(sarif_of("violations/stacks", 1))["runs"]
    rules = run_["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == ["stack-spec", *(rule.id for rule in RULES)]
    sections = anchors(ROOT / POLICY_DOCS)
    docs = " ".join((ROOT / POLICY_DOCS).read_text().split())
    base = ROOT.as_uri() + "/"  # this checkout, outside GitHub
    for rule, policy in zip(rules, [None, *RULES], strict=True):
        assert rule["fullDescription"]["text"] and rule["help"]["text"], rule["id"]
        assert rule["helpUri"] == f"{base}{POLICY_DOCS}#{rule['id']}" and rule["id"] in sections
        assert f"]({rule['helpUri']})" in rule["help"]["markdown"]
        if policy is not None:  # the docs say what the rule checks, as policies/rules.py does
            assert policy.description in docs, policy.id
            assert rule["fullDescription"]["text"].startswith(policy.description)
            assert f"{policy.level.capitalize()}" in rule["help"]["text"]
    driver = run_["tool"]["driver"]
    assert driver["version"] == driver["semanticVersion"] == version("fluxfleet")
    assert driver["informationUri"] == f"{base}README.md"


def test_on_github_the_help_links_to_the_repository(in_tmp, monkeypatch):
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "contoso/fleet")
    violations_fleet(in_tmp)
    driver = json.loads(sarif_of("violations/stacks", 1))["runs"][0]["tool"]["driver"]
    assert driver["informationUri"] == "https://github.com/contoso/fleet/blob/HEAD/README.md"
    [prune] = [r for r in driver["rules"] if r["id"] == "flux-prune"]
    assert prune["helpUri"] == "https://github.com/contoso/fleet/blob/HEAD/docs/policies.md#flux-prune"


def test_files_are_relative_to_srcroot_the_directory_plan_runs_in(in_tmp):
    stacks = violations_fleet(in_tmp)
    outside = in_tmp / "elsewhere"
    outside.mkdir()
    for cwd, expect in (
        (in_tmp, "violations/stacks/Pulumi.dev.yaml"),
        (outside, "../violations/stacks/Pulumi.dev.yaml"),
    ):
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(cwd)
            [run_] = json.loads(sarif_of(str(stacks), 1))["runs"]
        # described, never located: the same plan gives the same bytes in any checkout, on any machine
        assert set(run_["originalUriBaseIds"][SRCROOT]) == {"description"}
        for result in run_["results"]:
            location = result["locations"][0]["physicalLocation"]["artifactLocation"]
            assert location == {"uri": expect, "uriBaseId": SRCROOT}
