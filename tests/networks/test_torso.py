"""The observation torso (rmuzero/networks/torso.py): one test per observation kind."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rmuzero.networks import HistoryEncoder
from rmuzero.networks.torso import ConvStack, ObservationTorso, patch_conv

T, B = 3, 2


def _init_apply(module, x):
    params = module.init(jax.random.PRNGKey(0), x)
    return params, module.apply(params, x)


def test_vector_passes_through_without_parameters():
    x = jax.random.normal(jax.random.PRNGKey(1), (T, B, 7))
    params, out = _init_apply(ObservationTorso(), {"v": x})
    assert jax.tree.leaves(params) == []
    np.testing.assert_array_equal(out, x)


def test_vector_observation_keeps_the_encoders_parameters():
    """A single vector (POPGym) is embedded as before the torso existed: no torso parameters."""
    encoder = HistoryEncoder(memory="ffm", features=16, latent_size=8)
    carry = encoder.initialize_carry(B)
    start = jnp.zeros((T, B), bool).at[0].set(True)
    params = encoder.init(jax.random.PRNGKey(0), carry, (jnp.zeros((T, B, 5)), start))
    assert sorted(params["params"]) == ["embed", "latent", "memory"]


def test_conv_stack_output_sizes_by_hand():
    """128 -> 64 -> 32 -> 16 -> 8 (stride 2 while the side is above 12): 8 * 8 * 32 = 2048;
    MinAtar's 10 x 10 keeps every cell with one stride-1 conv: 10 * 10 * 32 = 3200."""
    _, pixels = _init_apply(ConvStack(), jnp.zeros((1, 128, 128, 3)))
    assert pixels.shape == (1, 2048)
    _, grid = _init_apply(ConvStack(), jnp.zeros((1, 10, 10, 4)))
    assert grid.shape == (1, 3200)


@pytest.mark.parametrize("shape", [(4, 10, 10, 4), (2, 32, 32, 3)], ids=["minatar_stride_1", "frames_stride_2"])
def test_patch_convolution_equals_flax_convolution(shape):
    """The CPU's patches-times-kernel convolution and flax's lax convolution, the same parameters
    (initialised once, by either): outputs and gradients agree to float rounding. 32 x 32 frames
    take the stride-2 path twice (32 -> 16 -> 8), then one stride-1 conv; 10 x 10 only the last."""
    x = jax.random.normal(jax.random.PRNGKey(4), shape)
    params = jax.jit(ConvStack(patches=False).init)(jax.random.PRNGKey(0), x)
    assert jax.tree.structure(params) == jax.tree.structure(
        jax.eval_shape(ConvStack(patches=True).init, jax.random.PRNGKey(0), x)
    )

    def loss(params, patches):
        return jnp.sum(jnp.sin(ConvStack(patches=patches).apply(params, x)))

    value_and_grad = jax.jit(jax.value_and_grad(loss), static_argnums=1)  # one program each, not op by op
    (lax_value, lax_grads), (patch_value, patch_grads) = (value_and_grad(params, patches) for patches in (False, True))
    np.testing.assert_allclose(patch_value, lax_value, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(patch_grads), jax.tree.leaves(lax_grads)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert float(jnp.max(jnp.abs(jax.tree.leaves(lax_grads)[1]))) > 1e-2  # the kernel's gradient is not zero


def test_patch_convolution_refuses_what_it_does_not_compute():
    x, kernel = jnp.zeros((1, 4, 4, 2)), jnp.zeros((3, 3, 1, 8))
    with pytest.raises(ValueError, match=r"feature_group_count=2, .*valid: one feature group and dilations of 1"):
        patch_conv(x, kernel, (1, 1), "SAME", feature_group_count=2)


def test_uint8_pixels_equal_floats_divided_by_255():
    pixels = jax.random.randint(jax.random.PRNGKey(2), (T, B, 16, 16, 3), 0, 256).astype(jnp.uint8)
    torso = ObservationTorso()
    params, out = _init_apply(torso, {"image": pixels})
    floats = torso.apply(params, {"image": pixels.astype(jnp.float32) / 255.0})
    assert out.shape == (T, B, 8 * 8 * 32)
    np.testing.assert_allclose(out, floats, rtol=1e-6, atol=1e-6)


def test_grid_without_channels_is_an_image_of_one_channel():
    grid = jax.random.randint(jax.random.PRNGKey(3), (T, B, 10, 10), 0, 3)  # int32, e.g. a board
    torso = ObservationTorso()
    params, out = _init_apply(torso, {"board": grid})
    as_image = torso.apply(params, {"board": grid[..., None].astype(jnp.float32)})
    np.testing.assert_array_equal(out, as_image)
    assert out.shape == (T, B, 10 * 10 * 32)


def test_nested_observation_concatenates_each_leaf_in_tree_order():
    tree = {
        "a_image": jnp.ones((T, B, 10, 10, 2)),
        "b_scalar": jnp.full((T, B), 3, jnp.int32),
        "c_vector": jnp.arange(T * B * 4, dtype=jnp.float32).reshape(T, B, 4),
    }
    params, out = _init_apply(ObservationTorso(), tree)
    image = (
        ConvStack()
        .apply({"params": params["params"]["conv_0"]}, tree["a_image"].reshape(T * B, 10, 10, 2))
        .reshape(T, B, -1)
    )
    expected = jnp.concatenate([image, jnp.full((T, B, 1), 3.0), tree["c_vector"]], axis=-1)
    np.testing.assert_array_equal(out, expected)


def test_flatten_uses_no_convolution():
    tree = {"image": jnp.ones((T, B, 10, 10, 2), jnp.uint8) * 255, "vector": jnp.ones((T, B, 3))}
    params, out = _init_apply(ObservationTorso(kind="flatten"), tree)
    assert jax.tree.leaves(params) == []
    np.testing.assert_array_equal(out, jnp.ones((T, B, 203)))


def test_leaves_must_share_time_and_batch():
    with pytest.raises(ValueError, match=r"lead with \[T, B\] = \(3, 2\); leaf 1 has shape \(3, 5, 4\)"):
        _init_apply(ObservationTorso(), {"a": jnp.zeros((T, B, 4)), "b": jnp.zeros((T, 5, 4))})
