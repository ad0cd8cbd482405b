"""The JUnit XML report: counts, outcomes, text that XML cannot hold, and validity against junit-10.xsd."""

from __future__ import annotations

import math
import re
import socket
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone

import pytest

from fluxfleet.drift.junit import TestCase, junit_xml
from tests.conftest import ROOT

JUNIT_SCHEMA = ROOT / ".venv" / "share" / "junit-10.xsd"
WHEN = datetime(2026, 3, 1, 2, 30, 15, tzinfo=UTC)
CLASSNAME = "fluxfleet.drift"

PASSED = TestCase("dev", CLASSNAME, 1.25, details="no changes")
DRIFTED = TestCase("prod", CLASSNAME, 12.5, failure="2 resources drifted", details="~ aks-prod\n~ flux-apps")
UNREACHABLE = TestCase("qa", CLASSNAME, 0.75, error="cannot read the stack state", details="pulumi exited 255")


def report(*cases: TestCase, **kwargs) -> ET.Element:
    return ET.fromstring(junit_xml("fluxfleet drift", cases, WHEN, **{"hostname": "ci-runner", **kwargs}))


def junit_schema():
    if not JUNIT_SCHEMA.exists():
        pytest.fail(f"{JUNIT_SCHEMA} is absent: run `make test`, which fetches it (tests/tools/fetch_schema.py)")
    import xmlschema

    return xmlschema.XMLSchema(str(JUNIT_SCHEMA))


def test_one_suite_counts_passed_failed_and_errored_cases():
    root = report(PASSED, DRIFTED, UNREACHABLE)
    [suite] = root
    assert root.tag == "testsuites" and suite.tag == "testsuite"
    for element in (root, suite):
        assert (element.get("tests"), element.get("failures"), element.get("errors")) == ("3", "1", "1")
        assert element.get("time") == "14.500" and element.get("name") == "fluxfleet drift"
    assert suite.get("skipped") == "0" and suite.get("hostname") == "ci-runner"
    assert suite.get("timestamp") == "2026-03-01T02:30:15"
    assert [(case.get("name"), case.get("classname"), case.get("time")) for case in suite] == [
        ("dev", CLASSNAME, "1.250"),
        ("prod", CLASSNAME, "12.500"),
        ("qa", CLASSNAME, "0.750"),
    ]


def test_each_outcome_has_its_element_and_the_details_as_its_body():
    passed, drifted, unreachable = report(PASSED, DRIFTED, UNREACHABLE).find("testsuite")
    [out] = passed
    assert out.tag == "system-out" and out.text == "no changes"
    [failure] = drifted
    assert failure.tag == "failure" and failure.get("message") == "2 resources drifted"
    assert failure.get("type") and failure.text == "~ aks-prod\n~ flux-apps"
    [error] = unreachable
    assert error.tag == "error" and error.get("message") == "cannot read the stack state"
    assert error.get("type") and error.text == "pulumi exited 255"


def test_a_passing_case_without_details_is_an_empty_testcase():
    [case] = report(TestCase("dev", CLASSNAME, 1)).find("testsuite")
    assert len(case) == 0


def test_validates_against_the_junit_schema():
    schema = junit_schema()
    cases = [
        PASSED,
        DRIFTED,
        UNREACHABLE,
        TestCase("no-details", CLASSNAME, 0),
        TestCase("odd\x00name", "c\x1b[1ml\x1b[0mass", -1, failure="bad\x07 & <worse>", details="\x0b\ud800\U0001f600"),
        TestCase("slow", CLASSNAME, math.inf, error="timed out"),
        TestCase("nan", CLASSNAME, math.nan),
        TestCase("precise", CLASSNAME, 1234567.123456789),
    ]
    schema.validate(junit_xml("fluxfleet drift", cases, WHEN))
    schema.validate(junit_xml("empty fleet", [], WHEN, hostname="ci-runner"))


def test_characters_xml_forbids_and_terminal_colours_are_removed():
    case = TestCase(
        "stack\x00-1",
        CLASSNAME,
        1,
        failure="drift\x1b[31m found\x1b[0m\x08",
        details="\x1b[33m~ update\x1b[0m\x01\x1f\ufffe\ud800 tab\tand\r\nnewline \U0001f600",
    )
    text = junit_xml("suite\x0c", [case], WHEN, hostname="host\x7f")
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\ud800]", text)
    [suite] = ET.fromstring(text)
    [testcase] = suite
    [failure] = testcase
    assert suite.get("name") == "suite" and testcase.get("name") == "stack-1"
    assert failure.get("message") == "drift found"
    assert failure.text == "~ update tab\tand\nnewline \U0001f600"  # XML parsers normalise CR LF to LF


def test_markup_characters_survive_the_round_trip():
    details = "a & b < c > d \"quoted\" 'single' ]]> <failure/>"
    case = TestCase("a&b<c", "x&y", 1, failure='"<drift> & more"', details=details)
    [testcase] = ET.fromstring(junit_xml("s&<", [case], WHEN)).find("testsuite")
    [failure] = testcase
    assert testcase.get("name") == "a&b<c" and testcase.get("classname") == "x&y"
    assert failure.get("message") == '"<drift> & more"' and failure.text == details


@pytest.mark.parametrize(
    "moment, expected",
    [
        (datetime(2026, 3, 1, 4, 30, 15, 999999, tzinfo=timezone(timedelta(hours=2))), "2026-03-01T02:30:15"),
        (datetime(2026, 3, 1, 2, 30, 15, tzinfo=UTC), "2026-03-01T02:30:15"),
        (datetime(2026, 3, 1, 2, 30, 15), "2026-03-01T02:30:15"),  # naive: taken as it is
    ],
)
def test_the_timestamp_has_no_offset_and_no_fraction(moment, expected):
    # The Ant schema's type for it: [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}, "Timezone may not be specified"
    suite = ET.fromstring(junit_xml("s", [PASSED], moment, hostname="h")).find("testsuite")
    assert suite.get("timestamp") == expected


def test_the_hostname_defaults_to_this_machine():
    suite = ET.fromstring(junit_xml("s", [PASSED], WHEN)).find("testsuite")
    assert suite.get("hostname") == socket.gethostname()


def test_a_case_fails_or_errors_not_both():
    with pytest.raises(ValueError, match="not both"):
        TestCase("dev", CLASSNAME, 1, failure="drift", error="unreachable")
