"""The JSON and SARIF reports' text: what `json.dumps(value, indent=2)` writes, byte for byte, written faster."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fluxfleet.plan.report import json_text

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text()
keys = st.text() | st.integers() | st.floats(allow_nan=False) | st.booleans() | st.none()
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(values)
def test_json_text_is_what_json_dumps_writes(value):
    assert json_text(value) == json.dumps(value, indent=2)


def test_json_text_of_what_json_writes_specially():
    value = {"nan": math.nan, "inf": [math.inf, -math.inf], 7: "é\u2028\x1b", None: {}, True: [], 2.5: ()}
    assert json_text(value) == json.dumps(value, indent=2)


def test_json_text_refuses_what_json_refuses():
    with pytest.raises(TypeError):
        json_text({"set": {1}})
    with pytest.raises(TypeError):
        json_text({(1, 2): "tuple key"})
