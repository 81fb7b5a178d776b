"""The observation torso: any observation tree -> one feature vector per step.

Dimensions: T time, B batch, H / W an image's or grid's height and width,
C channels, E the torso's output features.

Each leaf of the observation (a vector, an image, a grid, a scalar; a dict or
tuple of them: jumanji's named tuples, the agent's ``{"observation",
"previous"}``) is read by the layer its shape calls for, then everything is
concatenated, leaves in the tree's order:

==================  ==========================  ====================================
leaf (after T, B)   kind                        torso
==================  ==========================  ====================================
``[]``              scalar                      as one feature
``[F]``             vector                      as it is (no parameters)
``[H, W]``          grid without channels       conv stack, one channel
``[H, W, C]``       image (MinAtar, pixels)     conv stack
more axes           anything else               flattened
==================  ==========================  ====================================

Integer and bool leaves become float32; uint8 leaves (pixels) are divided by
255. The conv stack: 3x3 convolutions with GELU, stride 2 while the smaller
side is above 12 (POPGym Arcade's 128x128 frames: 64, 32, 16, 8), then one of
stride 1 (MinAtar's 10x10 grids keep every cell), flattened.

On a CPU each convolution is computed as a matrix product of the image's 3x3
patches with the kernel (:func:`patch_conv`): XLA:CPU runs a convolution and
its gradient inside a loop, as in the learner's scan over updates, about ten
times slower than the same convolution alone, and a matrix product it does not
slow down (docs/experiments/2026-12-08-conv-torso-on-cpu.md). The parameters
are ``flax.linen.Conv``'s either way.

``kind="flatten"`` (``network.torso=flatten``) flattens every leaf instead: no
convolution anywhere.

A single vector observation (POPGym) passes through unchanged, so the encoder's
parameters are those it had before this module existed.
"""

from __future__ import annotations

from typing import Sequence

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

TORSO_KINDS = ("auto", "flatten")


def _as_float(x: chex.Array) -> chex.Array:
    if x.dtype == jnp.uint8:
        return x.astype(jnp.float32) / 255.0
    return x.astype(jnp.float32)


def patch_conv(
    lhs,
    rhs,
    window_strides,
    padding,
    lhs_dilation=None,
    rhs_dilation=None,
    dimension_numbers=None,
    feature_group_count=1,
    precision=None,
):
    """``lax.conv_general_dilated`` for ``flax.linen.Conv`` (NHWC images, HWIO kernel), as each
    output position's input patch [kh * kw * C] times the kernel reshaped to [kh * kw * C, O]."""
    if feature_group_count != 1 or any(d != 1 for d in (*(lhs_dilation or ()), *(rhs_dilation or ()))):
        raise ValueError(
            f"patch_conv: feature_group_count={feature_group_count}, lhs_dilation={lhs_dilation}, "
            f"rhs_dilation={rhs_dilation}; valid: one feature group and dilations of 1 (ConvStack's convolutions)"
        )
    patches = jax.lax.conv_general_dilated_patches(
        lhs, rhs.shape[:-2], window_strides, padding, dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=precision
    )  # [N, H', W', C * kh * kw], the input channel outermost
    kernel = jnp.moveaxis(rhs, -2, 0).reshape(-1, rhs.shape[-1])  # [C * kh * kw, O], the same order
    return jnp.matmul(patches, kernel, precision=precision)


class ConvStack(nn.Module):
    """``[N, H, W, C] -> [N, features]``: 3x3 convs, stride 2 while min(H, W) > 12, then stride 1.
    ``patches``: convolve as :func:`patch_conv` (None: on a CPU)."""

    channels: Sequence[int] = (32, 32, 32, 32)
    downsample_above: int = 12
    patches: bool | None = None

    @nn.compact
    def __call__(self, x: chex.Array) -> chex.Array:
        patches = jax.default_backend() == "cpu" if self.patches is None else self.patches
        conv = patch_conv if patches else None  # None: flax's lax.conv_general_dilated
        for channels in self.channels:
            stride = 2 if min(x.shape[-3], x.shape[-2]) > self.downsample_above else 1
            x = nn.gelu(
                nn.Conv(channels, (3, 3), strides=(stride, stride), padding="SAME", conv_general_dilated=conv)(x)
            )
            if stride == 1:
                break
        return x.reshape(x.shape[:-3] + (-1,))


class ObservationTorso(nn.Module):
    """``observation tree (leaves [T, B, ...]) -> [T, B, E]`` float32 (module docstring)."""

    kind: str = "auto"

    @nn.compact
    def __call__(self, observation) -> chex.Array:
        if self.kind not in TORSO_KINDS:
            raise ValueError(f"network.torso={self.kind!r}; valid: {', '.join(TORSO_KINDS)}")
        leaves = jax.tree_util.tree_leaves(observation)
        if not leaves:
            raise ValueError("ObservationTorso: the observation has no arrays")
        lead = leaves[0].shape[:2]
        parts = []
        for i, leaf in enumerate(leaves):
            if leaf.ndim < 2 or leaf.shape[:2] != lead:
                raise ValueError(
                    f"ObservationTorso: every leaf must lead with [T, B] = {tuple(lead)}; "
                    f"leaf {i} has shape {tuple(leaf.shape)}"
                )
            x = _as_float(leaf)
            rest = x.shape[2:]
            if self.kind == "auto" and len(rest) in (2, 3) and min(rest[:2]) > 1:
                image = x[..., None] if len(rest) == 2 else x
                flat = image.reshape((-1,) + image.shape[2:])
                parts.append(ConvStack(name=f"conv_{i}")(flat).reshape(lead + (-1,)))
            else:
                parts.append(x.reshape(lead + (-1,)))
        return parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=-1)
