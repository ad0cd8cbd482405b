"""JUnit XML test reports, which CI systems (GitHub Actions reporters, GitLab, Azure Pipelines, Jenkins) display.

The document follows the Jenkins/Surefire schema (junit-10.xsd): `<testsuites>` holding one `<testsuite>`, one
`<testcase>` per case, a `<failure>` or `<error>` for a case that did not pass and `<system-out>` for one that did.
"""

from __future__ import annotations

import math
import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

# Characters XML 1.0 forbids: C0 controls other than tab, LF and CR, lone surrogates, U+FFFE and U+FFFF.
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Terminal colour codes, as in `pulumi preview` output: removing only their ESC would leave "[31m" in the report.
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass(frozen=True)
class TestCase:
    __test__ = False  # a report entry, not a test for pytest to collect

    name: str  # e.g. the stack name
    classname: str  # e.g. "fluxfleet.drift"
    seconds: float
    failure: str | None = None  # one-line message: the case failed (drift found)
    error: str | None = None  # one-line message: the case could not run (stack unreachable)
    details: str = ""  # body of the failure or error element; system-out for a passing case

    def __post_init__(self) -> None:
        if self.failure is not None and self.error is not None:
            raise ValueError(f"test case {self.name!r}: a case fails or errors, not both")


def junit_xml(suite: str, cases: Sequence[TestCase], timestamp: datetime, hostname: str | None = None) -> str:
    """The report as an XML document; `hostname` defaults to this machine's."""
    failures = sum(case.failure is not None for case in cases)
    errors = sum(case.error is not None for case in cases)
    total_time = _seconds(sum(case.seconds for case in cases if _finite_positive(case.seconds)))
    counts = {"tests": str(len(cases)), "failures": str(failures), "errors": str(errors)}

    root = ET.Element("testsuites", {"name": _xml_text(suite), **counts, "time": total_time})
    testsuite = ET.SubElement(
        root,
        "testsuite",
        {
            "name": _xml_text(suite),
            **counts,
            "skipped": "0",
            "time": total_time,
            "timestamp": _timestamp(timestamp),
            "hostname": _xml_text(hostname or socket.gethostname() or "localhost"),
        },
    )
    for case in cases:
        testcase = ET.SubElement(
            testsuite,
            "testcase",
            {"name": _xml_text(case.name), "classname": _xml_text(case.classname), "time": _seconds(case.seconds)},
        )
        if case.error is not None:
            outcome = ET.SubElement(testcase, "error", {"message": _xml_text(case.error), "type": "error"})
        elif case.failure is not None:
            outcome = ET.SubElement(testcase, "failure", {"message": _xml_text(case.failure), "type": "failure"})
        elif case.details:
            outcome = ET.SubElement(testcase, "system-out")
        else:
            continue
        if case.details:
            outcome.text = _xml_text(case.details)

    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _xml_text(text: str) -> str:
    return _NOT_XML_CHAR.sub("", _ANSI_ESCAPE.sub("", text))


def _finite_positive(seconds: float) -> bool:
    return math.isfinite(seconds) and seconds > 0


def _seconds(seconds: float) -> str:
    # The schema's time type takes at most three decimals, and no sign, exponent, inf or nan.
    return f"{seconds:.3f}" if _finite_positive(seconds) else "0.000"


def _timestamp(moment: datetime) -> str:
    # JUnit timestamps carry no offset (the Ant schema forbids one), so an aware time is given in UTC.
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="seconds")
