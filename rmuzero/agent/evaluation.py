"""Evaluation: the greedy search policy on E environments, the first episode of each.

Dimensions: E evaluation environments, D latent size, A actions.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp

from rmuzero.agent.acting import invalid_actions
from rmuzero.agent.model import Model, Params
from rmuzero.envs.wrappers import AgentEnv, AgentState, AgentStep
from rmuzero.search import select_action

EvaluateFn = Callable[[Params, chex.PRNGKey], tuple[chex.Array, chex.Array]]


class EvalLoop(NamedTuple):
    """State of the evaluation loop over E environments."""

    env_state: AgentState
    step: AgentStep
    carry: Any  # encoder carry, leaves [E, ...]
    key: chex.PRNGKey
    finished: chex.Array  # [E] bool: the first episode has ended
    returns: chex.Array  # [E] return of the first episode (0 until it ends)
    lengths: chex.Array  # [E] its length
    count: chex.Array  # [] steps taken


def make_evaluate(model: Model, env: AgentEnv, *, max_steps: int = 100_000) -> EvaluateFn:
    """``evaluate(params, key) -> (returns [E], lengths [E])`` with ``E = env.num_envs``.

    Greedy (temperature 0) choice from the search's improved policy, the same
    search as acting; stops when every environment has ended one episode or
    after ``max_steps`` steps.
    """
    num_envs = env.num_envs

    def evaluate(params: Params, key: chex.PRNGKey):
        reset_key, key = jax.random.split(key)
        env_state, step = env.reset(reset_key)
        carry = model.network.initialize_carry(num_envs)
        zeros = jnp.zeros((num_envs,), jnp.float32)

        def cond(loop: EvalLoop):
            return (~jnp.all(loop.finished)) & (loop.count < max_steps)

        def body(loop: EvalLoop) -> EvalLoop:
            key, search_key, select_key = jax.random.split(loop.key, 3)
            carry, latent = model.encode(params, loop.carry, loop.step.obs[None], loop.step.start[None])
            out = model.search(params, search_key, latent[0], invalid_actions(loop.step))
            action = select_action(select_key, out, temperature=0.0)
            env_state, step = env.step(loop.env_state, action)
            newly = step.episode_done & ~loop.finished
            return EvalLoop(
                env_state=env_state,
                step=step,
                carry=carry,
                key=key,
                finished=loop.finished | step.episode_done,
                returns=jnp.where(newly, step.episode_return, loop.returns),
                lengths=jnp.where(newly, step.episode_length.astype(jnp.float32), loop.lengths),
                count=loop.count + 1,
            )

        loop = EvalLoop(env_state, step, carry, key, jnp.zeros((num_envs,), bool), zeros, zeros,
                        jnp.zeros((), jnp.int32))
        loop = jax.lax.while_loop(cond, body, loop)
        return loop.returns, loop.lengths

    return evaluate
