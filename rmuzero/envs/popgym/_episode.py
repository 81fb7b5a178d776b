"""Action checking and timestep building shared by the POPGym families.

One place owns two rules every family follows:

- the action rule: ``step`` takes an integer scalar action (shape ``()``); a
  wrong shape or dtype raises a one-line ``ValueError`` when ``step`` is called
  or traced; an out-of-range value (which cannot raise inside ``jit``) is
  clipped to ``[0, num_actions - 1]``;
- the episode-end rule: the reference's ``terminated`` gives discount 0, its
  ``truncated`` (time limit) gives discount 1, either ends the episode
  (``StepType.LAST``). When the reference reports both on the same step,
  termination wins (discount 0): there is no future to bootstrap from.
"""

from __future__ import annotations

import chex
import jax.numpy as jnp
from jumanji.types import StepType, TimeStep


def checked_action(action: chex.Array, *, num_actions: int, env_name: str) -> chex.Array:
    """Validates the static shape/dtype of ``action`` and clips its value.

    Args:
      action: integer scalar, shape ``()``.
      num_actions: size of the discrete action space.
      env_name: name used in the error message.

    Returns:
      int32 scalar in ``[0, num_actions - 1]``.

    Raises:
      ValueError: if ``action`` is not an integer scalar.
    """
    action = jnp.asarray(action)
    if action.shape != () or not jnp.issubdtype(action.dtype, jnp.integer):
        raise ValueError(
            f"{env_name}.step: action must be an integer scalar (shape (), integer dtype) in "
            f"[0, {num_actions - 1}]; got shape {action.shape} dtype {action.dtype}"
        )
    return jnp.clip(action, 0, num_actions - 1).astype(jnp.int32)


def first_timestep(observation: chex.Array) -> TimeStep:
    """The ``StepType.FIRST`` timestep: reward 0, discount 1, empty extras."""
    return TimeStep(
        step_type=jnp.asarray(StepType.FIRST, jnp.int8),
        reward=jnp.zeros((), jnp.float32),
        discount=jnp.ones((), jnp.float32),
        observation=observation,
        extras={},
    )


def step_timestep(
    *,
    reward: chex.Array,
    observation: chex.Array,
    terminated: chex.Array,
    truncated: chex.Array,
) -> TimeStep:
    """A ``MID`` or ``LAST`` timestep from the reference's flags.

    Args:
      reward: float scalar.
      observation: the observation after the step.
      terminated: bool scalar, the reference's ``terminated`` (discount 0).
      truncated: bool scalar, the reference's ``truncated`` (discount 1 unless
        also terminated).
    """
    done = jnp.logical_or(terminated, truncated)
    return TimeStep(
        step_type=jnp.where(done, StepType.LAST, StepType.MID).astype(jnp.int8),
        reward=jnp.asarray(reward, jnp.float32),
        discount=jnp.where(terminated, 0.0, 1.0).astype(jnp.float32),
        observation=observation,
        extras={},
    )
