"""Fetch a public schema the report tests validate against (run by `make test`), pinned by hash.

Each schema ships inside a package tarball on a registry this project installs from:
- sarif: the official SARIF 2.1.0 JSON schema, in Microsoft's @microsoft/jest-sarif on the npm registry;
- junit: the Jenkins/Surefire JUnit XML schema (junit-10.xsd), in pytest's source distribution on PyPI, which
  validates pytest's own --junitxml output against it.

Usage: python tests/tools/fetch_schema.py sarif|junit DEST
"""

from __future__ import annotations

import hashlib
import io
import sys
import tarfile
import urllib.request
from pathlib import Path

SCHEMAS = {
    "sarif": (
        "https://registry.npmjs.org/@microsoft/jest-sarif/-/jest-sarif-1.0.0-beta.0.tgz",
        "package/lib/schemas/sarif-2.1.0-rtm.5.json",
        "2d99159ae54a3eea97f81781cff48780548657c35949f4b7f25e99a2ba4de4f8",
    ),
    "junit": (
        "https://files.pythonhosted.org/packages/79/42/bb4641652e58dedeac2ec51abc1f8cae4fee4ec63899a0999016229a0f2a/"
        "pytest-9.2.0.tar.gz",
        "pytest-9.2.0/testing/example_scripts/junit-10.xsd",
        "a1a816f58d1bf95ebabf371994df0b9246dee66ea9572fbec4f9296f1b2c0ff6",
    ),
}


def main(name: str, destination: Path) -> int:
    tarball, member_name, sha256 = SCHEMAS[name]
    with urllib.request.urlopen(tarball, timeout=60) as response:  # noqa: S310 - a fixed https URL
        payload = response.read()
    with tarfile.open(fileobj=io.BytesIO(payload), mode="r:gz") as archive:
        try:
            member = archive.extractfile(member_name)
        except KeyError:
            member = None
        if member is None:
            print(f"fetch_schema: {member_name} not in {tarball}", file=sys.stderr)
            return 1
        data = member.read()
    if hashlib.sha256(data).hexdigest() != sha256:
        print(f"fetch_schema: {member_name} does not match its pinned hash", file=sys.stderr)
        return 1
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_bytes(data)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in SCHEMAS:
        print(f"usage: fetch_schema.py {'|'.join(SCHEMAS)} DEST", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], Path(sys.argv[2])))
