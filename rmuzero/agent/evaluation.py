"""Evaluation: the search policy (greedy by default) on E environments, the first episodes of each.

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


class Evaluation(NamedTuple):
    """N evaluation episodes: the first ``ceil(N / E)`` of each of E environments, taken
    episode index first (every environment's first episode, then its second, ...)."""

    returns: chex.Array  # [N] return of each episode (0 where unfinished)
    lengths: chex.Array  # [N] its length in steps (0 where unfinished)
    finished: chex.Array  # [N] bool: the episode ended before the step limit


EvaluateFn = Callable[[Params, chex.PRNGKey], Evaluation]


class EvalLoop(NamedTuple):
    """State of the evaluation loop over E environments, P episodes each."""

    env_state: AgentState
    step: AgentStep
    carry: Any  # encoder carry, leaves [E, ...]
    key: chex.PRNGKey
    episodes: chex.Array  # [E] int32: episodes ended so far
    returns: chex.Array  # [E, P] returns of the first P episodes (0 until they end)
    lengths: chex.Array  # [E, P] their lengths
    count: chex.Array  # [] steps taken


def make_evaluate(
    model: Model, env: AgentEnv, *, episodes: int, max_steps: int = 100_000, temperature: float = 0.0
) -> EvaluateFn:
    """``evaluate(params, key) -> Evaluation`` of ``episodes`` episodes on ``E = env.num_envs``
    environments.

    The action is the search's improved policy's argmax (``temperature`` 0, greedy) or a
    sample from its weights ** (1 / temperature) (``select_action``), from the same
    search as acting, the memory reset at every episode start. Each environment
    plays ``P = ceil(episodes / E)`` episodes back to back; the loop stops when
    all have, or after ``max_steps`` steps of the batch: episodes not ended by
    then are reported as unfinished (``finished`` False), never as a return of 0.
    """
    num_envs = env.num_envs
    per_env = -(-episodes // num_envs)

    def evaluate(params: Params, key: chex.PRNGKey) -> Evaluation:
        reset_key, key = jax.random.split(key)
        env_state, step = env.reset(reset_key)
        carry = model.network.initialize_carry(num_envs)
        zeros = jnp.zeros((num_envs, per_env), jnp.float32)

        def cond(loop: EvalLoop):
            return jnp.any(loop.episodes < per_env) & (loop.count < max_steps)

        def body(loop: EvalLoop) -> EvalLoop:
            key, search_key, select_key = jax.random.split(loop.key, 3)
            carry, latent = model.encode(
                params, loop.carry, jax.tree.map(lambda x: x[None], loop.step.obs), loop.step.start[None]
            )
            out = model.search(params, search_key, latent[0], invalid_actions(loop.step))
            action = select_action(select_key, out, temperature=temperature)
            env_state, step = env.step(loop.env_state, action)
            record = (step.episode_done & (loop.episodes < per_env))[:, None] & (
                jnp.arange(per_env)[None, :] == loop.episodes[:, None]
            )  # [E, P]
            return EvalLoop(
                env_state=env_state,
                step=step,
                carry=carry,
                key=key,
                episodes=loop.episodes + step.episode_done.astype(jnp.int32),
                returns=jnp.where(record, step.episode_return[:, None], loop.returns),
                lengths=jnp.where(record, step.episode_length.astype(jnp.float32)[:, None], loop.lengths),
                count=loop.count + 1,
            )

        loop = EvalLoop(
            env_state, step, carry, key, jnp.zeros((num_envs,), jnp.int32), zeros, zeros, jnp.zeros((), jnp.int32)
        )
        loop = jax.lax.while_loop(cond, body, loop)
        finished = jnp.arange(per_env)[None, :] < loop.episodes[:, None]  # [E, P]

        def first(x):  # [E, P] -> [N], episode index first
            return x.T.reshape(-1)[:episodes]

        return Evaluation(first(loop.returns), first(loop.lengths), first(finished))

    return evaluate
