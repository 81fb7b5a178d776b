"""Long memory: what the learner's loss can reach (rmuzero.agent.agent, docs/design.md section 4).

Dimensions: S sequences, L sequence length, R roots, F observation size.

The learner encodes a whole sequence from its first step with the current
parameters, so a loss at a late step must reach, through the memory, an
observation near the start of the same episode, and must reach nothing across
a start flag (the memory is cleared there) or after the root (causality).
These are gradients of the real ``agent.learner.loss`` with respect to the stored
observations, for the default memory (FFM) and the GRU baseline.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rmuzero.agent.agent import make_agent
from rmuzero.agent.config import config_from_dict
from rmuzero.replay.buffer import Sequences, StepRecord

LENGTH = 128
ROOT = 100
NEW_EPISODE = 50  # sequence 1 has a start flag here


def _config(memory: str) -> dict:
    return {
        "env": {"name": "popgym/repeat_previous", "difficulty": "easy"},
        "network": {
            "memory": memory,
            "features": 16,
            "latent_size": 16,
            "head_sizes": [16],
            "value_bins": 11,
            "reward_bins": 11,
        },
        "search": {"num_simulations": 2, "max_num_considered_actions": 2},
        "system": {
            "num_envs": 2,
            "rollout_length": 4,
            "batch_size": 2,
            "sequence_length": LENGTH,
            "roots_per_sequence": 1,
            "num_unroll_steps": 2,
            "td_steps": 2,
            "replay_length_per_env": LENGTH,
            "reanalyse_fraction": 0.0,
        },
        "eval_episodes": 2,
    }


def _sequences(agent) -> Sequences:
    """Two sequences of 128 steps from an episode start; the second starts a new episode at 50."""
    key_obs, key_reward = jax.random.split(jax.random.PRNGKey(0))
    start = jnp.zeros((2, LENGTH), bool).at[:, 0].set(True).at[1, NEW_EPISODE].set(True)
    num_actions = agent.env.num_actions
    steps = StepRecord(
        obs=jax.random.normal(key_obs, (2, LENGTH, agent.env.obs_size)),
        start=start,
        action=jnp.arange(2 * LENGTH, dtype=jnp.int32).reshape(2, LENGTH) % num_actions,
        reward=jax.random.normal(key_reward, (2, LENGTH)) * 0.02,
        discount=jnp.ones((2, LENGTH)),
        search_policy=jnp.full((2, LENGTH, num_actions), 1.0 / num_actions),
        search_value=jnp.zeros((2, LENGTH)),
        carry=None,
        episode_step=jnp.zeros((2, LENGTH), jnp.int32),
    )
    return Sequences(steps=steps, carry=agent.model.network.initialize_carry(2))


@pytest.mark.parametrize("memory", ["ffm", "gru"])
@pytest.mark.slow
def test_loss_at_step_100_reaches_step_2_and_nothing_across_a_start_flag(memory):
    agent = make_agent(config_from_dict(_config(memory)))
    assert agent.sequence_length == LENGTH
    state = jax.jit(agent.init)(jax.random.PRNGKey(1))  # jitted: one program, not op by op
    # The output layers start at zero (uniform predictions, no gradient into the latent):
    # perturb every parameter, as a few updates would.
    leaves, treedef = jax.tree.flatten(state.params)
    keys = jax.random.split(jax.random.PRNGKey(3), len(leaves))
    params = jax.tree.unflatten(
        treedef,
        [
            x + 0.1 * jax.random.normal(k, x.shape, x.dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x
            for x, k in zip(leaves, keys)
        ],
    )
    sequences = _sequences(agent)
    unroll, _ = jax.jit(agent.learner.targets)(params, sequences, jax.random.PRNGKey(2))
    roots = jnp.full((2, 1), ROOT, jnp.int32)

    @jax.jit
    def obs_gradient(obs):
        def total(o):
            moved = sequences._replace(steps=sequences.steps.replace(obs=o))
            return agent.learner.loss(params, moved, unroll, roots).total

        return jax.grad(total)(obs)

    grad = np.abs(np.asarray(obs_gradient(sequences.steps.obs))).sum(axis=-1)  # [S, L]
    assert grad[0, 2] > 0.0, f"{memory}: no gradient from step {ROOT} to step 2 of the same episode"
    assert grad[0, ROOT] > 0.0 and grad[1, ROOT] > 0.0
    np.testing.assert_array_equal(grad[1, :NEW_EPISODE], 0.0, err_msg="gradient crossed the start flag")
    assert grad[1, NEW_EPISODE] > 0.0  # the new episode's first step is remembered
    np.testing.assert_array_equal(grad[:, ROOT + 1 :], 0.0, err_msg="a root saw observations after it")


@pytest.mark.parametrize(
    "system, stored",
    [
        ({}, False),  # 51-step episodes fit L = 128: every sequence begins at a start flag
        ({"sequence_length": 32, "replay_length_per_env": 32}, True),  # segments begin at stored carries
        ({"store_all_carries": True}, True),
    ],
)
def test_replay_keeps_carries_only_where_a_sequence_can_begin_at_one(system, stored):
    config = _config("ffm")
    config["system"].update(system)
    agent = make_agent(config_from_dict(config))
    state = jax.eval_shape(agent.init, jax.random.PRNGKey(0))
    num_envs, length = 2, config["system"]["replay_length_per_env"]
    carry = agent.model.network.initialize_carry(1)
    for kept, one in zip(jax.tree.leaves(state.replay.experience.carry), jax.tree.leaves(carry)):
        whole = (num_envs, length) + one.shape[1:]
        assert kept.shape == (whole if stored else (num_envs, length, 0) + one.shape[1:])
