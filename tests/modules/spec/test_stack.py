"""modules/spec/stack.py: SSH credentials, every error of a file at once, and messages in the user's words."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from pydantic import BaseModel

from modules.spec import ConfigSecret, KeyVaultRef, SpecError, cluster, flux_config, kustomization, parse_spec, stack
from tests.modules.spec.ssh import encrypted_openssh_key, known_hosts_line, private_key, public_key
from tests.modules.test_spec import FILE, demo, errors

GIT = "fluxfleet:flux.configurations.demo.git"
NOT_KNOWN_HOSTS = "is not a known_hosts line: hosts, key type and base64 key, as `ssh-keyscan HOST` prints them"
NOT_A_KEY = "is not a private key in PEM or OpenSSH format (-----BEGIN ... PRIVATE KEY-----)"
ENCRYPTED = "is an encrypted private key: Flux needs it without a passphrase (ssh-keygen -p -N '' -f KEY)"


def ssh_git(raw: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """The demo configuration's source as an SSH one, with `fields`."""
    git = demo(raw)["git"]
    git.pop("httpsUser", None), git.pop("httpsKey", None)
    git.update(url="ssh://git@github.com/org/repo", **fields)
    return raw


# ------------------------------------------------------------------------------------------ sshKnownHosts


@pytest.mark.parametrize(
    "known_hosts",
    [
        known_hosts_line(),
        known_hosts_line("github.com,140.82.121.4", "rsa"),
        known_hosts_line("[git.example.com]:2222", "ecdsa"),
        f"# github.com\n{known_hosts_line()}\n\n@cert-authority *.example.com {public_key('rsa')}\n",
        f"|1|c2FsdA==|aGFzaA== {public_key()} comment",  # a hashed host name, a comment after the key
    ],
)
def test_known_hosts_are_taken_when_every_line_holds_a_real_key(raw, known_hosts):
    spec = parse_spec(ssh_git(raw, sshKnownHosts=known_hosts), file=FILE)
    assert spec.flux.configurations["demo"].git.ssh_known_hosts == known_hosts
    cut = known_hosts.rstrip("\n") + "\ngitlab.com ssh-ed25519 AAAAC3Nza"
    [message] = errors(ssh_git(raw, sshKnownHosts=cut))
    assert message == f"{FILE}: {GIT}.sshKnownHosts: line {len(cut.splitlines())} {NOT_KNOWN_HOSTS}"


@pytest.mark.parametrize(
    ("known_hosts", "problem"),
    [
        ("github.com ssh-ed25519 AAAAC3Nza", NOT_KNOWN_HOSTS),  # a key cut short
        (public_key(), NOT_KNOWN_HOSTS),  # no host
        ("github.com", NOT_KNOWN_HOSTS),
        (f"github.com ssh-rsa {public_key().split()[1]}", NOT_KNOWN_HOSTS),  # the type of another key
        (f"github.com ssh-ed25519 {public_key().split()[1][:-4]}!!!!", NOT_KNOWN_HOSTS),  # not base64
        (f"{known_hosts_line()}\ngitlab.com ssh-ed25519", f"line 2 {NOT_KNOWN_HOSTS}"),
        (
            "# nothing but a comment\n",
            "has no known_hosts line: hosts, key type and base64 key, as `ssh-keyscan HOST` prints them",
        ),
    ],
)
def test_known_hosts_that_are_no_known_hosts_lines_are_refused(raw, known_hosts, problem):
    assert errors(ssh_git(raw, sshKnownHosts=known_hosts)) == [f"{FILE}: {GIT}.sshKnownHosts: {problem}"]


# ------------------------------------------------------------------------------------------ sshPrivateKey


@pytest.mark.parametrize(
    ("algorithm", "fmt"),
    [("ed25519", "openssh"), ("ed25519", "pkcs8"), ("rsa", "openssh"), ("rsa", "pkcs1"), ("ecdsa", "pkcs1")],
)
def test_a_decrypted_private_key_is_taken_in_pem_or_openssh_format_without_a_passphrase(raw, algorithm, fmt):
    """Inside `pulumi up` the engine hands over the decrypted `pulumi config set --secret` value as a string."""
    key = private_key(algorithm, fmt)
    spec = parse_spec(ssh_git(raw, sshPrivateKey=key), file=FILE, plain_strings_are_secret=True)
    assert spec.flux.configurations["demo"].git.ssh_private_key == ConfigSecret(key)
    with_passphrase = private_key(algorithm, fmt, b"passphrase") if fmt != "openssh" else encrypted_openssh_key()
    messages = errors(ssh_git(raw, sshPrivateKey=with_passphrase), plain_strings_are_secret=True)
    assert messages == [f"{FILE}: {GIT}.sshPrivateKey: {ENCRYPTED}"]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        pytest.param(private_key("ed25519", "pkcs8", b"passphrase"), ENCRYPTED, id="encrypted-pkcs8"),
        pytest.param(private_key("rsa", "pkcs1", b"passphrase"), ENCRYPTED, id="encrypted-pkcs1"),
        pytest.param(encrypted_openssh_key(), ENCRYPTED, id="encrypted-openssh"),
        pytest.param(public_key(), NOT_A_KEY, id="the-public-key"),
        pytest.param(private_key()[:200], NOT_A_KEY, id="cut-short"),
        pytest.param("ghp_notAKeyButAToken0123456789", NOT_A_KEY, id="a-token"),
    ],
)
def test_a_decrypted_value_that_is_no_usable_private_key_is_refused_without_showing_it(raw, value, problem):
    messages = errors(ssh_git(raw, sshPrivateKey=value), plain_strings_are_secret=True)
    assert messages == [f"{FILE}: {GIT}.sshPrivateKey: {problem}"]
    for line in value.splitlines():  # no part of the value: each line of its body, or the token
        if len(line) >= 16 and "-----" not in line and ":" not in line:
            assert line[:16] not in messages[0]


def test_only_a_known_value_of_the_ssh_private_key_is_checked(raw):
    """`fluxfleet plan` has the ciphertext of a Pulumi secret, and a Key Vault reference is checked when it is read
    (modules/keyvault.py): neither is known to parse_spec. A decrypted value is, and so is a token in httpsKey, which
    is no SSH key and need not be one."""
    reference = {"keyVault": "kv-test", "secret": "deploy-key"}
    in_key_vault = parse_spec(ssh_git(copy.deepcopy(raw), sshPrivateKey=reference), file=FILE)
    assert in_key_vault.flux.configurations["demo"].git.ssh_private_key == KeyVaultRef("kv-test", "deploy-key")
    encrypted = parse_spec(ssh_git(copy.deepcopy(raw), sshPrivateKey={"secure": "v1:AAAA"}), file=FILE)
    assert encrypted.flux.configurations["demo"].git.ssh_private_key == ConfigSecret(None)
    configurations = raw["flux"]["configurations"]
    configurations["other"] = copy.deepcopy(configurations["demo"])
    configurations["other"]["git"]["httpsKey"] = "ghp_notAKeyButAToken0123456789"
    decrypted = ssh_git(raw, sshPrivateKey="ghp_notAKeyButAToken0123456789")
    assert errors(decrypted, plain_strings_are_secret=True) == [f"{FILE}: {GIT}.sshPrivateKey: {NOT_A_KEY}"]


# ------------------------------------------------------------------------------------------ every error at once


def test_a_shape_error_in_one_part_hides_no_rule_broken_in_another(raw):
    configurations = raw["flux"]["configurations"]
    configurations["other"] = copy.deepcopy(configurations["demo"])
    demo(raw)["git"]["bogus"] = 1  # shape: an unknown key
    configurations["other"]["kustomizations"]["apps"]["dependsOn"] = ["nope"]  # a rule across fields
    raw["cluster"]["nodePools"][0]["mode"] = "User"  # a rule of another section
    raw["flux"]["extension"] = {"version": "1.22.2"}  # and another
    assert sorted(errors(raw)) == sorted(
        [
            f"{FILE}: {GIT}.bogus: unknown key (allowed: branch, commit, githubAppID, githubAppInstallationID, "
            "githubAppPrivateKey, httpsCACert, httpsKey, httpsUser, provider, semver, sshKnownHosts, sshPrivateKey, "
            "syncInterval, tag, timeout, url)",
            f"{FILE}: fluxfleet:flux.configurations.other.kustomizations.apps.dependsOn[0]: unknown kustomization "
            "'nope' (known: apps, infra)",
            f"{FILE}: fluxfleet:cluster.nodePools: at least one node pool needs mode: System",
            f"{FILE}: fluxfleet:flux.extension.version: a pinned version needs autoUpgradeMinorVersion: false",
        ]
    )


def test_a_shape_error_hides_no_rule_broken_in_the_same_configuration(raw):
    demo(raw)["git"]["bogus"] = 1  # shape: an unknown key
    demo(raw)["kustomizations"]["infra"]["prune"] = "maybe"  # shape: no boolean
    demo(raw)["kustomizations"]["apps"]["dependsOn"] = ["infrr"]  # a rule across the configuration's fields
    assert errors(raw) == [
        f"{FILE}: {GIT}.bogus: unknown key (allowed: branch, commit, githubAppID, githubAppInstallationID, "
        "githubAppPrivateKey, httpsCACert, httpsKey, httpsUser, provider, semver, sshKnownHosts, sshPrivateKey, "
        "syncInterval, tag, timeout, url)",
        f"{FILE}: fluxfleet:flux.configurations.demo.kustomizations.infra.prune: Input should be a valid boolean",
        f"{FILE}: fluxfleet:flux.configurations.demo.kustomizations.apps.dependsOn[0]: unknown kustomization "
        "'infrr' (known: apps, infra)",
    ]


@pytest.mark.parametrize(
    ("where", "value", "expect"),
    [
        # the ref refused: no "set exactly one of branch, ..." about the source it belongs to
        (("flux", "configurations", "demo", "git", "branch"), 7, "git.branch: Input should be a valid string"),
        # a kustomization refused whole: another's dependsOn on it is no "unknown kustomization"
        (("flux", "configurations", "demo", "kustomizations", "infra"), 5, "kustomizations.infra: Input should be"),
        # a list item refused: no "needs at least one node pool"
        (("cluster", "nodePools", 0, "vmSize"), 5, "fluxfleet:cluster.nodePools[0].vmSize: Input should be"),
        # a required key refused: no rule about the source without it
        (("flux", "configurations", "demo", "git", "url"), ["x"], "git.url: Input should be a valid string"),
        # a value refused beside one a rule reads: its default (true) is no reason for "needs ...: false"
        (
            ("flux", "extension"),
            {"version": "1.22.2", "autoUpgradeMinorVersion": "x"},
            "autoUpgradeMinorVersion: Input should be a valid boolean",
        ),
    ],
)
def test_a_refused_value_raises_no_rule_about_its_absence(raw, where, value, expect):
    target = raw
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    [message] = errors(raw)
    assert expect in message


def test_a_pair_written_in_two_files_names_both_and_where_the_missing_value_goes(raw):
    from modules.spec.origins import Origins

    origins = Origins(FILE)  # the profile wrote the configuration's source, the stack file the rest
    profile = "stacks/profiles/p.yaml"
    git = Origins(profile)
    git.keys.update(url=Origins(profile), branch=Origins(profile), httpsUser=Origins(profile))
    origins.keys["flux"] = Origins(FILE)
    origins.keys["flux"].keys["configurations"] = Origins(FILE)
    origins.keys["flux"].keys["configurations"].keys["demo"] = Origins(FILE)
    origins.keys["flux"].keys["configurations"].keys["demo"].keys["git"] = git
    del demo(raw)["git"]["httpsKey"]
    with pytest.raises(SpecError) as caught:
        parse_spec(raw, file=FILE, origins=origins)
    assert [str(issue) for issue in caught.value.issues] == [
        f"{FILE}: {GIT}.httpsKey: httpsUser is set in {profile} ({GIT}.httpsUser) but httpsKey is missing: add it "
        f"to {FILE} under {GIT}.httpsKey (httpsUser and httpsKey go together)"
    ]
    assert errors(raw) == [f"{FILE}: {GIT}.httpsKey: httpsUser and httpsKey go together"]  # one file: as before


def test_a_refused_cluster_hides_no_rule_of_the_configurations(raw):
    raw["cluster"]["kind"] = "eks"
    demo(raw)["kustomizations"]["apps"]["dependsOn"] = ["apps"]
    assert errors(raw) == [
        f"{FILE}: fluxfleet:cluster.kind: Input should be 'aks' or 'arc' (got 'eks')",
        f"{FILE}: fluxfleet:flux.configurations.demo.kustomizations.apps.dependsOn[0]: a kustomization cannot "
        "depend on itself",
    ]


def test_shape_errors_and_a_bad_private_key_are_reported_together(raw):
    ssh_git(raw, sshPrivateKey="not a key")
    raw["cluster"]["name"] = 7
    assert errors(raw, plain_strings_are_secret=True) == [
        f"{FILE}: fluxfleet:cluster.name: Input should be a valid string",
        f"{FILE}: {GIT}.sshPrivateKey: {NOT_A_KEY}",
    ]


# ------------------------------------------------------------------------------------------ messages name no class


def full_stack() -> dict[str, Any]:
    """A valid stack that sets every key of every model once."""
    kv = {"keyVault": "kv-test", "secret": "a-secret"}
    return {
        "cluster": {
            "kind": "aks",
            "name": "aks-test",
            "resourceGroup": "rg-test",
            "location": "westeurope",
            "subscriptionId": "00000000-0000-0000-0000-000000000001",
            "kubernetesVersion": "1.31",
            "nodePools": [
                {"name": "system", "vmSize": "Standard_D4s_v5", "minCount": 1, "maxCount": 3, "mode": "System"},
                {"name": "user", "vmSize": "Standard_D4s_v5", "count": 2, "zones": ["1", "2"]},
            ],
            "dnsPrefix": "aks-test",
            "aadAdminGroupObjectIds": ["00000000-0000-0000-0000-000000000002"],
            "networkPlugin": "azure",
            "networkPolicy": "cilium",
            "autoUpgradeChannel": "stable",
            "authorizedIpRanges": ["203.0.113.0/24"],
            "privateCluster": False,
            "tags": {"env": "test"},
            "disableLocalAccounts": True,
            "protect": True,
        },
        "providers": list(stack.REQUIRED_PROVIDERS),
        "features": ["Microsoft.ContainerService/AKS-Preview"],
        "flux": {
            "extension": {
                "releaseTrain": "Stable",
                "autoUpgradeMinorVersion": False,
                "version": "1.22.2",
                "controllers": {
                    "source": {"enabled": True},
                    "kustomize": {"enabled": True, "concurrent": 6, "requeueDependency": "50s"},
                    "helm": {"enabled": False},
                    "notification": {"enabled": True},
                    "imageAutomation": {"enabled": True},
                    "imageReflector": {"enabled": True},
                    "multiTenancy": {"enforce": True},
                    "workloadIdentity": {"enable": True, "azureClientId": "00000000-0000-0000-0000-000000000004"},
                    "useKubeletIdentity": False,
                },
                "settings": {"a": "b"},
                "protectedSettings": {"token": kv},
            },
            "configurations": {
                "viagit": {
                    "namespace": "flux-system",
                    "scope": "cluster",
                    "suspend": False,
                    "waitForReconciliation": True,
                    "reconciliationWaitDuration": "PT5M",
                    "git": {
                        "url": "ssh://git@github.com/org/repo",
                        "branch": "main",
                        "sshPrivateKey": kv,
                        "sshKnownHosts": known_hosts_line(),
                        "syncInterval": "5m",
                        "timeout": "5m",
                        "provider": "Generic",
                    },
                    "kustomizations": {
                        "infra": {"path": "./infra"},
                        "apps": {
                            "path": "./apps",
                            "dependsOn": ["infra"],
                            "prune": True,
                            "force": False,
                            "wait": True,
                            "retryInterval": "1m",
                            "postBuild": {
                                "substitute": {"cluster": "aks-test"},
                                "substituteFrom": [{"kind": "ConfigMap", "name": "vars", "optional": True}],
                            },
                        },
                    },
                },
                "viahttps": {
                    "git": {
                        "url": "https://github.com/org/repo",
                        "tag": "v1.0.0",
                        "httpsUser": "git",
                        "httpsKey": kv,
                        "httpsCACert": "-----BEGIN CERTIFICATE-----",
                    },
                    "kustomizations": {"apps": {}},
                },
                "viabucket": {
                    "bucket": {
                        "url": "https://minio.example.com",
                        "bucketName": "b",
                        "accessKey": "a",
                        "secretKey": kv,
                    },
                    "kustomizations": {"apps": {}},
                },
                "viablob": {
                    "azureBlob": {
                        "url": "https://account.blob.core.windows.net",
                        "containerName": "c",
                        "managedIdentity": {"clientId": "00000000-0000-0000-0000-000000000003"},
                    },
                    "kustomizations": {"apps": {}},
                },
            },
        },
    }


def every_key(value: Any, loc: tuple = ()) -> list[tuple]:
    """The key path of every value below `value`, maps and lists included."""
    found = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found += [(*loc, key), *every_key(item, (*loc, key))]
    return found


def at(document: Any, loc: tuple) -> Any:
    for key in loc:
        document = document[key]
    return document


def replaced(document: dict[str, Any], loc: tuple, value: Any) -> dict[str, Any]:
    document = copy.deepcopy(document)
    at(document, loc[:-1])[loc[-1]] = value
    return document


def removed(document: dict[str, Any], loc: tuple) -> dict[str, Any]:
    document = copy.deepcopy(document)
    del at(document, loc[:-1])[loc[-1]]
    return document


def all_messages(document: dict[str, Any], **parse: Any) -> list[str]:
    try:
        parse_spec(document, file=FILE, **parse)
    except stack.SpecError as error:
        return [issue.message for issue in error.issues]
    return []


MODEL_CLASSES = sorted(
    {
        item.__name__
        for module in (stack, cluster, flux_config, kustomization)
        for item in vars(module).values()
        if isinstance(item, type) and (issubclass(item, BaseModel) or item in (KeyVaultRef, ConfigSecret))
    }
)


def test_no_message_names_a_class_of_the_spec():
    """A user wrote YAML: no message says `ConfigurationSpec` or `GitSource`. Every key of a stack that sets every
    key is, in turn, of a wrong type (a number, a string, a list, a map, null), missing, or given an unknown key
    beside it, and rules across fields are broken too."""
    assert {"StackSpec", "ConfigurationSpec", "GitSource", "NodePool", "KeyVaultRef"} <= set(MODEL_CLASSES)
    full = full_stack()
    assert all_messages(full) == []
    messages: set[str] = set()
    for loc in every_key(full):
        for wrong in (7, True, "x", [1], {"unknownKey": 1}, None, {"secure": "v1:x"}):
            messages.update(all_messages(replaced(full, loc, wrong)))
        if isinstance(loc[-1], str):
            messages.update(all_messages(removed(full, loc)))
    for loc in [(), *every_key(full)]:
        if isinstance(at(full, loc), dict):
            messages.update(all_messages(replaced(full, (*loc, "unknownKey"), 1)))
    rules = copy.deepcopy(full)
    rules["flux"]["configurations"]["viagit"]["bucket"] = rules["flux"]["configurations"]["viabucket"]["bucket"]
    rules["cluster"]["nodePools"][0]["count"] = 3
    rules["flux"]["extension"]["autoUpgradeMinorVersion"] = True
    messages.update(all_messages(rules))
    assert len(messages) > 50  # the edits above really produced errors of many kinds
    named = re.compile(r"\b(" + "|".join(map(re.escape, MODEL_CLASSES)) + r")\b")
    assert [message for message in sorted(messages) if named.search(message)] == []


# ------------------------------------------------------------------------------------------ digit names


def test_a_configuration_named_with_digits_is_a_key_not_a_list_index(raw):
    configurations = raw["flux"]["configurations"]
    configurations["1"] = configurations.pop("demo")
    configurations["1"]["git"]["bogus"] = 1
    configurations[2] = copy.deepcopy(configurations["1"])  # as YAML reads `2:`, unquoted
    messages = errors(raw)
    assert f"{FILE}: fluxfleet:flux.configurations.2: a key must be text: write it in quotes" in messages
    assert [m.split(": ")[1] for m in messages if "bogus" in m] == [
        "fluxfleet:flux.configurations.1.git.bogus",
        "fluxfleet:flux.configurations.2.git.bogus",
    ]
    assert not any("[" in message.split(": ")[1] for message in messages)


def test_a_stacks_own_deployment_windows_are_its_fluxfleet_windows_key(raw):
    raw["windows"] = [{"cron": "0 2 * * 6", "duration": "3h", "timezone": "Europe/Amsterdam"}]
    [window] = parse_spec(raw, file=FILE).windows
    assert str(window) == "0 2 * * 6 for 3h (Europe/Amsterdam)"
    raw["windows"] = [{"cron": "0 2 * * 6", "duration": "3h", "timezone": "Mars/Olympus"}]
    assert errors(raw) == [
        f"{FILE}: fluxfleet:windows[0].timezone: 'Mars/Olympus' is not an IANA time zone such as Europe/Amsterdam or UTC"
    ]
