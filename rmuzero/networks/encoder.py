"""The history encoder: observations so far -> latent state.

Dimensions: T time, B batch, F observation features, A actions, H memory
width, D latent size.

``s_t = project(memory(embed(o_t [, one_hot(a_{t-1}), r_{t-1}])))``, with the
memory reset where ``start`` is set. Same calling convention as every memory
model (docs/design.md section 3), so it runs over a whole window in one scan while
learning and one step at a time while acting::

    import jax, jax.numpy as jnp
    from rmuzero.networks import HistoryEncoder

    encoder = HistoryEncoder(memory="ffm", features=64, latent_size=32)
    obs = jnp.zeros((10, 4, 8))                      # [T, B, F]
    start = jnp.zeros((10, 4), bool).at[0].set(True)  # [T, B]
    carry = encoder.initialize_carry(4)
    params = encoder.init(jax.random.key(0), carry, (obs, start))
    carry, latents = encoder.apply(params, carry, (obs, start))  # latents [T, B, D]

With ``num_actions`` set and/or ``prev_reward=True`` the inputs are
``(obs, start, prev_action [T, B] int32, prev_reward [T, B] float32)``; the
previous action and reward must be those of the same episode (zero/any at a
start: they are masked to zero where ``start`` is set, so the first step of an
episode never sees the previous episode's last action or reward).
"""

from __future__ import annotations

from typing import Any, Mapping

import chex
import flax.linen as nn
import jax.numpy as jnp
from flax.core import FrozenDict

from rmuzero.networks.stack import MemoryStack
from rmuzero.networks.torso import ObservationTorso


class HistoryEncoder(nn.Module):
    """Embedding -> :class:`MemoryStack` -> latent projection.

    Attributes:
      memory: memory model name (``ffm``, ``gru``, ``linear_attention``, ``lru``,
        ``lstm``, ``mingru``, ``s5``).
      features: embedding and memory width ``H``.
      num_layers: memory layers.
      latent_size: ``D``.
      num_actions: if set, the previous action (one-hot over ``A``) is an input.
      prev_reward: if True, the previous reward is an input.
      memory_kwargs: options of the memory layer class.
      torso: how observation leaves become features (``rmuzero.networks.torso``):
        ``auto`` (by shape: vectors as they are, images and grids through a conv
        stack) or ``flatten``. ``obs`` may then be any tree of ``[T, B, ...]`` leaves.
    """

    memory: str = "ffm"
    features: int = 128
    num_layers: int = 1
    latent_size: int = 128
    num_actions: int | None = None
    prev_reward: bool = False
    memory_kwargs: Mapping[str, Any] = FrozenDict()
    torso: str = "auto"

    @nn.nowrap
    def _stack(self, **module_kwargs) -> MemoryStack:
        return MemoryStack(
            memory=self.memory,
            features=self.features,
            num_layers=self.num_layers,
            layer_kwargs=FrozenDict(self.memory_kwargs),
            **module_kwargs,
        )

    @property
    def _extra_inputs(self) -> bool:
        return self.num_actions is not None or self.prev_reward

    @nn.compact
    def __call__(self, carry: tuple, inputs: tuple, positions: chex.Array | None = None) -> tuple[tuple, chex.Array]:
        """``(carry, inputs) -> (carry, latents [T, B, D])``; with ``positions [R, B]`` (time
        indices per batch entry) the latents at those steps only, ``[R, B, D]``, computed there
        alone after the memory's scan (the same values as gathering the full output)."""
        expected = 4 if self._extra_inputs else 2
        if not isinstance(inputs, (tuple, list)) or len(inputs) != expected:
            names = "(obs, start, prev_action, prev_reward)" if self._extra_inputs else "(obs, start)"
            raise ValueError(
                f"HistoryEncoder: inputs must be the {expected}-tuple {names} for "
                f"num_actions={self.num_actions}, prev_reward={self.prev_reward}; "
                f"received {type(inputs).__name__} of length {len(inputs) if isinstance(inputs, (tuple, list)) else 'n/a'}"
            )
        obs, start = inputs[0], inputs[1]
        if hasattr(obs, "ndim") and obs.ndim != 3:
            raise ValueError(
                f"HistoryEncoder: obs must be [T, B, F] (or a tree of [T, B, ...] leaves); received shape {obs.shape}"
            )
        if hasattr(obs, "ndim"):  # one vector per step: as it is (no torso parameters)
            features = [obs.astype(jnp.float32)]
        else:
            features = [ObservationTorso(self.torso, name="torso")(obs)]
        lead = features[0].shape[:2]
        if self._extra_inputs:
            prev_action, prev_reward = inputs[2], inputs[3]
            for label, value in (("prev_action", prev_action), ("prev_reward", prev_reward)):
                if getattr(value, "shape", None) != lead:
                    raise ValueError(
                        f"HistoryEncoder: {label} must be [T, B] = {tuple(lead)}; "
                        f"received {getattr(value, 'shape', None)}"
                    )
            keep = ~start.astype(bool)[..., None]
            if self.num_actions is not None:
                one_hot = nn.one_hot(prev_action, self.num_actions, dtype=jnp.float32)
                features.append(jnp.where(keep, one_hot, 0.0))
            if self.prev_reward:
                features.append(jnp.where(keep, prev_reward.astype(jnp.float32)[..., None], 0.0))
        x = nn.gelu(nn.Dense(self.features, name="embed")(jnp.concatenate(features, axis=-1)))
        carry, h = self._stack(name="memory")(carry, (x, start), positions)
        return carry, nn.Dense(self.latent_size, name="latent")(h)

    @nn.nowrap
    def initialize_carry(self, batch_size: int) -> tuple:
        """The memory stack's identity carry, leaves ``[B, ...]``."""
        return self._stack(parent=None).initialize_carry(batch_size)
