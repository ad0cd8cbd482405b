"""The keeper of a blob lease: what makes a Blob Storage lock's `fd` behave as an flock's descriptor.

Started by fluxfleet/runstate/azblob.py (`BlobLock.fd`) in a session of its own, with the lease in its environment
(never its command line). It renews the lease every third of its duration and reads its stdin, a pipe whose write end
is the lock's `fd`, until every copy of that end is closed (fluxfleet's, and that of the `pulumi up` it was handed
to): then it releases the lease and exits. Its first line on stdout says whether it holds the lease ("held"), or why
not; it writes nothing after.
"""

from __future__ import annotations

import os
import select
import sys
from contextlib import suppress

from azure.core.exceptions import AzureError, HttpResponseError
from azure.storage.blob import ContainerClient

from fluxfleet.runstate.azblob import KEEPER_HELD, LEASE_LOST, _code, failure, keeper_lease


def main() -> int:
    container, lease, seconds = keeper_lease(os.environ)
    try:
        lease.renew()
    except AzureError as error:
        _say(failure(error, container) if not isinstance(error, HttpResponseError) else _lost_or(error, container))
        return 1
    _say(KEEPER_HELD)
    while True:
        readable, _, _ = select.select([0], [], [], seconds / 3)
        if readable:
            if not os.read(0, 4096):
                break  # the last copy of the lock's fd was closed
            continue
        try:
            lease.renew()
        except HttpResponseError as error:
            if _code(error) in LEASE_LOST or error.status_code == 404:
                return 2  # broken or taken: nothing left to hold (its holder sees it in `still_held()`)
        except AzureError:
            continue  # out of reach: tried again at the next renewal, until the lease expires
    with suppress(AzureError):  # out of reach: it expires on its own within its duration
        lease.release()
    return 0


def _lost_or(error: HttpResponseError, container: ContainerClient) -> str:
    return "the lease was lost" if _code(error) in LEASE_LOST else failure(error, container)


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
    sys.stdout.close()


if __name__ == "__main__":
    sys.exit(main())
