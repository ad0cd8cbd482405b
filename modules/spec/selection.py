"""What `fluxfleet inventory` is asked to look at: the `--select` expression as a typed `Selection`, the
`--subscription` ids, and the `--profile` that new stacks use. Every mistake is a SpecError naming the option and
the term, in one line.

The expression is terms separated by spaces (quote a value that holds one: `tag:"cost center"=retail`):

    kind:aks | kind:arc           the kind of cluster
    rg:NAME                       the resource group (any case)
    location:REGION               the Azure region, such as westeurope (any case; "West Europe" too)
    tag:KEY=VALUE                 a tag: KEY exactly, VALUE exactly (case matters, as Azure keeps it)

Terms of different keys (and tags of different KEYs) must all hold; the same key given twice means either value
(`kind:aks kind:arc`, `tag:fleet=stores tag:fleet=kiosks`). A `*` in a value matches any run of characters
(`rg:rg-stores-*`, `tag:fleet=*`).
"""

from __future__ import annotations

import difflib
import functools
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from modules.spec.errors import UNPRINTABLE, SpecError, SpecIssue, printable, shown
from modules.spec.profiles import PROFILE_NAME, PROFILE_NAME_RULE, ProfileLibrary
from modules.spec.fields import GUID

KEYS = ("kind", "rg", "location", "tag")
KINDS = ("aks", "arc")
# Words people reach for, to suggest the key they meant (never accepted as keys themselves).
_MEANT = {
    "resourcegroup": "rg",
    "resource-group": "rg",
    "resource_group": "rg",
    "group": "rg",
    "region": "location",
    "loc": "location",
    "type": "kind",
    "tags": "tag",
}
TAG_KEY_MAX = 512  # Azure's limits on a tag's name and value
TAG_VALUE_MAX = 256
_RESOURCE_GROUP = re.compile(r"[-\w.()*]{1,90}")
_LOCATION = re.compile(r"[a-z0-9*]{1,90}")
_PLAIN = re.compile(r"[\w.*()=:/@+-]+")  # a value written without quotes
_REGEX_SPECIAL = frozenset("\\.^$|?+()[]{}")  # `*` is the glob's own
SELECT = "--select"
_ZERO_GUID = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class Pattern:
    """A value of a term: matched whole; `*` matches any run of characters."""

    text: str
    ignore_case: bool = False

    @property
    def is_glob(self) -> bool:
        return "*" in self.text

    @property
    def regex(self) -> str:
        """The pattern as an anchored regular expression that Python's `re` and RE2 (KQL's `matches regex`) read
        alike: every character but `*` is literal, and `*` runs across line breaks too (flag s)."""
        body = "".join(".*" if c == "*" else "\\" + c if c in _REGEX_SPECIAL else c for c in self.text)
        return f"(?{'is' if self.ignore_case else 's'})^{body}$"

    def matches(self, value: str) -> bool:
        return _compiled(self.regex).search(value) is not None

    def __str__(self) -> str:
        return self.text


@functools.cache
def _compiled(regex: str) -> re.Pattern[str]:
    return re.compile(regex)


@dataclass(frozen=True)
class Selection:
    """Which clusters: each field holds the alternatives of one key; an empty field does not restrict."""

    kinds: tuple[str, ...] = ()  # aks, arc; sorted
    resource_groups: tuple[Pattern, ...] = ()
    locations: tuple[Pattern, ...] = ()
    tags: tuple[tuple[str, tuple[Pattern, ...]], ...] = ()  # (KEY, its values), sorted by KEY

    @property
    def selected_kinds(self) -> tuple[str, ...]:
        return self.kinds or KINDS

    def excludes(
        self,
        kind: str,
        resource_group: str,
        location: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> bool:
        """Whether a stack is outside the selection by what its file says. Only what the file declares can put it
        outside: a location or tags it leaves unsaid (an Arc stack cannot declare tags) exclude nothing; tags it
        declares are all the cluster's tags (Pulumi sets exactly those), so a KEY missing from them excludes."""
        if kind not in self.selected_kinds:
            return True
        if self.resource_groups and not any(p.matches(resource_group) for p in self.resource_groups):
            return True
        if location is not None and self.locations and not any(p.matches(location) for p in self.locations):
            return True
        for key, patterns in self.tags:
            if tags is not None and not (key in tags and any(p.matches(tags[key]) for p in patterns)):
                return True
        return False

    def __str__(self) -> str:
        """The expression in a canonical order: the same selection always reads the same."""
        terms = [f"kind:{kind}" for kind in self.kinds]
        terms += [f"rg:{_quoted(p.text)}" for p in self.resource_groups]
        terms += [f"location:{_quoted(p.text)}" for p in self.locations]
        terms += [f"tag:{_quoted(key)}={_quoted(p.text)}" for key, patterns in self.tags for p in patterns]
        return " ".join(terms)


def _quoted(text: str) -> str:
    return text if _PLAIN.fullmatch(text) else shlex.quote(text)


def parse_selection(expression: str) -> Selection:
    """The `--select` expression as a Selection; SpecError with one issue per bad term."""
    if found := UNPRINTABLE.search(expression):
        raise _invalid(expression, f"contains {printable(found.group())}: no control characters in a selection")
    try:
        terms = shlex.split(expression)
    except ValueError as error:  # No closing quotation; No escaped character
        raise _invalid(expression, f"cannot be read: {str(error).lower()}") from None
    if not terms:
        raise _invalid(expression, "is empty: give at least one term, such as kind:arc or tag:fleet=stores")
    issues: list[SpecIssue] = []
    values: dict[str, set[str]] = {key: set() for key in KEYS}  # a tag's as KEY=VALUE
    for term in terms:
        key, colon, value = term.partition(":")
        key = key.lower()
        if not colon or key not in KEYS:
            problem = _unknown_key(key if colon else term)
        else:
            value, problem = _value(key, value)
        if problem is None:
            values[key].add(value)
        else:
            issues.append(SpecIssue(SELECT, shown(term), problem))
    if issues:
        raise SpecError(issues)
    tags: dict[str, list[str]] = {}
    for tag in sorted(values["tag"]):
        key, _, value = tag.partition("=")
        tags.setdefault(key, []).append(value)
    return Selection(
        kinds=tuple(sorted(values["kind"])),
        resource_groups=tuple(Pattern(text, ignore_case=True) for text in sorted(values["rg"], key=str.lower)),
        locations=tuple(Pattern(text, ignore_case=True) for text in sorted(values["location"])),
        tags=tuple((key, tuple(Pattern(text) for text in texts)) for key, texts in tags.items()),
    )


def _value(key: str, value: str) -> tuple[str, str | None]:
    """A term's value as the Selection keeps it, and what is wrong with it (None: nothing)."""
    if not value:
        return value, f"empty value: {key}:VALUE"
    if key == "kind":
        value = value.lower()
        return value, None if value in KINDS else f"kind is {' or '.join(KINDS)}, not {shown(value)}"
    if key == "rg":
        return value, None if _RESOURCE_GROUP.fullmatch(value) else _not_a("resource group name", value)
    if key == "location":
        value = value.lower().replace(" ", "")  # a display name ("West Europe") as the region's name
        return value, None if _LOCATION.fullmatch(value) else _not_a("region name such as westeurope", value)
    tag, equals, tag_value = value.partition("=")
    return value, _tag_problem(tag, equals, tag_value)


def _unknown_key(key: str) -> str:
    meant = _MEANT.get(key) or next(iter(difflib.get_close_matches(key, [*KEYS, *_MEANT], n=1, cutoff=0.6)), None)
    meant = _MEANT.get(meant, meant) if meant else None
    hint = f" (did you mean {meant}:?)" if meant else ""
    return f"not a term: use kind:, rg:, location: or tag:KEY=VALUE{hint}"


def _not_a(what: str, value: str) -> str:
    return f"{shown(value)} is not a {what} ('*' matches any run of characters)"


def _tag_problem(key: str, equals: str, value: str) -> str | None:
    if not equals or not key:
        return "a tag term is tag:KEY=VALUE (VALUE may be * for any value)"
    if "*" in key:
        return "a tag's KEY is matched exactly: no '*' in it"
    if len(key) > TAG_KEY_MAX or len(value) > TAG_VALUE_MAX:
        return f"longer than Azure allows a tag (KEY {TAG_KEY_MAX}, VALUE {TAG_VALUE_MAX} characters)"
    if not value:
        return "empty value: tag:KEY=VALUE (VALUE may be * for any value)"
    return None


def _invalid(expression: str, message: str) -> SpecError:
    return SpecError([SpecIssue(SELECT, shown(expression), message)])  # shown: quoted, escaped, bounded


def parse_subscriptions(values: Iterable[str]) -> tuple[str, ...]:
    """`--subscription` values: subscription ids (GUIDs), returned lower-case, sorted, each once."""
    issues = [
        SpecIssue(
            "--subscription", shown(value), "not a subscription id: a GUID such as 00000000-0000-0000-0000-000000000000"
        )
        for value in values
        if not GUID.fullmatch(value)
    ]
    if issues:
        raise SpecError(issues)
    return tuple(sorted({value.lower() for value in values}))


def profile_file(stacks_dir: Path, name: str) -> Path:
    """The file of the profile `--profile` names, `<stacks_dir>/profiles/<name>.yaml`: a regular file that reads
    as a profile, and whose own profiles do too."""
    if not PROFILE_NAME.fullmatch(name):
        raise SpecError([SpecIssue("--profile", shown(name), f"not a profile name ({PROFILE_NAME_RULE})")])
    library = ProfileLibrary(stacks_dir)
    path = library.directory / f"{name}.yaml"
    if not path.is_file():
        known = [known for known in library.names() if PROFILE_NAME.fullmatch(known)]
        listed = f"profiles: {', '.join(known)}" if known else f"there is none in {library.directory}"
        raise SpecError([SpecIssue("--profile", shown(name), f"no profile {path} ({listed})")])
    library.chain([name], "--profile")
    return path
