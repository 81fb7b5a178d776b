"""Helpers shared by the POPGym families: observation encoding and specs."""

from __future__ import annotations

from typing import Sequence

import jax.numpy as jnp
from jumanji import specs


def one_hot_concat(values: Sequence[jnp.ndarray], sizes: Sequence[int]) -> jnp.ndarray:
    """Concatenates one-hot encodings of integer ``values`` (each of ``sizes[i]``).

    Args:
      values: integer scalars (or arrays, one-hot along a new last axis, then
        flattened), in the reference observation's order.
      sizes: the number of categories of each component.

    Returns:
      float32 vector of length ``sum(size * value.size)``.
    """
    parts = [
        jnp.ravel(jnp.eye(size, dtype=jnp.float32)[jnp.asarray(value, jnp.int32)])
        for value, size in zip(values, sizes, strict=True)
    ]
    return jnp.concatenate(parts)


def vector_spec(size: int, name: str = "observation", low: float = 0.0, high: float = 1.0) -> specs.BoundedArray:
    """A float32 ``[size]`` observation spec."""
    return specs.BoundedArray((size,), jnp.float32, low, high, name)
