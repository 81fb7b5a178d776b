"""GRU and LSTM baselines with the memoroid calling convention.

Dimensions: T time, B batch, F input features, H features.

``carry, y = layer.apply(params, carry, (x [T, B, F], start [T, B]))``: a
``jax.lax.scan`` over time; where ``start[t]`` is set the state is reset to the
initial (zero) state *before* ``x[t]`` is consumed, through ``jnp.where`` so a
NaN in a stale carry cannot leak. With ``positions [R, B]`` the output is that of those
steps only, ``y [R, B, H]``. Input projections of all steps are computed
before the scan, so only the recurrent matrix product is sequential.
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from rmuzero.networks import scan as scan_lib


class LSTMState(NamedTuple):
    """``cell [..., H]`` and ``hidden [..., H]``."""

    cell: chex.Array
    hidden: chex.Array


def _reset(state, flag):
    return jax.tree.map(lambda s: jnp.where(flag[:, None], jnp.zeros_like(s), s), state)


class GRU(nn.Module):
    """Gated recurrent unit (Cho et al., 2014), carry ``[B, H]``."""

    features: int = 128

    @nn.compact
    def __call__(self, carry: chex.Array, inputs: tuple[chex.Array, chex.Array], positions: chex.Array | None = None):
        x, start = inputs
        scan_lib.check_inputs("GRU", carry, x, start)
        scan_lib.check_positions("GRU", positions, x)
        h_size = self.features
        projected = nn.Dense(3 * h_size, name="input")(x)  # [T, B, 3H]: reset, update, candidate
        recurrent = self.param("recurrent", nn.initializers.orthogonal(), (h_size, 3 * h_size))
        recurrent_bias = self.param("recurrent_bias", nn.initializers.zeros, (3 * h_size,))

        def step(h, inp):
            x_t, start_t = inp
            h = _reset(h, start_t)
            hh = h @ recurrent + recurrent_bias
            r = nn.sigmoid(x_t[:, :h_size] + hh[:, :h_size])
            z = nn.sigmoid(x_t[:, h_size : 2 * h_size] + hh[:, h_size : 2 * h_size])
            n = jnp.tanh(x_t[:, 2 * h_size :] + r * hh[:, 2 * h_size :])
            h = (1.0 - z) * n + z * h
            return h, h

        carry, y = jax.lax.scan(step, carry, (projected, start.astype(bool)))
        return carry, scan_lib.at_positions(y, positions)

    @nn.nowrap
    def initialize_carry(self, batch_size: int) -> chex.Array:
        return jnp.zeros((batch_size, self.features), jnp.float32)


class LSTM(nn.Module):
    """Long short-term memory (Hochreiter & Schmidhuber, 1997), carry ``LSTMState [B, H]``."""

    features: int = 128

    @nn.compact
    def __call__(self, carry: LSTMState, inputs: tuple[chex.Array, chex.Array], positions: chex.Array | None = None):
        x, start = inputs
        scan_lib.check_inputs("LSTM", carry, x, start)
        scan_lib.check_positions("LSTM", positions, x)
        h_size = self.features
        projected = nn.Dense(4 * h_size, name="input")(x)  # [T, B, 4H]: input, forget, cell, output
        recurrent = self.param("recurrent", nn.initializers.orthogonal(), (h_size, 4 * h_size))

        def step(state, inp):
            x_t, start_t = inp
            state = _reset(state, start_t)
            gates = x_t + state.hidden @ recurrent
            i, f, g, o = jnp.split(gates, 4, axis=-1)
            cell = nn.sigmoid(f + 1.0) * state.cell + nn.sigmoid(i) * jnp.tanh(g)
            hidden = nn.sigmoid(o) * jnp.tanh(cell)
            return LSTMState(cell, hidden), hidden

        carry, y = jax.lax.scan(step, carry, (projected, start.astype(bool)))
        return carry, scan_lib.at_positions(y, positions)

    @nn.nowrap
    def initialize_carry(self, batch_size: int) -> LSTMState:
        zeros = jnp.zeros((batch_size, self.features), jnp.float32)
        return LSTMState(zeros, zeros)
