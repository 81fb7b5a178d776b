"""Acting: B environments stepped together, one search per step, records for the replay.

Dimensions: B environments, T acting steps, F observation size, A actions.

The encoder carry is threaded through a ``lax.scan`` over steps and reset by
the start flags (inside the encoder); every step stores, with its observation,
the carry *before* it and the observation's index in its episode, so the
learner can begin a sequence at an episode start or at a segment boundary.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp

from rmuzero.agent.model import Model, Params
from rmuzero.envs.wrappers import AgentEnv, AgentState, AgentStep
from rmuzero.replay.buffer import StepRecord


class ActorState(NamedTuple):
    """Acting state of B environments."""

    env_state: AgentState
    step: AgentStep  # the timestep carrying o_t (obs [B, F], start [B], ...)
    carry: Any  # encoder carry before consuming o_t, leaves [B, ...]


def invalid_actions(step: AgentStep) -> chex.Array | None:
    """``[B, A]`` bool, True where the action may not be taken, or None without a mask."""
    return None if step.action_mask is None else ~step.action_mask


def explore(
    key: chex.PRNGKey, action: chex.Array, invalid: chex.Array | None, num_actions: int, epsilon: float
) -> chex.Array:
    """``action [B]`` with each entry, with probability ``epsilon``, replaced by a uniform valid action."""
    replace_key, uniform_key = jax.random.split(key)
    logits = jnp.zeros(action.shape + (num_actions,))
    if invalid is not None:
        logits = jnp.where(invalid, -jnp.inf, logits)
    uniform = jax.random.categorical(uniform_key, logits).astype(action.dtype)
    return jnp.where(jax.random.uniform(replace_key, action.shape) < epsilon, uniform, action)


def act_step(
    model: Model, env: AgentEnv, params: Params, actor: ActorState, key: chex.PRNGKey, epsilon: float = 0.0
) -> tuple[ActorState, tuple[StepRecord, AgentStep]]:
    """Encodes o_t, searches, steps the environments; the record of step t ([B, ...])."""
    step = actor.step
    carry, latent = model.encode(params, actor.carry, jax.tree.map(lambda x: x[None], step.obs), step.start[None])
    invalid = invalid_actions(step)
    if epsilon > 0:
        key, explore_key = jax.random.split(key)
    out = model.search(params, key, latent[0], invalid)
    action = out.action.astype(jnp.int32)
    if epsilon > 0:
        action = explore(explore_key, action, invalid, env.num_actions, epsilon)
    env_state, next_step = env.step(actor.env_state, action)
    record = StepRecord(
        obs=step.obs,
        start=step.start,
        action=action,
        reward=next_step.reward,
        discount=next_step.discount,
        search_policy=out.action_weights,
        search_value=out.root_value,
        carry=actor.carry,
        episode_step=actor.env_state.length_so_far,
        action_mask=step.action_mask,
    )
    return ActorState(env_state, next_step, carry), (record, next_step)


def rollout(
    model: Model,
    env: AgentEnv,
    params: Params,
    actor: ActorState,
    key: chex.PRNGKey,
    num_steps: int,
    epsilon: float = 0.0,
) -> tuple[ActorState, StepRecord, AgentStep]:
    """``num_steps`` acting steps: records ``[B, T, ...]`` (batch-major, for the replay)
    and the timesteps reached ``[T, B, ...]`` (time-major, for episode metrics)."""
    keys = jax.random.split(key, num_steps)
    step = functools.partial(act_step, model, env, params, epsilon=epsilon)
    actor, (records, steps) = jax.lax.scan(step, actor, keys)
    records = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), records)
    return actor, records, steps
