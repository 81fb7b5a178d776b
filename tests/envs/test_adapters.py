"""Each suite's adapter against the suite's own ``reset`` / ``step`` (rmuzero/envs/adapters.py).

The agent's stack (``wrap_env`` over the adapter, auto-reset included) is stepped beside a
plain loop over the suite's own functions with the same keys and actions, over whole episodes
and the resets between them: the observations, rewards and episode ends must be the same.
"""

from __future__ import annotations

import gymnax  # noqa: E402 (the test extra installs it: stable-gymnax)
import jax
import jax.numpy as jnp
import jumanji
import jumanji.wrappers
import numpy as np
import pytest
from conftest import OPTIMISED

from rmuzero.envs.adapters import GymnaxEnvironment, JumanjiAdapter
from rmuzero.envs.sources import make_environment
from rmuzero.envs.wrappers import wrap_env
from rmuzero.replay.targets import n_step_value_targets

B = 4


def _gymnax_reference(env, params, key, actions, compiler_options=None):
    """The suite's own loop: per environment the key chain ``key, k = split(key)`` and
    gymnax's ``step(k, ...)`` (auto-reset inside); ``reset`` with ``split(k_i)[1]`` first."""
    keys = jax.random.split(key, B)
    chains, reset_keys = jax.vmap(jax.random.split)(keys).transpose(1, 0, 2)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(reset_keys, params)
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)), compiler_options=compiler_options)
    split = jax.jit(jax.vmap(jax.random.split))
    observations, rewards, dones = [obs], [], []
    for action in actions:
        chains, ks = split(chains).transpose(1, 0, 2)
        obs, state, reward, done, *_ = step(ks, state, action, params)
        observations.append(obs)
        rewards.append(reward)
        dones.append(done)
    return [np.asarray(x) for x in (jnp.stack(observations), jnp.stack(rewards), jnp.stack(dones))]


def _ours(environment, key, actions, compiler_options=None):
    agent_env = wrap_env(environment, num_envs=B, prev_action=False, prev_reward=False)
    state, step = agent_env.reset(key)
    step_fn = jax.jit(agent_env.step, compiler_options=compiler_options)
    observations, rewards, lasts, discounts = [step.obs], [], [], []
    for action in actions:
        state, step = step_fn(state, action)
        observations.append(step.obs)
        rewards.append(step.reward)
        lasts.append(step.last)
        discounts.append(step.discount)
    observations = jax.tree.map(lambda *xs: np.asarray(jnp.stack(xs)), *observations)
    return [observations] + [np.asarray(jnp.stack(x)) for x in (rewards, lasts, discounts)]


@pytest.mark.slow  # tens of seconds of compiling and stepping on 2 CPU cores
def test_gymnax_cartpole_equals_gymnax_step_over_episodes_and_resets():
    env, params = gymnax.make("CartPole-v1")
    params = params.replace(max_steps_in_episode=25)  # random play: terminations and truncations
    actions = jax.random.randint(jax.random.PRNGKey(1), (300, B), 0, 2)
    key = jax.random.PRNGKey(7)
    ref_obs, ref_reward, ref_done = _gymnax_reference(env, params, key, actions)
    obs, reward, last, discount = _ours(GymnaxEnvironment(env, params), key, actions)
    # Two XLA programs of the same float32 physics fuse differently: equal up to rounding.
    np.testing.assert_allclose(obs, ref_obs, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(reward, ref_reward)
    np.testing.assert_array_equal(last, ref_done)
    # Episode lengths from the reference's done flags: an end before 25 steps is a termination
    # (discount 0); at 25 steps the time limit (discount 1, unless the pole fell then too).
    length = np.zeros(B, int)
    ends_before, ends_at_limit = 0, 0
    for t in range(len(actions)):
        length += 1
        for i in np.flatnonzero(ref_done[t]):
            if length[i] < 25:
                assert discount[t, i] == 0.0
                ends_before += 1
            else:
                ends_at_limit += discount[t, i] == 1.0
            length[i] = 0
    assert ends_before > 10 and ends_at_limit > 3


def _balance(obs):
    """A linear controller that keeps CartPole-v1's pole up for its 500 steps."""
    _, x_dot, theta, theta_dot = obs[..., 0], obs[..., 1], obs[..., 2], obs[..., 3]
    return (theta + 0.5 * theta_dot + 0.05 * x_dot > 0).astype(jnp.int32)


@pytest.mark.slow  # tens of seconds of compiling and stepping on 2 CPU cores
def test_cartpole_time_limit_bootstraps_and_termination_does_not():
    """CartPole-v1's 500-step limit is a truncation: discount 1 on the episode's last
    transition, so the n-step target there bootstraps; a fall is a termination: discount 0,
    its target the last reward alone."""
    env = make_environment("gymnax", "CartPole-v1")
    agent_env = wrap_env(env, num_envs=1, prev_action=False, prev_reward=False)
    step_fn = jax.jit(agent_env.step)

    def episode(policy):
        state, step = agent_env.reset(jax.random.PRNGKey(3))
        records = []
        while True:
            action = policy(step.obs)
            previous = step
            state, step = step_fn(state, action)
            records.append((bool(previous.start[0]), float(step.reward[0]), float(step.discount[0])))
            if bool(step.last[0]):
                return records

    balanced = episode(_balance)
    assert len(balanced) == 500 and balanced[-1][2] == 1.0
    fallen = episode(lambda obs: jnp.ones((1,), jnp.int32))  # always right: the pole falls
    assert len(fallen) < 30 and fallen[-1][2] == 0.0

    def last_target(records, value):
        start = jnp.array([r[0] for r in records] + [True])  # the next episode's start flag
        reward = jnp.array([r[1] for r in records] + [0.0])
        discount = jnp.array([r[2] for r in records] + [1.0])
        v = jnp.full(len(records) + 1, value)
        return float(n_step_value_targets(reward, discount, start, v, td_steps=5, discount_factor=0.99)[-2])

    assert last_target(balanced, 50.0) == pytest.approx(1.0 + 0.99 * 50.0)
    assert last_target(fallen, 50.0) == pytest.approx(1.0)


def test_gymnax_params_and_kwargs_reach_the_environment():
    env = make_environment("gymnax", "MemoryChain-bsuite", params={"memory_length": 100})
    assert env.params.memory_length == 100
    agent_env = wrap_env(env, num_envs=1, prev_action=False, prev_reward=False)
    state, step = agent_env.reset(jax.random.PRNGKey(0))
    step_fn = jax.jit(agent_env.step)
    for t in range(101):  # the chain asks its question after memory_length steps
        state, step = step_fn(state, jnp.zeros((1,), jnp.int32))
        if bool(step.last[0]):
            break
    assert t == 100


@pytest.mark.slow
def test_popgym_arcade_equals_its_own_step_over_episodes_and_resets():
    import popgym_arcade as arcade

    env, params = arcade.make("CountRecallEasy", partial_obs=True)
    actions = jax.random.randint(jax.random.PRNGKey(2), (140, B), 0, env.action_space(params).n)
    key = jax.random.PRNGKey(5)
    # Optimised: drawing 128x128 frames takes longer to run unoptimised than to optimise.
    ref_obs, ref_reward, ref_done = _gymnax_reference(env, params, key, actions, OPTIMISED)
    obs, reward, last, discount = _ours(
        make_environment("popgym_arcade", "CountRecallEasy", kwargs={"partial_obs": True}), key, actions, OPTIMISED
    )
    assert obs["observation"].dtype == np.uint8 and ref_obs.dtype == np.uint8
    np.testing.assert_array_equal(obs["observation"], ref_obs)
    np.testing.assert_array_equal(reward, ref_reward)
    np.testing.assert_array_equal(last, ref_done)
    assert ref_done.sum() >= B  # every environment finished an episode (126 steps) and went on


@pytest.mark.slow  # tens of seconds of compiling and stepping on 2 CPU cores
def test_jumanji_adapter_equals_jumanjis_own_auto_reset_stack():
    """Minesweeper: multi-discrete (row, column) actions flattened row-major, the mask with
    them, the named-tuple observation as a dict; jumanji's own stack steps the same games."""
    base = jumanji.make("Minesweeper-v0")
    ours = make_environment("jumanji", "Minesweeper-v0")
    assert isinstance(ours, JumanjiAdapter) and ours.action_shape == (10, 10) and ours.num_actions == 100
    reference = jumanji.wrappers.VmapWrapper(jumanji.wrappers.AutoResetWrapper(base))
    agent_env = wrap_env(ours, num_envs=B, prev_action=False, prev_reward=False)
    key = jax.random.PRNGKey(4)
    state, step = agent_env.reset(key)
    ref_state, ref_step = reference.reset(jax.random.split(key, B))
    step_fn, ref_fn = jax.jit(agent_env.step), jax.jit(reference.step)
    actions = jax.random.randint(jax.random.PRNGKey(6), (60, B), 0, 100)
    ended = 0
    for action in actions:
        for name in ("board", "num_mines", "step_count"):
            np.testing.assert_array_equal(step.obs["observation"][name], getattr(ref_step.observation, name))
        np.testing.assert_array_equal(step.action_mask, ref_step.observation.action_mask.reshape(B, 100))
        state, step = step_fn(state, action)
        ref_state, ref_step = ref_fn(ref_state, jnp.stack([action // 10, action % 10], axis=-1))
        np.testing.assert_array_equal(step.reward, ref_step.reward)
        np.testing.assert_array_equal(step.last, ref_step.last())
        np.testing.assert_array_equal(step.discount, ref_step.discount)
        ended += int(jnp.sum(step.last))
    assert ended >= 2 * B  # games were lost or won and the next ones compared too


@pytest.mark.slow  # tens of seconds of compiling and stepping on 2 CPU cores
def test_custom_factory_gives_the_same_environment_as_its_suite():
    popgym = make_environment("popgym", "popgym/repeat_previous", difficulty="medium")
    custom = make_environment(
        "custom",
        factory="rmuzero.envs.registry:make",
        kwargs={"name": "popgym/repeat_previous", "difficulty": "medium"},
    )
    gymnax_pair = make_environment("custom", factory="gymnax:make", kwargs={"env_id": "CartPole-v1"})
    assert isinstance(gymnax_pair, GymnaxEnvironment) and gymnax_pair.max_episode_length == 500
    key = jax.random.PRNGKey(0)
    actions = jax.random.randint(jax.random.PRNGKey(1), (70, B), 0, 4)
    for a, b in zip(_ours(popgym, key, actions), _ours(custom, key, actions), strict=True):
        np.testing.assert_array_equal(a, b)
