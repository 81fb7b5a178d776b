"""rmuzero.plain_json: the one converter of metrics lines and a checkpoint's config.json."""

import jax.numpy as jnp
import numpy as np
import pytest

from rmuzero.plain_json import plain_json


def test_scalars_become_python_values_and_non_finite_floats_null():
    value = {
        "a": np.float32(1.5),
        "b": jnp.asarray(3, jnp.int32),
        "c": np.bool_(True),
        "d": float("nan"),
        "e": {"f": np.array(2.0)},
        "g": None,
        "h": "text",
    }
    assert plain_json(value, "record") == {
        "a": 1.5,
        "b": 3,
        "c": True,
        "d": None,
        "e": {"f": 2.0},
        "g": None,
        "h": "text",
    }


def test_lists_only_where_asked_and_their_entries_named():
    assert plain_json({"sizes": (np.int64(128), 64)}, "config", lists=True) == {"sizes": [128, 64]}
    with pytest.raises(TypeError, match=r"^record\.sizes has type tuple"):
        plain_json({"sizes": (128,)}, "record")
    with pytest.raises(TypeError, match=r"^config\.sizes\[1\] has type set"):
        plain_json({"sizes": [1, {2}]}, "config", lists=True)


def test_one_line_errors_name_the_entry():
    with pytest.raises(TypeError, match="^metric names must be strings, got 1 in record$"):
        plain_json({1: 2.0}, "record", keys="metric names")
    with pytest.raises(ValueError, match=r"^record\.q has shape \(3,\)"):
        plain_json({"q": np.zeros(3)}, "record")
    with pytest.raises(TypeError, match=r"^record\.z is complex \(complex64\)"):
        plain_json({"z": np.complex64(1j)}, "record")
