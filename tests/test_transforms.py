"""Tests of rmuzero/networks/transforms.py (value transform h and two-hot support)."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rmuzero.networks.transforms import (
    DiscreteSupport,
    h,
    h_inv,
    logits_to_scalar,
    scalar_to_two_hot,
)

UNIT = DiscreteSupport(min_value=-1.0, max_value=1.0, num_bins=3)  # points -1, 0, 1

# Jitted once per (support, transform) and reused: eager dispatch compiles every small op.
_h, _h_inv = jax.jit(h), jax.jit(h_inv)


@functools.lru_cache(maxsize=None)
def _encode(support, transform="signed_hyperbolic"):
    return jax.jit(functools.partial(scalar_to_two_hot, support=support, transform=transform))


@functools.lru_cache(maxsize=None)
def _decode(support, transform="signed_hyperbolic"):
    return jax.jit(functools.partial(logits_to_scalar, support=support, transform=transform))


def _h_float64(x):
    """h written independently, in float64 numpy."""
    x = np.asarray(x, np.float64)
    return np.sign(x) * (np.sqrt(np.abs(x) + 1.0) - 1.0) + 1e-3 * x


def test_h_hand_values():
    # sqrt(4) - 1 + 0.003 = 1.003; sqrt(9) - 1 + 0.008 = 2.008; odd function.
    np.testing.assert_allclose(_h(jnp.array([0.0, 3.0, 8.0, -3.0])), [0.0, 1.003, 2.008, -1.003], rtol=1e-6)
    np.testing.assert_allclose(_h_inv(jnp.array([0.0, 1.003, 2.008, -1.003])), [0.0, 3.0, 8.0, -3.0], rtol=1e-6)


def test_h_matches_float64_formula():
    x = np.concatenate([-np.logspace(-6, 6, 97), [0.0], np.logspace(-6, 6, 97)])
    np.testing.assert_allclose(_h(jnp.asarray(x, jnp.float32)), _h_float64(x), rtol=1e-6, atol=1e-7)


def test_h_inv_inverts_h_over_a_wide_range():
    x = np.concatenate([-np.logspace(-6, 6, 301), [0.0], np.logspace(-6, 6, 301)]).astype(np.float32)
    np.testing.assert_allclose(_h_inv(_h(jnp.asarray(x))), x, rtol=2e-6, atol=2e-6)
    # And the other way round, on points of the transformed space.
    y = np.linspace(-2000.0, 2000.0, 4001).astype(np.float32)
    np.testing.assert_allclose(_h(_h_inv(jnp.asarray(y))), y, rtol=2e-6, atol=2e-6)


def test_h_inv_small_values_are_accurate():
    # POPGym rewards are +-1/51; the inverse must resolve them to float32 precision.
    x = np.linspace(-1.0, 1.0, 2001).astype(np.float32)
    np.testing.assert_allclose(_h_inv(_h(jnp.asarray(x))), x, atol=2e-6)


@pytest.mark.parametrize(
    "x, expected",
    [
        (0.25, [0.0, 0.75, 0.25]),
        (-0.5, [0.5, 0.5, 0.0]),
        (0.0, [0.0, 1.0, 0.0]),
        (-1.0, [1.0, 0.0, 0.0]),
        (1.0, [0.0, 0.0, 1.0]),
        (5.0, [0.0, 0.0, 1.0]),  # clipped to the top of the support
        (-7.0, [1.0, 0.0, 0.0]),  # clipped to the bottom
    ],
)
def test_two_hot_identity_hand_values(x, expected):
    np.testing.assert_allclose(_encode(UNIT, "identity")(x), expected, atol=1e-7)


def test_two_hot_applies_h_first():
    # h(1.25) = sqrt(2.25) - 1 + 0.00125 = 0.50125: mass 0.50125 on 1, the rest on 0.
    np.testing.assert_allclose(_encode(UNIT)(1.25), [0.0, 0.49875, 0.50125], atol=1e-6)
    # h(1000) = 31.64 + 1 > 1: clipped to the top point.
    np.testing.assert_allclose(_encode(UNIT)(1000.0), [0.0, 0.0, 1.0], atol=1e-7)


def test_two_hot_expectation_is_transformed_value():
    support = DiscreteSupport(min_value=-10.0, max_value=10.0, num_bins=41)
    x = np.random.default_rng(0).uniform(-100.0, 100.0, (5, 7)).astype(np.float32)
    probs = _encode(support)(x)
    assert probs.shape == (5, 7, 41)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-6)
    assert float(probs.min()) >= 0.0
    assert int((probs > 0).sum(-1).max()) <= 2
    np.testing.assert_allclose((probs * support.values()).sum(-1), _h_float64(x), rtol=1e-5, atol=1e-5)


def test_two_hot_clips_outside_support():
    support = DiscreteSupport(min_value=-2.0, max_value=3.0, num_bins=6)
    probs = _encode(support, "identity")(jnp.array([-50.0, 50.0, 3.0]))
    np.testing.assert_allclose(probs, np.eye(6)[[0, 5, 5]], atol=1e-7)


@pytest.mark.parametrize("transform", ["signed_hyperbolic", "identity"])
def test_encode_decode_round_trip(transform):
    support = DiscreteSupport(min_value=-5.0, max_value=5.0, num_bins=21)
    x = jnp.array([-20.0, -3.7, -0.01, 0.0, 0.0196, 0.5, 2.2, 20.0])
    logits = jnp.log(_encode(support, transform)(x))
    decoded = _decode(support, transform)(logits)
    if transform == "identity":
        expected = np.clip(np.asarray(x), -5.0, 5.0)  # 20 and -20 lie outside the support
    else:
        expected = np.asarray(x)  # |h(20)| = 3.6 lies inside
    np.testing.assert_allclose(decoded, expected, rtol=1e-5, atol=1e-6)


def test_decode_uniform_logits_is_support_mean():
    support = DiscreteSupport(min_value=-1.0, max_value=3.0, num_bins=5)  # points -1..3, mean 1
    np.testing.assert_allclose(_decode(support, "identity")(jnp.zeros((2, 3, 5))), np.ones((2, 3)), rtol=1e-6)
    decoded = np.asarray(_decode(support)(jnp.zeros((4, 5))))
    # The mean 1 is in h-space: the decoded x satisfies h(x) = 1, a bit below 3 (h(3) = 1.003).
    np.testing.assert_allclose(_h_float64(decoded), np.ones(4), rtol=1e-6)
    assert np.all((decoded > 2.98) & (decoded < 3.0))


def test_support_values_and_step():
    support = DiscreteSupport(min_value=-300, max_value=300, num_bins=601)
    assert support.step == 1.0
    np.testing.assert_array_equal(support.values()[:3], [-300.0, -299.0, -298.0])
    assert hash(support) == hash(DiscreteSupport(-300, 300, 601))


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(min_value=1.0, max_value=1.0, num_bins=3),
        dict(min_value=2.0, max_value=1.0, num_bins=3),
        dict(min_value=0.0, max_value=1.0, num_bins=1),
        dict(min_value=0.0, max_value=1.0, num_bins=2.5),
        dict(min_value=0.0, max_value=1.0, num_bins=True),
        dict(min_value=math.nan, max_value=1.0, num_bins=3),
        dict(min_value=0.0, max_value=math.inf, num_bins=3),
    ],
)
def test_support_rejects_bad_values(kwargs):
    with pytest.raises(ValueError, match="DiscreteSupport"):
        DiscreteSupport(**kwargs)


def test_bad_transform_and_logit_shape_raise():
    with pytest.raises(ValueError, match="transform must be one of"):
        scalar_to_two_hot(0.0, support=UNIT, transform="log")
    with pytest.raises(ValueError, match=r"shape \[\.\.\., 3\].*got \(2, 4\)"):
        logits_to_scalar(jnp.zeros((2, 4)), support=UNIT)
    with pytest.raises(ValueError, match="support must be a DiscreteSupport"):
        scalar_to_two_hot(0.0, support=(-1.0, 1.0, 3))
