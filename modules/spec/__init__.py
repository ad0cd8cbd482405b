"""The stack spec: everything fluxfleet reads from its users, typed and validated.

This package is the only place that validates input. Two readers produce the same `StackSpec`:
`spec_from_pulumi_config()` inside `pulumi up`, and `load_stack_file()` for the offline commands; both merge the
stack's profiles (`profiles.py`) under its own keys the same way. Shape and field formats are checked by pydantic;
rules that span fields (the kustomization graph, source credentials against the URL scheme, kind-specific cluster
keys) by rules beside the model each checks. Every problem becomes a `SpecIssue` naming the file where the value was
written (a stack file or a profile) and the config key path; all problems are reported together in one `SpecError`.

    errors.py    SpecIssue, SpecError, key paths, and how a value is shown (bounded, printable, never a secret)
    credentials.py  what a credential looks like: refused in plain text, masked in every output (one list)
    files.py     stack discovery, bounded reads of a user's files, YAML that cannot hang or exhaust the process
    fields.py    the field types and formats every model uses; SpecModel, the models' base
    findings.py  what a rule yields: a message at a key path, or a value's missing partner
    cluster.py   the cluster and its node pools, and their rules
    extension.py the Flux extension and its controllers' settings, and their rules
    kustomization.py  kustomizations, and their rules (names, paths, the dependsOn graph)
    flux_config.py    Flux configurations and their sources (git, bucket, azureBlob, oci), and their rules
    stack.py     StackSpec, the rules across its parts, and parse_spec
    profiles.py  profiles merged under a stack file, with the file each value came from
    origins.py   which file wrote each value of a merged config
    config.py    a stack's config keys by namespace
    load.py      a stack's spec from its stack file (load_stack_file) or from pulumi.Config (spec_from_pulumi_config)
    fleet.py     fleet.yaml: the rollout's stages
    policy.py    the policy levels file
"""

from modules.spec.errors import ISSUE_PART_MAX, SpecError, SpecIssue, bounded, key_path_parts, listed, printable, shown
from modules.spec.files import STACK_FILE, STACK_NAME, StackFileLines, read_text, report_name, stack_files
from modules.spec.load import (
    ROLLBACK_REFS_ENV,
    StackConfig,
    load_stack_file,
    load_stacks,
    read_stack_config,
    shared_clusters,
    spec_from_pulumi_config,
    stack_profiles,
)
from modules.spec.origins import Origins
from modules.spec.profiles import FLEET_FILE, PROFILES_DIR, ProfileLibrary
from modules.spec.fleet import Fleet, GateSpec, PinSpec, Stage, load_fleet
from modules.spec.policy import PolicyLevel, load_policy_levels
from modules.spec.fields import API_DEFAULT_INTERVAL, DURATION_MAX, dns_label_problem, parse_duration
from modules.spec.secrets import ConfigSecret, KeyVaultRef, SecretSource, key_vault_ref_from_text
from modules.spec.extension import (
    EXTENSION_SETTINGS,
    ControllersSpec,
    ExtensionSpec,
    extension_workload_identity,
    same_extension_settings,
)
from modules.spec.cluster import ClusterSpec
from modules.spec.kustomization import KustomizationSpec, dependency_problems, flux_object_name_problems
from modules.spec.flux_config import (
    AZURE_DEVOPS_HOST,
    FLUX_API_AZURE_NATIVE,
    FLUX_API_LATEST,
    GITHUB_APP_KEYS,
    AzureBlobSource,
    BucketSource,
    ConfigurationSpec,
    GitSource,
    OciSource,
    git_url_problem,
    oci_url_problem,
    repository_key,
)
from modules.spec.stack import (
    Stack,
    StackSpec,
    identity_sources,
    key_vault_refs,
    parse_spec,
)


__all__ = [
    "AZURE_DEVOPS_HOST",
    "FLUX_API_AZURE_NATIVE",
    "FLUX_API_LATEST",
    "GITHUB_APP_KEYS",
    "OciSource",
    "extension_workload_identity",
    "identity_sources",
    "oci_url_problem",
    "ROLLBACK_REFS_ENV",
    "PROFILES_DIR",
    "PinSpec",
    "Origins",
    "ProfileLibrary",
    "StackConfig",
    "read_stack_config",
    "API_DEFAULT_INTERVAL",
    "DURATION_MAX",
    "EXTENSION_SETTINGS",
    "FLEET_FILE",
    "ISSUE_PART_MAX",
    "STACK_FILE",
    "STACK_NAME",
    "AzureBlobSource",
    "BucketSource",
    "ClusterSpec",
    "ConfigSecret",
    "ConfigurationSpec",
    "ControllersSpec",
    "ExtensionSpec",
    "Fleet",
    "GateSpec",
    "GitSource",
    "KeyVaultRef",
    "KustomizationSpec",
    "PolicyLevel",
    "SecretSource",
    "SpecError",
    "SpecIssue",
    "Stack",
    "StackFileLines",
    "StackSpec",
    "Stage",
    "bounded",
    "dependency_problems",
    "dns_label_problem",
    "flux_object_name_problems",
    "git_url_problem",
    "key_path_parts",
    "key_vault_ref_from_text",
    "key_vault_refs",
    "listed",
    "load_fleet",
    "load_policy_levels",
    "load_stack_file",
    "load_stacks",
    "parse_duration",
    "parse_spec",
    "printable",
    "read_text",
    "report_name",
    "repository_key",
    "same_extension_settings",
    "shared_clusters",
    "shown",
    "spec_from_pulumi_config",
    "stack_files",
    "stack_profiles",
]
