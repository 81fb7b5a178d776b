"""The search diagnostic (rmuzero.agent.diagnostics): every action's reward, and the summary.

RepeatPrevious Easy (k = 4, 52 cards): at the decision after seeing card i of an
episode, the transition deals card i + 1 and pays +1/48 for naming the suit of card
i + 1 - 4, -1/48 otherwise, and 0 while i + 1 < 4 (the environment's docstring). The
test replays the diagnosed run's actions on a fresh environment, reads the suits off
its observations, and checks the diagnosis's every-action rewards against that rule.
"""

from __future__ import annotations

import functools

import jax
import numpy as np
import pytest

from rmuzero.agent.agent import make_agent
from rmuzero.agent.config import config_from_dict
from rmuzero.agent.diagnostics import SearchDiagnosis, diagnose_search, summarise
from rmuzero.envs.wrappers import make_agent_env

K, CARDS, ENVS, STEPS = 4, 52, 3, 60  # 60 steps: one 51-step episode and the next one's start

CONFIG = {
    "env": {"name": "popgym/repeat_previous", "difficulty": "easy"},
    "network": {
        "memory": "ffm",
        "features": 16,
        "latent_size": 16,
        "head_sizes": [32],
        "value_bins": 11,
        "reward_bins": 11,
    },
    "search": {"policy": "gumbel_muzero", "num_simulations": 4, "max_num_considered_actions": 4},
    "system": {"num_envs": ENVS, "batch_size": 4, "roots_per_sequence": 4},
}


@pytest.fixture(scope="module")
def diagnosed():
    agent = make_agent(config_from_dict(CONFIG))
    params = agent.init(jax.random.PRNGKey(0)).params
    env = make_agent_env("popgym/repeat_previous", difficulty="easy", num_envs=ENVS)
    key = jax.random.PRNGKey(3)
    diagnose = functools.partial(diagnose_search, agent.model, env, num_steps=STEPS, discount=0.99)
    diagnosis = jax.jit(diagnose)(params, key)
    return env, key, jax.tree.map(np.asarray, diagnosis)


@pytest.mark.slow
def test_every_action_reward_follows_the_rule(diagnosed):
    env, key, d = diagnosed
    # Replay the taken actions on a fresh environment (same reset key as diagnose_search).
    env_state, step = env.reset(jax.random.split(key)[0])
    env_step = jax.jit(env.step)
    suits, taken_rewards = [], []
    for t in range(STEPS):
        suits.append(np.argmax(np.asarray(step.obs[:, :4]), axis=-1))
        env_state, step = env_step(env_state, d.action[t])
        taken_rewards.append(np.asarray(step.reward))
    suits = np.stack(suits)  # [T, E] suit of the card observed at each step
    checked = 0
    for e in range(ENVS):
        for t in range(STEPS):
            i = d.episode_step[t, e]
            expected = np.zeros(4, np.float32)
            if i + 1 >= K:
                target = suits[t - i + (i + 1 - K), e]  # card i + 1 - K of this episode
                expected = np.where(np.arange(4) == target, 1.0 / (CARDS - K), -1.0 / (CARDS - K))
                checked += 1
            np.testing.assert_allclose(d.true_reward[t, e], expected, atol=1e-7)
            assert d.true_reward[t, e, d.action[t, e]] == pytest.approx(taken_rewards[t][e])
    assert checked == ENVS * (STEPS - 2 * (K - 1))  # two episode starts, K - 1 silent steps each
    assert set(np.unique(d.episode_step)) == set(range(CARDS - 1))


@pytest.mark.slow
def test_policies_are_distributions(diagnosed):
    _, _, d = diagnosed
    np.testing.assert_allclose(d.prior.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(d.improved.sum(-1), 1.0, atol=1e-5)


def test_summary_by_hand():
    r = np.array([[[1.0, -1.0, -1.0]], [[0.0, 0.0, 0.0]], [[-1.0, 1.0, -1.0]]])  # [T=3, E=1, A=3]
    d = SearchDiagnosis(
        true_reward=r,
        valid=np.ones_like(r, bool),
        prior=np.array([[[0.5, 0.25, 0.25]], [[1 / 3, 1 / 3, 1 / 3]], [[0.6, 0.2, 0.2]]]),
        improved=np.array([[[0.25, 0.5, 0.25]], [[1 / 3, 1 / 3, 1 / 3]], [[0.0, 1.0, 0.0]]]),
        model_reward=np.array([[[0.9, 0.0, 0.0]], [[0.0, 0.0, 0.0]], [[0.0, 0.9, 0.0]]]),
        model_q=np.array([[[0.9, 1.0, 0.0]], [[0.0, 0.0, 0.5]], [[0.0, 0.9, 1.0]]]),
        action=np.array([[0], [0], [2]], np.int32),
        episode_step=np.zeros((3, 1), np.int32),
    )
    s = summarise(d)
    assert s["informative_steps"] == pytest.approx(2 / 3)  # step 1 pays every action the same
    assert s["prior_top"] == pytest.approx(0.5)  # right at step 0, wrong at step 2
    assert s["improved_top"] == pytest.approx(0.5)  # wrong at step 0, right at step 2
    assert s["reward_model_top"] == pytest.approx(1.0)
    assert s["q_top"] == pytest.approx(0.0)  # gamma v(s') moved both tops onto wrong answers
    # Expected reward in units of the spread (2): prior 0.5*1 + 0.5*(-1) = 0 -> 0.5; 0.2 - 0.8 = -0.6 -> 0.2.
    assert s["prior_expected_reward"] == pytest.approx((0.5 + 0.2) / 2)
    assert s["improved_expected_reward"] == pytest.approx((0.25 + 1.0) / 2)
    assert s["reward_model_error"] == pytest.approx(np.mean(np.abs(d.model_reward - r)))
    # Q - r: step 0 (0, 1, 0) -> 1; step 1 (0, 0, 0.5) -> 0.5; step 2 (0, 0, 1) -> 1.
    assert s["next_value_spread"] == pytest.approx(2.5 / 3)
    # Informative steps 0 and 2, centred over the 3 actions: step 0 dr = (0.6, -0.3, -0.3),
    # dv = (-1/3, 2/3, -1/3): sum dv dr = -0.3, sum dr^2 = 0.54; step 2 the same, permuted.
    assert s["next_value_reward_slope"] == pytest.approx(-0.6 / 1.08)
    np.testing.assert_allclose(s["action_frequency"], [2 / 3, 0.0, 1 / 3])
    # Q - r centred over the actions of each step: (-1/3, 2/3, -1/3), (-1/6, -1/6, 1/3),
    # (-1/3, -1/3, 2/3); their mean over the 3 steps, per action:
    np.testing.assert_allclose(s["next_value_by_action"], [-5 / 18, 1 / 18, 2 / 9])


def test_summary_by_episode_step_by_hand():
    # Four steps of one episode (episode steps 0..3), two actions, action 0 always right.
    r = np.tile(np.array([1.0, -1.0]), (4, 1, 1))  # [T=4, E=1, A=2]
    right, wrong = [0.9, 0.1], [0.1, 0.9]
    d = SearchDiagnosis(
        true_reward=r,
        valid=np.ones_like(r, bool),
        prior=np.array([[right]] * 4),
        improved=np.array([[right], [right], [wrong], [right]]),
        model_reward=np.array([[wrong], [right], [right], [right]]),
        model_q=np.array([[wrong]] * 4),
        action=np.zeros((4, 1), np.int32),
        episode_step=np.arange(4, dtype=np.int32)[:, None],
    )
    phases = summarise(d, phases=2)["by_episode_step"]
    assert [(p["first"], p["last"], p["steps"]) for p in phases] == [(0, 1, 2), (2, 3, 2)]
    assert [p["prior_top"] for p in phases] == [1.0, 1.0]
    assert [p["improved_top"] for p in phases] == [1.0, 0.5]
    assert [p["reward_model_top"] for p in phases] == [0.5, 1.0]
    assert [p["q_top"] for p in phases] == [0.0, 0.0]
    # Three phases of episode steps 0..3: ranges [0, 1], [2, 2], [3, 3].
    assert [(p["first"], p["last"]) for p in summarise(d)["by_episode_step"]] == [(0, 1), (2, 2), (3, 3)]
    with pytest.raises(ValueError, match="phases must be at least 1"):
        summarise(d, phases=0)
