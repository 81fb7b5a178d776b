"""Values as plain JSON types: one converter for the metrics lines and a checkpoint's config.json."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["plain_json"]


def plain_json(value: Any, where: str, *, lists: bool = False, keys: str = "keys") -> Any:
    """``value`` as plain JSON types, or a one-line error naming the entry.

    None, str, bool and int are kept; a float too, but a non-finite one becomes None
    (JSON has no NaN or infinity); a numpy or jax scalar or 0-d array becomes its
    Python value; a mapping with string keys a dict; with ``lists``, a list or tuple
    a list.

    Args:
      value: what to convert.
      where: the entry's name in errors, e.g. ``"record"``; nested entries extend it
        (``record.loss``, ``config.head_sizes[0]``).
      lists: accept lists and tuples (a metric is a scalar; a config may hold lists).
      keys: what a mapping's keys are called in the error for one that is not a string.

    Raises:
      TypeError: a key that is not a string, a complex number, or a type JSON cannot hold.
      ValueError: an array that is not 0-d.
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{keys} must be strings, got {k!r} in {where}")
            out[k] = plain_json(v, f"{where}.{k}", lists=lists, keys=keys)
        return out
    if lists and isinstance(value, (list, tuple)):
        return [plain_json(v, f"{where}[{i}]", lists=lists, keys=keys) for i, v in enumerate(value)]
    if isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is None or dtype is None:
        raise TypeError(
            f"{where} has type {type(value).__name__}, which JSON cannot hold (valid: None, bool, int, float, "
            f"str, a 0-d numpy/jax array or scalar, {'a list or tuple, ' if lists else ''}or a mapping of these)"
        )
    if tuple(shape) != ():
        raise ValueError(f"{where} has shape {tuple(shape)}; log scalars (shape ()) only")
    item = np.asarray(value).item()
    if isinstance(item, complex):
        raise TypeError(f"{where} is complex ({np.dtype(dtype).name}); log its real/imag/abs instead")
    return plain_json(item, where, lists=lists, keys=keys)
