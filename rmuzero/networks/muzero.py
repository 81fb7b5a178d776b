"""The MuZero model: history encoder (representation), dynamics and prediction.

Dimensions: T time, B batch, F observation features, A actions, D latent size,
S_v / S_r value / reward support sizes.

- representation ``s_t = scale(encoder(o_1..o_t))`` (the history encoder, with
  the memory reset by ``start``);
- dynamics ``(s, a) -> (reward logits [S_r], s')`` with a residual MLP,
  ``s' = scale(s + mlp([s, one_hot(a)]))``;
- prediction ``s -> (policy logits [A], value logits [S_v])``.
Latents are min-max scaled to [0, 1] per example (MuZero, Appendix G), so the
dynamics cannot drift them out of range during an unroll.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple, Sequence

import chex
import flax.linen as nn
import jax.numpy as jnp
from flax.core import FrozenDict

from rmuzero.networks.encoder import HistoryEncoder


def scale_latent(latent: chex.Array) -> chex.Array:
    """Min-max scales ``[..., D]`` to [0, 1] along D."""
    low = jnp.min(latent, axis=-1, keepdims=True)
    high = jnp.max(latent, axis=-1, keepdims=True)
    return (latent - low) / jnp.maximum(high - low, 1e-5)


class ModelOutput(NamedTuple):
    """Heads at one latent: ``policy_logits [..., A]``, ``value_logits [..., S_v]``."""

    policy_logits: chex.Array
    value_logits: chex.Array


class DynamicsOutput(NamedTuple):
    """``reward_logits [..., S_r]`` of the transition and ``next_latent [..., D]``."""

    reward_logits: chex.Array
    next_latent: chex.Array


class _MLP(nn.Module):
    sizes: Sequence[int]

    @nn.compact
    def __call__(self, x):
        for size in self.sizes:
            x = nn.relu(nn.LayerNorm()(nn.Dense(size)(x)))
        return x


class MuZeroNetwork(nn.Module):
    """Representation, dynamics and prediction in one parameter tree.

    Use ``apply(..., method=...)`` with :meth:`encode`, :meth:`predict`,
    :meth:`dynamics`; :meth:`__call__` touches every submodule (for ``init``).
    """

    num_actions: int
    memory: str = "ffm"
    features: int = 128
    num_layers: int = 1
    latent_size: int = 128
    memory_kwargs: Mapping[str, Any] = FrozenDict()
    head_sizes: Sequence[int] = (128,)
    value_bins: int = 101
    reward_bins: int = 101
    separate_reward_trunk: bool = True
    torso: str = "auto"  # rmuzero.networks.torso: how observation leaves become features

    def setup(self):
        self.encoder = HistoryEncoder(
            memory=self.memory,
            features=self.features,
            num_layers=self.num_layers,
            latent_size=self.latent_size,
            memory_kwargs=FrozenDict(self.memory_kwargs),
            torso=self.torso,
        )
        self.dynamics_trunk = _MLP(tuple(self.head_sizes))
        self.dynamics_latent = nn.Dense(self.latent_size)
        self.reward_head = nn.Dense(self.reward_bins, kernel_init=nn.initializers.zeros)
        if self.separate_reward_trunk:
            self.reward_trunk = _MLP(tuple(self.head_sizes))
        self.prediction_trunk = _MLP(tuple(self.head_sizes))
        self.policy_head = nn.Dense(self.num_actions, kernel_init=nn.initializers.zeros)
        self.value_head = nn.Dense(self.value_bins, kernel_init=nn.initializers.zeros)

    def encode(self, carry, inputs: tuple[chex.Array, chex.Array], positions: chex.Array | None = None):
        """``(carry, (obs [T, B, F] or a tree of [T, B, ...], start [T, B])) -> (carry, latents [T, B, D])``; with
        ``positions [R, B]`` only the latents at those steps, ``[R, B, D]``."""
        carry, latents = self.encoder(carry, inputs, positions)
        return carry, scale_latent(latents)

    def predict(self, latent: chex.Array) -> ModelOutput:
        """``latent [..., D] -> ModelOutput``."""
        h = self.prediction_trunk(latent)
        return ModelOutput(self.policy_head(h), self.value_head(h))

    def dynamics(self, latent: chex.Array, action: chex.Array) -> DynamicsOutput:
        """``(latent [..., D], action [...] int) -> DynamicsOutput``.

        One MLP ``h`` of ``(latent, one_hot(action))`` makes the next latent
        ``latent + W h``; the reward is read from ``h`` too, or, with
        ``separate_reward_trunk``, from a second MLP of the same input, so that the
        reward loss does not shape the features of the next latent (whose value the
        search adds to the reward of every action it tries).
        """
        if action.shape != latent.shape[:-1]:
            raise ValueError(
                f"dynamics: action must have shape {latent.shape[:-1]} (latent {latent.shape} minus D); "
                f"received {action.shape}"
            )
        x = jnp.concatenate([latent, nn.one_hot(action, self.num_actions, dtype=latent.dtype)], axis=-1)
        h = self.dynamics_trunk(x)
        next_latent = scale_latent(latent + self.dynamics_latent(h))
        reward_features = self.reward_trunk(x) if self.separate_reward_trunk else h
        return DynamicsOutput(self.reward_head(reward_features), next_latent)

    def __call__(self, carry, inputs):
        carry, latents = self.encode(carry, inputs)
        action = jnp.zeros(latents.shape[:-1], jnp.int32)
        return carry, self.predict(latents), self.dynamics(latents, action)

    @nn.nowrap
    def initialize_carry(self, batch_size: int):
        """The encoder's identity carry, leaves ``[B, ...]``."""
        return HistoryEncoder(
            memory=self.memory,
            features=self.features,
            num_layers=self.num_layers,
            latent_size=self.latent_size,
            memory_kwargs=FrozenDict(self.memory_kwargs),
            parent=None,
        ).initialize_carry(batch_size)
