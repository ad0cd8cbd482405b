"""The `fluxfleet inventory` input: --select parsed into a Selection (and every bad term one issue naming it),
the glob patterns, which stacks a selection excludes, --subscription ids and --profile."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modules.spec import SpecError
from modules.spec.selection import Pattern, Selection, parse_selection, parse_subscriptions, profile_file


def issues_of(expression: str) -> list[str]:
    with pytest.raises(SpecError) as error:
        parse_selection(expression)
    lines = [str(issue) for issue in error.value.issues]
    assert all("\n" not in line for line in lines)
    return lines


def test_terms_of_different_keys_and_the_same_key_twice():
    selection = parse_selection(
        "tag:fleet=stores kind:arc tag:fleet=kiosks tag:env=prod rg:RG-Stores-* location:WestEurope"
    )
    assert selection.kinds == ("arc",)
    assert [(p.text, p.ignore_case) for p in selection.resource_groups] == [("RG-Stores-*", True)]
    assert [p.text for p in selection.locations] == ["westeurope"]
    assert [(key, [p.text for p in patterns]) for key, patterns in selection.tags] == [
        ("env", ["prod"]),
        ("fleet", ["kiosks", "stores"]),
    ]
    assert (
        str(selection) == "kind:arc rg:RG-Stores-* location:westeurope tag:env=prod tag:fleet=kiosks tag:fleet=stores"
    )


def test_the_canonical_text_reads_back_as_the_same_selection():
    selection = parse_selection('tag:"cost center"="retail; emea" kind:AKS kind:arc kind:aks')
    assert str(selection) == "kind:aks kind:arc tag:'cost center'='retail; emea'"
    assert parse_selection(str(selection)) == selection
    assert selection.selected_kinds == ("aks", "arc")


def test_no_kind_selects_both():
    assert parse_selection("tag:fleet=stores").selected_kinds == ("aks", "arc")


@pytest.mark.parametrize(
    ("expression", "said"),
    [
        ("kind:foo", "--select: 'kind:foo': kind is aks or arc, not 'foo'"),
        ("kind:*", "--select: 'kind:*': kind is aks or arc, not '*'"),
        ("rg:", "--select: 'rg:': empty value: rg:VALUE"),
        ("location:", "--select: 'location:': empty value: location:VALUE"),
        ("tag:fleet=", "--select: 'tag:fleet=': empty value: tag:KEY=VALUE (VALUE may be * for any value)"),
        ("tag:fleet", "--select: 'tag:fleet': a tag term is tag:KEY=VALUE (VALUE may be * for any value)"),
        ("tag:=stores", "--select: 'tag:=stores': a tag term is tag:KEY=VALUE (VALUE may be * for any value)"),
        ("tag:fl*=stores", "--select: 'tag:fl*=stores': a tag's KEY is matched exactly: no '*' in it"),
        ("rg:a/b", "--select: 'rg:a/b': 'a/b' is not a resource group name ('*' matches any run of characters)"),
        ("location:west_europe", "--select: 'location:west_europe': 'west_europe' is not a region name"),
        ("location:West Europe", "--select: 'Europe': not a term"),  # unquoted: two terms
        ("resourceGroup:rg-1", "(did you mean rg:?)"),
        ("region:westeurope", "(did you mean location:?)"),
        ("knd:arc", "(did you mean kind:?)"),
        ("tags:fleet=stores", "(did you mean tag:?)"),
        ("stores", "--select: 'stores': not a term: use kind:, rg:, location: or tag:KEY=VALUE"),
        ("", "--select: '': is empty: give at least one term, such as kind:arc or tag:fleet=stores"),
        ("   ", "--select: '   ': is empty"),
        ("tag:a='b", '--select: "tag:a=\'b": cannot be read: no closing quotation'),
        ("kind:arc\x1b]0;pwned\x07", "--select: 'kind:arc\\x1b]0;pwned\\x07': contains \\x1b: no control characters"),
        ("tag:a=\u202eevil", "contains \\u202e"),
    ],
)
def test_a_bad_term_is_one_line_naming_it(expression, said):
    lines = issues_of(expression)
    assert len(lines) >= 1 and said in lines[0], lines


def test_a_region_s_display_name_is_its_name():
    assert [p.text for p in parse_selection('location:"West Europe"').locations] == ["westeurope"]


def test_every_bad_term_is_reported_at_once():
    lines = issues_of("kind:foo rg:ok tag:x knd:arc")
    assert [line.split(": ", 2)[1] for line in lines] == ["'kind:foo'", "'tag:x'", "'knd:arc'"]


def test_a_long_term_is_shown_bounded():
    [line] = issues_of("kind:" + "x" * 5000)
    assert len(line) < 300 and "(5,005 characters)" in line


def test_tag_limits_are_azure_s():
    parse_selection("tag:" + "k" * 512 + "=" + "v" * 256)
    [line] = issues_of("tag:" + "k" * 513 + "=v")
    assert "longer than Azure allows a tag" in line


# --------------------------------------------------------------------------------------------- patterns


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        (Pattern("rg-stores-*", ignore_case=True), "RG-Stores-WEU", True),
        (Pattern("rg-stores-*", ignore_case=True), "rg-stores-", True),
        (Pattern("rg-stores-*", ignore_case=True), "xrg-stores-weu", False),
        (Pattern("*-weu", ignore_case=True), "rg-stores-weu", True),
        (Pattern("rg.(1)", ignore_case=True), "rgx(1)", False),  # '.' and '(' are literal
        (Pattern("rg.(1)", ignore_case=True), "rg.(1)", True),
        (Pattern("Stores"), "stores", False),  # a tag's value keeps its case
        (Pattern("*"), "", True),
        (Pattern("a*b*c"), "a-b-\nc", True),
    ],
)
def test_patterns(pattern, value, matches):
    assert pattern.matches(value) is matches


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20))
def test_a_pattern_without_star_matches_only_itself(text):
    text = text.replace("*", "")
    pattern = Pattern(text)
    assert pattern.matches(text)
    assert not pattern.matches(text + "x") and not pattern.matches("x" + text)
    assert re.fullmatch(r"\(\?s\)\^.*\$", pattern.regex, re.DOTALL)


# --------------------------------------------------------------------------------------------- stacks


@pytest.mark.parametrize(
    ("expression", "stack", "excluded"),
    [
        ("kind:arc", {"kind": "aks", "resource_group": "rg"}, True),
        ("kind:arc", {"kind": "arc", "resource_group": "rg"}, False),
        ("rg:rg-stores-*", {"kind": "arc", "resource_group": "rg-factories"}, True),
        ("rg:rg-stores-*", {"kind": "arc", "resource_group": "RG-STORES-1"}, False),
        ("location:westeurope", {"kind": "aks", "resource_group": "rg", "location": "northeurope"}, True),
        ("location:westeurope", {"kind": "arc", "resource_group": "rg", "location": None}, False),  # unsaid
        ("tag:fleet=stores", {"kind": "arc", "resource_group": "rg", "tags": None}, False),  # an Arc stack: unsaid
        ("tag:fleet=stores", {"kind": "aks", "resource_group": "rg", "tags": {"fleet": "stores"}}, False),
        ("tag:fleet=stores", {"kind": "aks", "resource_group": "rg", "tags": {"fleet": "kiosks"}}, True),
        ("tag:fleet=stores", {"kind": "aks", "resource_group": "rg", "tags": {"owner": "x"}}, True),  # declared, none
        (
            "tag:fleet=stores tag:fleet=kiosks",
            {"kind": "aks", "resource_group": "rg", "tags": {"fleet": "kiosks"}},
            False,
        ),
    ],
)
def test_which_stacks_a_selection_excludes(expression, stack, excluded):
    assert parse_selection(expression).excludes(**stack) is excluded


def test_an_empty_selection_excludes_nothing():
    assert not Selection().excludes("aks", "rg", "westeurope", {})


# --------------------------------------------------------------------------------------------- other options


def test_subscriptions_are_guids_lower_case_sorted_once():
    upper = "AAAAAAAA-0000-0000-0000-000000000001"
    assert parse_subscriptions([upper, "00000000-0000-0000-0000-000000000002", upper.lower()]) == (
        "00000000-0000-0000-0000-000000000002",
        upper.lower(),
    )
    with pytest.raises(SpecError) as error:
        parse_subscriptions(["my-subscription", "00000000-0000-0000-0000-000000000002", "{0000}"])
    assert [str(issue) for issue in error.value.issues] == [
        "--subscription: 'my-subscription': not a subscription id: a GUID such as 00000000-0000-0000-0000-000000000000",
        "--subscription: '{0000}': not a subscription id: a GUID such as 00000000-0000-0000-0000-000000000000",
    ]


def test_profile_must_exist_and_read_as_a_profile(tmp_path):
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "edge-store.yaml").write_text("config:\n  fluxfleet:flux:\n    configurations: {}\n")
    assert profile_file(tmp_path, "edge-store") == profiles / "edge-store.yaml"

    def problem(name: str) -> str:
        with pytest.raises(SpecError) as error:
            profile_file(tmp_path, name)
        [line] = [str(issue) for issue in error.value.issues]
        return line

    assert problem("edge") == f"--profile: 'edge': no profile {profiles / 'edge.yaml'} (profiles: edge-store)"
    assert problem("../secrets").startswith("--profile: '../secrets': not a profile name")
    (profiles / "folder.yaml").mkdir()
    assert problem("folder").startswith("--profile: 'folder': no profile")
    (profiles / "broken.yaml").write_text("config:\n  azure-native:location: westeurope\n")
    assert "a profile holds fluxfleet: keys only" in problem("broken")
