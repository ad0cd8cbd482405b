"""A Flux configuration (`flux.configurations.NAME`) and its source (git, bucket, azureBlob or oci): the models, and
the rules on each source's URL, ref and credentials, which Flux configuration API a configuration needs, and the names
Flux gives the kustomizations of all configurations together."""

from __future__ import annotations

import graphlib
import re
from collections.abc import Iterator, Mapping
from typing import Annotated, Literal

from pydantic import Field
from pydantic.alias_generators import to_camel

from modules.spec.errors import Loc, shown
from modules.spec.fields import (
    DNS_SUBDOMAIN,
    DnsLabel,
    Guid,
    IsoDuration,
    KnownHosts,
    Line,
    Reconciled,
    SpecModel,
    Text,
    dns_label_problem,
    pattern,
)
from modules.spec.findings import Finding, Partner
from modules.spec.kustomization import KustomizationSpec, kustomization_issues
from modules.spec.secrets import SecretField


FLUX_API_AZURE_NATIVE = "2023-05-01"  # the fluxConfigurations API pulumi-azure-native 3.x sends
FLUX_API_LATEST = "2025-04-01"  # the one modules/flux_configuration_v2025.py sends (OCI sources, git providers)


# --------------------------------------------------------------------------------------------- models


GIT_REF_KEYS = ("branch", "tag", "semver", "commit")  # the keys a git source's ref is written with
OCI_REF_KEYS = ("tag", "semver", "digest")  # and an OCI source's
# The sources a ref can be pinned (a stage pin) or returned to (a rollback) on, with the keys of their ref.
REF_KEYS = {"git": GIT_REF_KEYS, "oci": OCI_REF_KEYS}
GitHubAppNumber = Annotated[int, Field(ge=1)]  # a GitHub App's ID, an installation's ID


class GitSource(Reconciled):
    url: Line
    branch: Line | None = None
    tag: Line | None = None
    semver: Line | None = None
    commit: Annotated[str, pattern(r"[0-9a-f]{7,40}", "a commit SHA (7-40 hex characters)")] | None = None
    https_user: Line | None = None
    https_key: SecretField | None = None
    ssh_private_key: SecretField | None = None
    ssh_known_hosts: KnownHosts | None = None
    https_ca_cert: Text | None = Field(default=None, alias="httpsCACert")
    provider: Literal["Generic", "Azure", "GitHub"] | None = None
    # A GitHub App (provider: GitHub). The 2025-04-01 API has no body fields for it: the program sends the three as
    # protected settings, under the keys Flux's GitHub App secret takes, which are also their names here.
    github_app_id: GitHubAppNumber | None = Field(default=None, alias="githubAppID")
    github_app_installation_id: GitHubAppNumber | None = Field(default=None, alias="githubAppInstallationID")
    github_app_private_key: SecretField | None = Field(default=None, alias="githubAppPrivateKey")

    @property
    def is_ssh(self) -> bool:
        return self.url.startswith(("ssh://", "git@"))

    @property
    def ref_keys(self) -> dict[str, str]:
        """The ref as the keys it is written with (`{"tag": "v1.0.0"}`, `{"commit": ..., "branch": ...}`)."""
        return {key: value for key in GIT_REF_KEYS if (value := getattr(self, key))}

    @property
    def ref(self) -> str | None:
        """What the source tracks, as people say it: `tag v1.0.0`, `commit 0ba6f0d`, `semver >=1.0`, `branch main`."""
        for what in ("commit", "tag", "semver", "branch"):
            if value := getattr(self, what):
                return f"{what} {value}"
        return None


class BucketSource(Reconciled):
    url: Line
    bucket_name: Line
    access_key: Line | None = None
    secret_key: SecretField | None = None
    insecure: bool = False  # the API's default is true; fluxfleet's is TLS


class ManagedIdentity(SpecModel):
    client_id: Guid


class AzureBlobSource(Reconciled):
    url: Line
    container_name: Line
    account_key: SecretField | None = None
    sas_token: SecretField | None = None
    managed_identity: ManagedIdentity | None = None


OCI_DIGEST = r"sha256:[0-9a-f]{64}"
# A key of a Kubernetes Secret's data (the verification keys become one): letters, digits, '-', '_' and '.'.
SecretDataKey = Annotated[
    str, pattern(r"[-._a-zA-Z0-9]{1,253}", "a key name (1-253 letters, digits, '-', '_' or '.', such as cosign.pub)")
]


class MatchOidcIdentity(SpecModel):
    """Who may have signed an artifact (cosign keyless): regular expressions over the signing certificate's OIDC
    issuer and subject."""

    issuer: Line
    subject: Line


class OciVerify(SpecModel):
    provider: Literal["cosign", "notation"]
    verification_config: dict[SecretDataKey, SecretField] = {}  # trusted public keys or certificates, by file name
    match_oidc_identity: list[MatchOidcIdentity] = []


class OciTlsConfig(SpecModel):
    client_certificate: SecretField | None = None
    private_key: SecretField | None = None
    ca_certificate: SecretField | None = None


class OciSource(Reconciled):
    """An OCI artifact (`ociRepository` of the 2025-04-01 API)."""

    url: Line
    tag: Line | None = None
    semver: Line | None = None
    digest: Annotated[str, pattern(OCI_DIGEST, "an artifact digest (sha256: and 64 lower-case hex)")] | None = None
    insecure: bool = False  # plain HTTP to the registry; a policy violation (flux-oci-verified)
    use_workload_identity: bool = False
    service_account_name: Annotated[str, pattern(DNS_SUBDOMAIN.pattern, "a Kubernetes object name")] | None = None
    verify: OciVerify | None = None
    tls_config: OciTlsConfig | None = None

    @property
    def ref_keys(self) -> dict[str, str]:
        """The ref as the keys it is written with (`{"tag": "v1.0.0"}`, `{"digest": "sha256:..."}`)."""
        return {key: value for key in OCI_REF_KEYS if (value := getattr(self, key))}

    @property
    def ref(self) -> str | None:
        """What the source tracks: `digest sha256:...`, `semver >=1.0`, `tag v1.0.0`."""
        for what in ("digest", "semver", "tag"):
            if value := getattr(self, what):
                return f"{what} {value}"
        return None


class ConfigurationSpec(SpecModel):
    namespace: DnsLabel = "flux-system"
    scope: Literal["cluster", "namespace"] = "cluster"
    suspend: bool = False
    wait_for_reconciliation: bool | None = None
    reconciliation_wait_duration: IsoDuration | None = None
    git: GitSource | None = None
    bucket: BucketSource | None = None
    azure_blob: AzureBlobSource | None = None
    oci: OciSource | None = None
    kustomizations: dict[str, KustomizationSpec]
    # Take over the live Flux configuration of this name on the cluster (one the azure-native resource created) when
    # the configuration moves to the 2025-04-01 resource; without it that resource refuses to (README: Migrating).
    adopt_live_configuration: bool = False

    @property
    def source_kind(self) -> Literal["GitRepository", "Bucket", "AzureBlob", "OCIRepository"]:
        if self.git:
            return "GitRepository"
        return "Bucket" if self.bucket else "AzureBlob" if self.azure_blob else "OCIRepository"

    @property
    def newer_api_needs(self) -> list[str]:
        """What this configuration uses that the Flux configuration API pulumi-azure-native sends (2023-05-01) cannot
        express; empty when it can."""
        needs = ["an oci source"] if self.oci else []
        if self.git and self.git.provider in ("Azure", "GitHub"):
            needs.append(f"git provider {self.git.provider}")
        return needs

    @property
    def flux_api(self) -> str:
        """The Flux configuration API the program declares this configuration at: 2023-05-01 through azure-native's
        resource while that API can express it, else 2025-04-01 through fluxfleet's own."""
        return FLUX_API_LATEST if self.newer_api_needs else FLUX_API_AZURE_NATIVE

    def kustomization_order(self) -> list[str]:
        """Kustomization names, each after the ones it depends on (validated acyclic)."""
        sorter = graphlib.TopologicalSorter({name: k.depends_on for name, k in sorted(self.kustomizations.items())})
        return list(sorter.static_order())


# --------------------------------------------------------------------------------------------- cross-field rules


def configuration_issues(loc: Loc, name: str, configuration: ConfigurationSpec) -> Iterator[Finding]:
    if problem := dns_label_problem(name):
        yield loc, f"configuration name {problem}"
    sources = [key for key in ("git", "bucket", "azure_blob", "oci") if getattr(configuration, key) is not None]
    if len(sources) != 1:
        found = ", ".join(to_camel(s) for s in sources) or "none"
        yield loc, f"set exactly one source: git, bucket, azureBlob or oci (found: {found})"
    if configuration.reconciliation_wait_duration and not configuration.wait_for_reconciliation:
        yield (*loc, "reconciliationWaitDuration"), "only with waitForReconciliation: true"
    if configuration.adopt_live_configuration and not configuration.newer_api_needs:
        message = (
            f"only for a configuration on the {FLUX_API_LATEST} resource (an oci source, git provider Azure or "
            f"GitHub): this one stays on azure-native's ({FLUX_API_AZURE_NATIVE}), which never takes over a live one"
        )
        yield (*loc, "adoptLiveConfiguration"), message
    if configuration.git:
        yield from _git_issues((*loc, "git"), configuration.git)
    if configuration.bucket:
        yield from _bucket_issues((*loc, "bucket"), configuration.bucket)
    if configuration.azure_blob:
        yield from _blob_issues((*loc, "azureBlob"), configuration.azure_blob)
    if configuration.oci:
        yield from _oci_issues((*loc, "oci"), configuration.oci)
    for key in sources:
        if problem := getattr(configuration, key).timeout_issue():
            yield (*loc, to_camel(key), "timeout"), problem
    yield from kustomization_issues((*loc, "kustomizations"), name, configuration.kustomizations)


def _git_issues(loc: Loc, git: GitSource) -> Iterator[Finding]:
    url_problem = git_url_problem(git.url)
    if url_problem:
        yield (*loc, "url"), url_problem
    refs = [key for key in ("branch", "tag", "semver", "commit") if getattr(git, key) is not None]
    if git.commit is not None:
        if refs != ["branch", "commit"]:
            yield loc, "a commit is pinned together with its branch and nothing else (branch + commit)"
    elif len(refs) != 1:
        yield loc, f"set exactly one of branch, tag, semver or commit (found: {', '.join(refs) or 'none'})"
    if git.is_ssh:
        for key in ("https_user", "https_key", "https_ca_cert"):
            if getattr(git, key) is not None:
                yield (*loc, "httpsCACert" if key == "https_ca_cert" else to_camel(key)), "only with an https:// URL"
    else:
        for key in ("ssh_private_key", "ssh_known_hosts"):
            if getattr(git, key) is not None:
                yield (*loc, to_camel(key)), "only with an ssh:// or git@ URL"
        if (git.https_user is None) != (git.https_key is None):
            present, missing = ("httpsUser", "httpsKey") if git.https_key is None else ("httpsKey", "httpsUser")
            yield (*loc, missing), Partner((*loc, present), "httpsUser and httpsKey go together")
    yield from _git_provider_issues(loc, git)


# Azure DevOps, the only git host `provider: Azure` authenticates to (workload identity): the 2025-04-01 API's words.
AZURE_DEVOPS_HOST = re.compile(r"(dev\.azure\.com|[a-z0-9-]+\.visualstudio\.com)", re.IGNORECASE)
# A GitHub App's fields and their keys (in the stack file and in the protected settings the program sends).
GITHUB_APP_KEYS = {
    "github_app_id": "githubAppID",
    "github_app_installation_id": "githubAppInstallationID",
    "github_app_private_key": "githubAppPrivateKey",
}


def _git_provider_issues(loc: Loc, git: GitSource) -> Iterator[Finding]:
    """`provider: Azure` authenticates as the Flux extension's workload identity, `provider: GitHub` as a GitHub App:
    neither goes with a key of its own (httpsKey, sshPrivateKey), and the App's keys go with GitHub only."""
    app = {key: getattr(git, key) for key in GITHUB_APP_KEYS}
    app_keys = [GITHUB_APP_KEYS[key] for key, value in app.items() if value is not None]
    if git.provider in ("Azure", "GitHub"):
        if not git.url.startswith("https://"):
            yield (*loc, "url"), f"provider {git.provider} fetches over https://: use the repository's https:// URL"
        for key in ("https_user", "https_key", "ssh_private_key", "ssh_known_hosts"):
            if getattr(git, key) is not None:
                yield (*loc, to_camel(key)), f"provider {git.provider} authenticates without it: remove it"
    if git.provider == "Azure":
        host = git.url.removeprefix("https://").split("/", 1)[0]
        if git.url.startswith("https://") and not AZURE_DEVOPS_HOST.fullmatch(host):
            message = (
                f"provider Azure authenticates to Azure DevOps (dev.azure.com), not {shown(host)}: "
                "use provider GitHub for GitHub, Generic for other hosts"
            )
            yield (*loc, "url"), message
        for key in app_keys:
            yield (*loc, key), "a GitHub App's key: only with provider: GitHub"
    elif git.provider == "GitHub":
        required = "required with provider: GitHub (the GitHub App's ID, installation ID and private key)"
        for key, value in app.items():
            if value is None:
                yield (*loc, GITHUB_APP_KEYS[key]), Partner((*loc, "provider"), required)
    else:
        for key in app_keys:
            yield (*loc, key), "a GitHub App's key: only with provider: GitHub"


def oci_url_problem(url: str) -> str | None:
    """What is wrong with an OCI repository URL, if anything: `oci://REGISTRY/REPOSITORY`, without credentials, a tag
    or a digest (those are keys of their own)."""
    if not url.startswith("oci://"):
        return "the URL must start with oci:// (oci://REGISTRY/REPOSITORY)"
    authority, _, path = url[len("oci://") :].partition("/")
    if "@" in authority:
        return "credentials inside the URL: use useWorkloadIdentity, or serviceAccountName with its image pull secret"
    if not authority or not path.strip("/"):
        return "an oci:// URL needs a registry host and a repository path"
    if "@" in path or ":" in path.rsplit("/", 1)[-1]:
        return "a tag or digest inside the URL: set tag, semver or digest instead"
    return None


COSIGN_KEY_SUFFIX = ".pub"  # Flux's cosign verification takes the keys of its secret that end so
NOTATION_TRUST_POLICY = "trustpolicy.json"  # and notation its trust policy, with certificates (.crt, .pem)
NOTATION_CERT_SUFFIXES = (".crt", ".pem")


def _oci_issues(loc: Loc, oci: OciSource) -> Iterator[Finding]:
    if problem := oci_url_problem(oci.url):
        yield (*loc, "url"), problem
    refs = [key for key in ("tag", "semver", "digest") if getattr(oci, key) is not None]
    if len(refs) != 1:
        yield loc, f"set exactly one of tag, semver or digest (found: {', '.join(refs) or 'none'})"
    if oci.tls_config is not None:
        tls = oci.tls_config
        if oci.insecure:
            yield (*loc, "insecure"), "insecure: true is plain HTTP: it cannot go with tlsConfig"
        if (tls.client_certificate is None) != (tls.private_key is None):
            present, missing = (
                ("clientCertificate", "privateKey") if tls.private_key is None else ("privateKey", "clientCertificate")
            )
            rule = "clientCertificate and privateKey go together"
            yield (*loc, "tlsConfig", missing), Partner((*loc, "tlsConfig", present), rule)
        if tls.client_certificate is None and tls.private_key is None and tls.ca_certificate is None:
            yield (*loc, "tlsConfig"), "set clientCertificate with privateKey, caCertificate, or both"
    if oci.verify is not None:
        yield from _verify_issues((*loc, "verify"), oci.verify)


def _verify_issues(loc: Loc, verify: OciVerify) -> Iterator[tuple[Loc, str]]:
    keys = list(verify.verification_config)
    if verify.provider == "cosign":
        for key in keys:
            if not key.endswith(COSIGN_KEY_SUFFIX):
                yield (*loc, "verificationConfig", key), f"a cosign public key's name ends in {COSIGN_KEY_SUFFIX}"
        if not keys and not verify.match_oidc_identity:
            message = (
                "say whose signatures count: verificationConfig (cosign public keys) or matchOidcIdentity (keyless); "
                "keyless without it accepts any signer"
            )
            yield loc, message
    else:
        if verify.match_oidc_identity:
            yield (*loc, "matchOidcIdentity"), "only with provider: cosign (keyless verification)"
        if NOTATION_TRUST_POLICY not in keys or not any(key.endswith(NOTATION_CERT_SUFFIXES) for key in keys):
            message = f"notation needs {NOTATION_TRUST_POLICY} and at least one certificate (.crt or .pem)"
            yield (*loc, "verificationConfig"), message
    unanchored = "anchor the expression with ^ and $: unanchored, it also matches identities you did not mean"
    for index, identity in enumerate(verify.match_oidc_identity):
        for key in ("issuer", "subject"):
            expression = getattr(identity, key)
            if not (expression.startswith("^") and expression.endswith("$")):
                yield (*loc, "matchOidcIdentity", index, key), unanchored


def git_url_problem(url: str) -> str | None:
    if url.startswith("http://"):
        return "http:// sends the repository and its credentials unencrypted: use https:// or ssh://"
    if url.startswith("https://"):
        authority = url[len("https://") :].split("/", 1)[0]
        if "@" in authority:
            return "credentials inside the URL: put the user in httpsUser and the key in httpsKey"
        if not authority or "/" not in url[len("https://") :]:
            return "an https:// URL needs a host and a repository path"
        return None
    if url.startswith("ssh://"):
        authority = url[len("ssh://") :].split("/", 1)[0]
        if ":" in authority.split("@", 1)[0] and "@" in authority:
            return "a password inside the URL: use sshPrivateKey"
        return None if authority and "/" in url[len("ssh://") :] else "an ssh:// URL needs a host and a repository path"
    if re.fullmatch(r"git@[A-Za-z0-9.-]+:[^\s]+", url):
        return None
    return "the URL must start with https://, ssh:// or git@"


def _bucket_issues(loc: Loc, bucket: BucketSource) -> Iterator[Finding]:
    if bucket.url.startswith("http://"):
        if not bucket.insecure:
            yield (*loc, "url"), "an http:// endpoint needs insecure: true; prefer https://"
    elif not bucket.url.startswith("https://"):
        yield (*loc, "url"), "the URL must start with https://"
    if "@" in bucket.url.split("://", 1)[-1].split("/", 1)[0]:
        yield (*loc, "url"), "credentials inside the URL: use accessKey and secretKey"
    if (bucket.access_key is None) != (bucket.secret_key is None):
        present, missing = ("accessKey", "secretKey") if bucket.secret_key is None else ("secretKey", "accessKey")
        yield (*loc, missing), Partner((*loc, present), "accessKey and secretKey go together")


def _blob_issues(loc: Loc, blob: AzureBlobSource) -> Iterator[tuple[Loc, str]]:
    if not blob.url.startswith("https://"):
        yield (*loc, "url"), "the URL must start with https://"
    elif "?" in blob.url or "@" in blob.url:
        yield (*loc, "url"), "credentials inside the URL: use sasToken or accountKey"
    auth = [key for key in ("account_key", "sas_token", "managed_identity") if getattr(blob, key) is not None]
    if len(auth) > 1:
        yield loc, f"set at most one of accountKey, sasToken, managedIdentity (found: {', '.join(map(to_camel, auth))})"


def flux_object_collisions(configurations: Mapping[str, ConfigurationSpec]) -> Iterator[tuple[Loc, str]]:
    """Two kustomizations that Flux would create under one name in one namespace (`a-b` + `c` and `a` + `b-c` are
    both `a-b-c`): the second would overwrite the first on the cluster."""
    first: dict[tuple[str, str], tuple[str, str]] = {}
    for name, configuration in configurations.items():
        for kustomization in configuration.kustomizations:
            key = (configuration.namespace, f"{name}-{kustomization}")
            if key in first:
                other = "kustomization {1} of configuration {0}".format(*first[key])
                message = f"Flux names it {key[1]!r} in namespace {key[0]}, as it names {other}: rename one"
                yield ("flux", "configurations", name, "kustomizations", kustomization), message
            else:
                first[key] = (name, kustomization)


def repository_key(url: str) -> str:
    """One name for a repository however it is addressed: `https://github.com/o/r`, `ssh://git@github.com/o/r.git`
    and `git@github.com:o/r` are all `github.com/o/r`."""
    text = re.sub(r"^(https://|ssh://)", "", url.strip())
    if re.match(r"^[^/@:]+@[^/:]+:", text):  # scp-like git@host:path
        text = text.replace(":", "/", 1)
    text = text.split("@", 1)[-1] if "@" in text.split("/", 1)[0] else text
    return text.removesuffix("/").removesuffix(".git").lower()
