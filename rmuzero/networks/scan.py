"""The resettable scan: one utility that every memoroid runs through.

Dimensions: T time, B batch, ``...`` the state's own dimensions.

A memoroid is a monoid ``(S, •, e)`` over recurrent states. Episode boundaries
make it a *resettable* monoid: every element carries a start flag, and

    (a, start_a) • (b, start_b) = (combine(e if start_b else a, b), start_a | start_b)

so an element flagged ``start`` discards everything before it. The identity is
substituted with ``jnp.where`` *before* ``combine`` (not multiplied in), so a NaN
or an overflow in a stale state reaches neither the outputs nor the gradients.

The incoming carry is element 0 (start False); the scan runs over ``T + 1``
elements and drops element 0. The same call serves acting (``T = 1``) and
learning (``T`` = a whole window). Three strategies compute the same prefix
states and are tested against each other:

- ``"sequential"``: ``jax.lax.scan`` threading one state (fastest on CPU);
- ``"associative"``: ``jax.lax.associative_scan`` (log-depth, for GPU/TPU);
- ``"chunked"``: associative inside chunks of ``chunk_size`` steps, sequential
  across chunks.
``"auto"`` picks per backend: sequential on CPU, associative elsewhere.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

import chex
import jax
import jax.numpy as jnp

State = Any  # a pytree of arrays with leading dimensions [T, B] or [B]
Strategy = Literal["auto", "sequential", "associative", "chunked"]
STRATEGIES = ("auto", "sequential", "associative", "chunked")


class Monoid(Protocol):
    """An associative ``combine`` with an identity, applied elementwise over leading dims."""

    def combine(self, a: State, b: State) -> State:
        """``a • b`` for states with matching leading dimensions."""

    def identity(self, like: State) -> State:
        """The identity ``e`` broadcastable against ``like`` (``e • b == b``)."""


def _expand_flag(flag: chex.Array, leaf: chex.Array) -> chex.Array:
    """Broadcasts a ``[*lead]`` flag against a ``[*lead, ...]`` leaf."""
    return flag.reshape(flag.shape + (1,) * (leaf.ndim - flag.ndim))


def reset_combine(monoid: Monoid, a: tuple[State, chex.Array], b: tuple[State, chex.Array]):
    """The resettable operator on ``(state, start)`` pairs (see module docstring)."""
    state_a, start_a = a
    state_b, start_b = b
    identity = monoid.identity(state_a)
    cleared = jax.tree.map(
        lambda x, e: jnp.where(_expand_flag(start_b, x), jnp.broadcast_to(e, x.shape).astype(x.dtype), x),
        state_a,
        identity,
    )
    return monoid.combine(cleared, state_b), start_a | start_b


def resolve_strategy(strategy: Strategy) -> str:
    """Maps ``"auto"`` to the measured fastest strategy of the default backend."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown scan strategy {strategy!r}; valid: {', '.join(STRATEGIES)}")
    if strategy == "auto":
        return "sequential" if jax.default_backend() == "cpu" else "associative"
    return strategy


def resettable_scan(
    monoid: Monoid,
    carry: State,
    elements: State,
    start: chex.Array,
    *,
    strategy: Strategy = "auto",
    chunk_size: int = 64,
) -> State:
    """Prefix states of ``carry • elements[0] • ... • elements[t]`` with resets.

    Args:
      monoid: the operator and its identity.
      carry: state before the window, leaves ``[B, ...]``.
      elements: per-step states, leaves ``[T, B, ...]`` (the input map's output).
      start: ``[T, B]`` bool; ``start[t]`` clears the state before ``elements[t]``.
      strategy: see the module docstring.
      chunk_size: steps per chunk for ``"chunked"``.

    Returns:
      States after each step, leaves ``[T, B, ...]``; the last one is the next carry.
    """
    strategy = resolve_strategy(strategy)
    start = start.astype(bool)
    if strategy == "sequential":
        return _sequential(monoid, carry, elements, start)
    if strategy == "associative":
        return _associative(monoid, carry, elements, start)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size}")
    return _chunked(monoid, carry, elements, start, min(chunk_size, start.shape[0]))


def _sequential(monoid: Monoid, carry: State, elements: State, start: chex.Array) -> State:
    def step(state, inputs):
        element, flag = inputs
        state, _ = reset_combine(monoid, (state, jnp.zeros_like(flag)), (element, flag))
        return state, state

    _, states = jax.lax.scan(step, carry, (elements, start))
    return states


def _associative(monoid: Monoid, carry: State, elements: State, start: chex.Array) -> State:
    with_carry = jax.tree.map(lambda c, x: jnp.concatenate([c[None], x], axis=0), carry, elements)
    flags = jnp.concatenate([jnp.zeros_like(start[:1]), start], axis=0)
    states, _ = jax.lax.associative_scan(lambda a, b: reset_combine(monoid, a, b), (with_carry, flags), axis=0)
    return jax.tree.map(lambda x: x[1:], states)


def _chunked(monoid: Monoid, carry: State, elements: State, start: chex.Array, chunk_size: int) -> State:
    num_steps = start.shape[0]
    num_chunks = -(-num_steps // chunk_size)
    pad = num_chunks * chunk_size - num_steps

    def to_chunks(x):
        # Padding goes at the end and is dropped; its values never reach a kept step.
        x = jnp.concatenate([x, jnp.zeros((pad,) + x.shape[1:], x.dtype)], axis=0)
        return x.reshape((num_chunks, chunk_size) + x.shape[1:])

    chunked_elements = jax.tree.map(to_chunks, elements)
    chunked_start = to_chunks(start)

    def chunk_step(state, inputs):
        chunk_elements, chunk_start = inputs
        # Prefixes inside the chunk, in parallel, then joined to the running state.
        prefix, prefix_start = jax.lax.associative_scan(
            lambda a, b: reset_combine(monoid, a, b), (chunk_elements, chunk_start), axis=0
        )
        running = jax.tree.map(lambda s: jnp.broadcast_to(s[None], (chunk_size,) + s.shape), state)
        states, _ = reset_combine(monoid, (running, jnp.zeros_like(prefix_start)), (prefix, prefix_start))
        return jax.tree.map(lambda x: x[-1], states), states

    _, states = jax.lax.scan(chunk_step, carry, (chunked_elements, chunked_start))
    return jax.tree.map(lambda x: x.reshape((num_chunks * chunk_size,) + x.shape[2:])[:num_steps], states)


def at_positions(tree: State, positions: chex.Array | None) -> State:
    """Leaves ``[T, B, ...]`` at time ``positions [R, B]`` (per batch entry) -> ``[R, B, ...]``;
    ``None``: the tree unchanged. What a layer reads out only where a loss needs it."""
    if positions is None:
        return tree
    batch = jnp.arange(positions.shape[1])[None, :]
    return jax.tree.map(lambda x: x[positions, batch], tree)


def check_positions(name: str, positions: chex.Array | None, x: chex.Array) -> None:
    """``positions`` must be ``None`` or integer ``[R, B]`` matching ``x [T, B, F]``'s batch."""
    if positions is None:
        return
    if (
        getattr(positions, "ndim", None) != 2
        or positions.shape[1] != x.shape[1]
        or not jnp.issubdtype(positions.dtype, jnp.integer)
    ):
        raise ValueError(
            f"{name}: positions must be integer time indices [R, B] with B = {x.shape[1]} (from x "
            f"{tuple(x.shape)}); received {getattr(positions, 'shape', type(positions))} "
            f"{getattr(positions, 'dtype', '')}"
        )


def check_inputs(name: str, carry: State, x: chex.Array, start: chex.Array) -> None:
    """Checks the calling convention at trace time; raises ValueError naming shapes.

    Expected: ``x [T, B, F]``, ``start [T, B]`` (bool or integer), carry leaves
    ``[B, ...]``.
    """
    if getattr(x, "ndim", None) != 3:
        raise ValueError(f"{name}: x must be time-major [T, B, F]; received shape {getattr(x, 'shape', type(x))}")
    if getattr(start, "shape", None) != x.shape[:2]:
        raise ValueError(
            f"{name}: start must have shape [T, B] = {tuple(x.shape[:2])} to match x {tuple(x.shape)}; "
            f"received {getattr(start, 'shape', type(start))}"
        )
    if not (jnp.issubdtype(start.dtype, jnp.bool_) or jnp.issubdtype(start.dtype, jnp.integer)):
        raise ValueError(f"{name}: start must be bool (or integer 0/1); received dtype {start.dtype}")
    batch = x.shape[1]
    for path, leaf in jax.tree_util.tree_leaves_with_path(carry):
        if leaf.ndim < 1 or leaf.shape[0] != batch:
            raise ValueError(
                f"{name}: carry leaf {jax.tree_util.keystr(path)} must have batch size B = {batch} "
                f"(from x {tuple(x.shape)}) as its leading dimension; received shape {leaf.shape}"
            )
