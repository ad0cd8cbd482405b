"""Fetch the official SARIF 2.1.0 JSON schema for the SARIF conformance test (run by `make test`).

The schema ships in Microsoft's @microsoft/jest-sarif package on the npm registry; the file is pinned by hash.
Usage: python tests/tools/fetch_sarif_schema.py DEST
"""

from __future__ import annotations

import hashlib
import io
import sys
import tarfile
import urllib.request
from pathlib import Path

TARBALL = "https://registry.npmjs.org/@microsoft/jest-sarif/-/jest-sarif-1.0.0-beta.0.tgz"
MEMBER = "package/lib/schemas/sarif-2.1.0-rtm.5.json"
SHA256 = "2d99159ae54a3eea97f81781cff48780548657c35949f4b7f25e99a2ba4de4f8"


def main(destination: Path) -> int:
    with urllib.request.urlopen(TARBALL, timeout=60) as response:  # noqa: S310 - a fixed https URL
        payload = response.read()
    with tarfile.open(fileobj=io.BytesIO(payload), mode="r:gz") as archive:
        member = archive.extractfile(MEMBER)
        if member is None:
            print(f"fetch_sarif_schema: {MEMBER} not in {TARBALL}", file=sys.stderr)
            return 1
        data = member.read()
    if hashlib.sha256(data).hexdigest() != SHA256:
        print(f"fetch_sarif_schema: {MEMBER} does not match its pinned hash", file=sys.stderr)
        return 1
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_bytes(data)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
