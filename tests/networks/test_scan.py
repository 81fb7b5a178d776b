"""The resettable scan and every monoid: associativity, identity, strategies.

Each test compares the scan (or an operator) with an independent computation:
a plain Python loop over the recurrence as the paper writes it.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rmuzero.networks import scan as scan_lib
from rmuzero.networks.memoroids import (
    AttentionState,
    DiagonalMonoid,
    DiagonalState,
    FFMMonoid,
    FFMState,
    LogDiagonalMonoid,
    LogDiagonalState,
    SumMonoid,
)

N = 5  # elements per leading dimension in the operator tests


def _complex(key, shape):
    re, im = jax.random.normal(key, (2,) + shape)
    return (re + 1j * im).astype(jnp.complex64)


def _ffm_elements(key):
    k1, k2 = jax.random.split(key)
    return FFMState(_complex(k1, (N, 3, 2)), jax.random.randint(k2, (N,), 0, 4).astype(jnp.int32))


def _diagonal_elements(key):
    k1, k2 = jax.random.split(key)
    return DiagonalState(0.9 * _complex(k1, (N, 3)) / 2, _complex(k2, (N, 3)))


def _log_diagonal_elements(key):
    k1, k2 = jax.random.split(key)
    return LogDiagonalState(-jax.random.uniform(k1, (N, 3)), jax.random.normal(k2, (N, 3)))


def _sum_elements(key):
    k1, k2 = jax.random.split(key)
    return AttentionState(jax.random.normal(k1, (N, 2, 2, 2)), jax.random.normal(k2, (N, 2, 2)))


FFM_LOG_DECAY = (-jnp.array([0.1, 0.5, 1.0])[:, None] + 1j * jnp.array([0.3, 2.0])[None, :]).astype(jnp.complex64)
MONOIDS = {
    "ffm": (FFMMonoid(FFM_LOG_DECAY), _ffm_elements),
    "diagonal": (DiagonalMonoid(), _diagonal_elements),
    "log_diagonal": (LogDiagonalMonoid(), _log_diagonal_elements),
    "sum": (SumMonoid(), _sum_elements),
}


def _assert_tree_close(a, b, rtol=1e-5, atol=1e-5):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol), a, b)


@pytest.mark.parametrize("name", sorted(MONOIDS))
@pytest.mark.parametrize("with_flags", [False, True])
def test_operator_is_associative(name, with_flags):
    monoid, sample = MONOIDS[name]
    a, b, c = (sample(k) for k in jax.random.split(jax.random.key(0), 3))
    if with_flags:
        flags = [jax.random.bernoulli(k, 0.5, (N,)) for k in jax.random.split(jax.random.key(1), 3)]
    else:
        flags = [jnp.zeros((N,), bool)] * 3

    def op(x, y):
        return scan_lib.reset_combine(monoid, x, y)

    left = op(op((a, flags[0]), (b, flags[1])), (c, flags[2]))
    right = op((a, flags[0]), op((b, flags[1]), (c, flags[2])))
    _assert_tree_close(left, right)


@pytest.mark.parametrize("name", sorted(MONOIDS))
def test_identity_is_neutral_and_start_discards_the_left(name):
    monoid, sample = MONOIDS[name]
    a, b = (sample(k) for k in jax.random.split(jax.random.key(2), 2))
    identity = jax.tree.map(lambda e, x: jnp.broadcast_to(e, x.shape).astype(x.dtype), monoid.identity(a), a)
    _assert_tree_close(monoid.combine(identity, b), b)
    _assert_tree_close(monoid.combine(b, identity), b)
    flagged, _ = scan_lib.reset_combine(monoid, (a, jnp.zeros((N,), bool)), (b, jnp.ones((N,), bool)))
    _assert_tree_close(flagged, b)


def test_ffm_combine_decays_by_the_complex_exponential_of_the_steps():
    """Against numpy in complex128: X exp(t' log_decay) + X' for t' = 0, 1, 5, 40 (the associative
    scan's inner combines carry t' > 1)."""
    steps = jnp.array([0, 1, 5, 40], jnp.int32)
    a = FFMState(_complex(jax.random.key(7), (4, 3, 2)), jnp.array([3, 0, 2, 9], jnp.int32))
    b = FFMState(_complex(jax.random.key(8), (4, 3, 2)), steps)
    combined = FFMMonoid(FFM_LOG_DECAY).combine(a, b)
    decay = np.exp(np.asarray(steps, np.float64)[:, None, None] * np.asarray(FFM_LOG_DECAY, np.complex128))
    np.testing.assert_allclose(
        np.asarray(combined.memory), np.asarray(a.memory) * decay + np.asarray(b.memory), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_array_equal(np.asarray(combined.steps), [3, 1, 7, 49])


def _loop_ffm(carry_memory, inputs, start, log_decay):
    """FFM as a plain loop: S_t = S_{t-1} * exp(log_decay) + x_t, zeroed where start."""
    decay = np.exp(np.asarray(log_decay))
    state = np.asarray(carry_memory).copy()
    outputs = []
    for t in range(inputs.shape[0]):
        state = np.where(np.asarray(start[t])[:, None, None], 0, state) * decay + np.asarray(inputs[t])
        outputs.append(state.copy())
    return np.stack(outputs)


@pytest.mark.parametrize(
    "strategy,chunk_size", [("sequential", 4), ("associative", 4), ("chunked", 4), ("chunked", 5), ("chunked", 64)]
)
def test_strategies_match_a_plain_loop(strategy, chunk_size):
    num_steps, batch = 13, 3
    k1, k2, k3 = jax.random.split(jax.random.key(3), 3)
    inputs = _complex(k1, (num_steps, batch, 3, 2))
    start = jax.random.bernoulli(k2, 0.2, (num_steps, batch)).at[0, 0].set(True)
    carry = FFMState(_complex(k3, (batch, 3, 2)), jnp.full((batch,), 7, jnp.int32))
    elements = FFMState(inputs, jnp.ones((num_steps, batch), jnp.int32))
    scan = jax.jit(
        lambda c, e, s: scan_lib.resettable_scan(
            FFMMonoid(FFM_LOG_DECAY), c, e, s, strategy=strategy, chunk_size=chunk_size
        )
    )
    states = scan(carry, elements, start)
    expected = _loop_ffm(carry.memory, inputs, start, FFM_LOG_DECAY)
    np.testing.assert_allclose(np.asarray(states.memory), expected, rtol=1e-5, atol=1e-5)
    # The step count restarts at 1 on a start and otherwise keeps counting from the carry.
    steps = np.asarray(carry.steps).copy()
    for t in range(num_steps):
        steps = np.where(np.asarray(start[t]), 0, steps) + 1
        np.testing.assert_array_equal(np.asarray(states.steps[t]), steps)


@pytest.mark.slow
def test_long_sequences_agree_across_strategies_in_relative_terms():
    """T = 1024 with slow decay: magnitudes reach tens, so compare relatively."""
    num_steps, batch = 1024, 2
    log_decay = (-jnp.array([1e-3, 1e-2])[:, None] + 1j * jnp.array([0.01, 0.1])[None, :]).astype(jnp.complex64)
    inputs = _complex(jax.random.key(4), (num_steps, batch, 2, 2))
    start = jnp.zeros((num_steps, batch), bool).at[500, 1].set(True)
    carry = FFMState(jnp.zeros((batch, 2, 2), jnp.complex64), jnp.zeros((batch,), jnp.int32))
    elements = FFMState(inputs, jnp.ones((num_steps, batch), jnp.int32))

    def run(strategy):
        scan = jax.jit(
            lambda c, e, s: scan_lib.resettable_scan(FFMMonoid(log_decay), c, e, s, strategy=strategy, chunk_size=100)
        )
        return scan(carry, elements, start).memory

    results = {s: run(s) for s in ("sequential", "associative", "chunked")}
    scale = float(jnp.max(jnp.abs(results["sequential"])))
    assert scale > 10.0  # the regime the tolerance is for
    for s in ("associative", "chunked"):
        np.testing.assert_allclose(
            np.asarray(results[s]), np.asarray(results["sequential"]), rtol=1e-4, atol=1e-4 * scale
        )


def test_unknown_strategy_and_bad_chunk_size_are_rejected():
    monoid, sample = MONOIDS["sum"]
    elements = sample(jax.random.key(0))
    carry = jax.tree.map(lambda x: x[0], elements)
    elements = jax.tree.map(lambda x: x[:, None], elements)  # [T=N, B=1, ...]
    carry = jax.tree.map(lambda x: x[None], carry)
    start = jnp.zeros((N, 1), bool)
    with pytest.raises(ValueError, match="valid: auto, sequential, associative, chunked"):
        scan_lib.resettable_scan(monoid, carry, elements, start, strategy="parallel")
    with pytest.raises(ValueError, match="chunk_size must be a positive integer"):
        scan_lib.resettable_scan(monoid, carry, elements, start, strategy="chunked", chunk_size=0)
