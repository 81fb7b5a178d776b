"""Exploration while acting (``system.exploration_epsilon``, rmuzero.agent.acting).

With probability epsilon per step a uniform valid action replaces the search's; the
environment is stepped with the action that is stored, and the policy target stays
the search's. Checked by counting (frequencies a person can verify) and, in a
rollout, against the environment's own record of the previous action.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rmuzero.agent.acting import explore
from rmuzero.agent.agent import make_agent
from rmuzero.agent.config import ConfigError, config_from_dict

N = 6000  # draws; the binomial standard deviation of a frequency p is sqrt(p (1 - p) / N) < 0.0065


def test_epsilon_zero_keeps_the_search_action():
    action = jnp.arange(N, dtype=jnp.int32) % 5
    np.testing.assert_array_equal(explore(jax.random.PRNGKey(0), action, None, 5, 0.0), action)


def test_epsilon_one_is_uniform_over_the_valid_actions():
    # 5 actions, 1 and 3 invalid: each of 0, 2, 4 should come up a third of the time.
    invalid = jnp.broadcast_to(jnp.array([False, True, False, True, False]), (N, 5))
    drawn = np.asarray(explore(jax.random.PRNGKey(1), jnp.full((N,), 1, jnp.int32), invalid, 5, 1.0))
    frequency = np.bincount(drawn, minlength=5) / N
    assert frequency[1] == 0 and frequency[3] == 0
    np.testing.assert_allclose(frequency[[0, 2, 4]], 1 / 3, atol=0.03)


def test_a_fraction_epsilon_of_the_actions_is_replaced():
    # 4 actions, epsilon 0.3: an action changes when it is replaced (0.3) by one of the
    # other three (3/4), so 0.225 of them; 0.3 x 1/4 = 0.075 are replaced by themselves.
    action = jnp.zeros((N,), jnp.int32)
    drawn = np.asarray(explore(jax.random.PRNGKey(2), action, None, 4, 0.3))
    assert abs(np.mean(drawn != 0) - 0.225) < 0.03
    np.testing.assert_allclose(np.bincount(drawn, minlength=4)[1:] / N, 0.075, atol=0.02)


def test_bad_epsilon_is_refused_in_one_line():
    with pytest.raises(ConfigError, match=r"system.exploration_epsilon=1.5; valid: a number in \[0.0, 1.0\]"):
        config_from_dict({"system": {"exploration_epsilon": 1.5}})


@pytest.mark.slow
def test_the_environment_steps_with_the_stored_action():
    """epsilon = 1: stored actions are uniform, not the search's, and each is the action the
    environment took: the next observation's previous-action one-hot (the wrapper's record)
    names it, except where that observation starts a new episode (zero there)."""
    num_actions = 4
    config = config_from_dict(
        {
            "env": {"name": "popgym/repeat_previous", "difficulty": "easy", "prev_action": True, "prev_reward": True},
            "network": {
                "memory": "ffm",
                "features": 16,
                "latent_size": 16,
                "head_sizes": [32],
                "value_bins": 11,
                "reward_bins": 11,
            },
            "search": {"policy": "gumbel_muzero", "num_simulations": 4, "max_num_considered_actions": 4},
            "system": {
                "num_envs": 8,
                "rollout_length": 64,
                "batch_size": 4,
                "sequence_length": 12,
                "replay_length_per_env": 128,
                "exploration_epsilon": 1.0,
            },
        }
    )
    agent = make_agent(config)
    state = jax.jit(agent.init)(jax.random.PRNGKey(0))
    state, _ = jax.jit(agent.collect)(state)
    steps = jax.tree.map(lambda x: np.asarray(x[:, :64]), state.replay.experience)  # [B, T, ...]
    previous = steps.obs[:, 1:, -num_actions - 1 : -1]  # one_hot(a_t) in o_{t+1}
    inside = ~steps.start[:, 1:]
    np.testing.assert_array_equal(previous[inside], np.eye(num_actions)[steps.action[:, :-1][inside]])
    assert np.all(previous[~inside] == 0)
    frequency = np.bincount(steps.action.ravel(), minlength=num_actions) / steps.action.size  # 512 draws
    np.testing.assert_allclose(frequency, 0.25, atol=0.07)
    # The stored policy targets are the search's: a distribution over the actions.
    np.testing.assert_allclose(steps.search_policy.sum(-1), 1.0, atol=1e-5)
