"""What fluxfleet's Pulumi dynamic resources share: a guard around pulumi's serialization of their providers.

`pulumi.dynamic.Resource` pickles its provider with `serialize_provider`, which (pulumi 3.x, Python < 3.14) replaces
`pickle._Pickler._batch_setitems` by a sorting wrapper of the one it finds and never puts it back: every dynamic
resource a process declares wraps the last wrapper once more. `pulumi up` declares a few; `fluxfleet plan` and the
tests declare thousands in one process, and past about a thousand, pickling recurses beyond Python's limit. Each
dynamic resource of the program is declared inside `provider_serialized`, which puts the method back as it was.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def provider_serialized() -> Iterator[None]:
    """Around a `pulumi.dynamic.Resource(...)` call: pickle's `_Pickler._batch_setitems` as it was before it."""
    saved = pickle._Pickler._batch_setitems  # type: ignore[attr-defined]
    try:
        yield
    finally:
        pickle._Pickler._batch_setitems = saved  # type: ignore[attr-defined]
