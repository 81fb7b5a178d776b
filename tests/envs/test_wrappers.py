"""Tests of ``rmuzero.envs.wrappers``: start flags, previous action / reward
features and episode metrics across auto-resets, against values worked out by
hand on a tiny counter environment (the seed's "observation = step number")."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import jumanji
import numpy as np
import pytest
from jumanji import specs
from jumanji.types import StepType, TimeStep, restart
from jumanji.wrappers import AutoResetWrapper, VmapWrapper

from rmuzero.envs import make
from rmuzero.envs.wrappers import (
    MaskedObservation,
    make_agent_env,
    start_flag,
    wrap_env,
)

STOP = 2  # the counter env's terminating action


@chex.dataclass
class CounterState:
    key: chex.PRNGKey
    count: chex.Array  # [] int32: transitions taken in this episode


class CounterEnv(jumanji.Environment):
    """Observation = [count] (the step number); actions 0, 1, STOP=2.

    From observation ``c`` action ``a`` gives reward ``10 * (c + 1) + a``. STOP
    terminates (discount 0); otherwise the episode ends after ``max_steps``
    transitions, a truncation (discount 1) if ``truncate`` else a termination.
    With ``masked`` the observation is a MaskedObservation where STOP is legal
    only from ``c >= 1``.
    """

    def __init__(self, *, max_steps: int, truncate: bool = True, masked: bool = False):
        self.max_steps = max_steps
        self.truncate = truncate
        self.masked = masked
        super().__init__()

    def _observation(self, count):
        features = count.astype(jnp.float32)[None]
        if not self.masked:
            return features
        return MaskedObservation(features, jnp.array([True, True, False]) | (count >= 1))

    def reset(self, key):
        state = CounterState(key=key, count=jnp.int32(0))
        return state, restart(self._observation(state.count))

    def step(self, state, action):
        reward = (10 * (state.count + 1) + action).astype(jnp.float32)
        count = state.count + 1
        stopped = action == STOP
        at_limit = count >= self.max_steps
        last = stopped | at_limit
        discount = jnp.where(stopped | (at_limit & (not self.truncate)), 0.0, 1.0)
        timestep = TimeStep(
            step_type=jnp.where(last, StepType.LAST, StepType.MID),
            reward=reward,
            discount=discount.astype(jnp.float32),
            observation=self._observation(count),
        )
        return CounterState(key=state.key, count=count), timestep

    @property
    def observation_spec(self):
        return specs.Array((1,), jnp.float32, "observation")

    @property
    def action_spec(self):
        return specs.DiscreteArray(3, name="action")


def _rollout(agent_env, actions, key=jax.random.PRNGKey(0)):
    """Reset then one step per row of ``actions`` [T, B] in a lax.scan.

    Returns the AgentSteps stacked [T + 1, B, ...] (row 0 from reset)."""

    def body(state, action):
        state, step = agent_env.step(state, action)
        return state, step

    state, first = agent_env.reset(key)
    _, steps = jax.lax.scan(body, state, actions)
    return jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a[None], b]), first, steps)


# ---------------------------------------------------------------------------
# The seed's example: an episode is o=0 -> o=1 -> (o=2 terminal, never shown).


def test_seed_example():
    agent_env = wrap_env(CounterEnv(max_steps=2, truncate=False), num_envs=1)
    steps = jax.jit(lambda a: _rollout(agent_env, a))(jnp.array([[0], [1], [1], [0]], jnp.int32))
    get = lambda field: np.asarray(getattr(steps, field))[:, 0].tolist()
    # obs[0] is the env's feature (the step number); never the terminal 2.
    assert [row[0] for row in get("obs")] == [0, 1, 0, 1, 0]
    assert get("start") == [True, False, True, False, True]
    assert get("last") == [False, False, True, False, True]
    # reward returned by step(o_t, a_t) is r_t = 10 * (o_t + 1) + a_t.
    assert get("reward") == [0, 10, 21, 11, 20]
    assert get("discount") == [1, 1, 0, 1, 0]
    assert get("episode_return") == [0, 0, 31, 0, 31]
    assert get("episode_length") == [0, 0, 2, 0, 2]
    assert get("episode_done") == get("last")
    assert steps.action_mask is None
    # obs = [step, one_hot(a_{t-1}, 3), r_{t-1}]: zero after every start.
    np.testing.assert_array_equal(
        steps.obs[:, 0],
        [
            [0, 0, 0, 0, 0],
            [1, 1, 0, 0, 10],
            [0, 0, 0, 0, 0],  # auto-reset: reward field is 21, features are zero
            [1, 0, 1, 0, 11],
            [0, 0, 0, 0, 0],
        ],
    )


# ---------------------------------------------------------------------------
# Three envs with different episode lengths, under jit + lax.scan.
#   env 0: never STOP, truncated after 3 transitions;
#   env 1: always STOP, episodes of 1 transition;
#   env 2: a mix (lengths 2, 3, 1, then an unfinished one).

ACTIONS = np.array(
    [
        [0, 2, 1],
        [1, 2, 2],
        [0, 2, 0],
        [1, 2, 0],
        [0, 2, 0],
        [1, 2, 2],
        [0, 2, 1],
        [1, 2, 1],
    ],
    np.int32,
)  # [T=8, B=3]
T_, F_ = True, False
# Rows: reset, then after each step (worked out by hand from CounterEnv's rules).
EXPECTED_COUNT = np.array(
    [[0, 0, 0], [1, 0, 1], [2, 0, 0], [0, 0, 1], [1, 0, 2], [2, 0, 0], [0, 0, 0], [1, 0, 1], [2, 0, 2]]
)
EXPECTED_START = np.array(
    [
        [T_, T_, T_],
        [F_, T_, F_],
        [F_, T_, T_],
        [T_, T_, F_],
        [F_, T_, F_],
        [F_, T_, T_],
        [T_, T_, T_],
        [F_, T_, F_],
        [F_, T_, F_],
    ]
)
EXPECTED_LAST = EXPECTED_START.copy()
EXPECTED_LAST[0] = False
EXPECTED_REWARD = np.array(
    [
        [0, 0, 0],
        [10, 12, 11],
        [21, 12, 22],
        [30, 12, 10],
        [11, 12, 20],
        [20, 12, 30],
        [31, 12, 12],
        [10, 12, 11],
        [21, 12, 21],
    ]
)
EXPECTED_DISCOUNT = np.array(
    [[1, 1, 1], [1, 0, 1], [1, 0, 0], [1, 0, 1], [1, 0, 1], [1, 0, 1], [1, 0, 0], [1, 0, 1], [1, 0, 1]]
)
EXPECTED_RETURN = np.array(
    [[0, 0, 0], [0, 12, 0], [0, 12, 33], [61, 12, 0], [0, 12, 0], [0, 12, 60], [62, 12, 12], [0, 12, 0], [0, 12, 0]]
)
EXPECTED_LENGTH = np.array(
    [[0, 0, 0], [0, 1, 0], [0, 1, 2], [3, 1, 0], [0, 1, 0], [0, 1, 3], [3, 1, 1], [0, 1, 0], [0, 1, 0]]
)


@pytest.fixture(scope="module")
def counter_rollout():
    agent_env = wrap_env(CounterEnv(max_steps=3, truncate=True), num_envs=3)
    steps = jax.jit(lambda actions: _rollout(agent_env, actions))(jnp.asarray(ACTIONS))
    return agent_env, jax.tree_util.tree_map(np.asarray, steps)


def test_start_flags_and_boundaries_by_hand(counter_rollout):
    agent_env, steps = counter_rollout
    assert agent_env.obs_size == 1 + 3 + 1 and agent_env.num_actions == 3
    assert steps.obs.shape == (9, 3, 5) and steps.obs.dtype == np.float32
    np.testing.assert_array_equal(steps.obs[..., 0], EXPECTED_COUNT)
    np.testing.assert_array_equal(steps.start, EXPECTED_START)
    np.testing.assert_array_equal(steps.last, EXPECTED_LAST)
    np.testing.assert_array_equal(steps.reward, EXPECTED_REWARD)
    np.testing.assert_array_equal(steps.discount, EXPECTED_DISCOUNT)
    # Start exactly where the env shows its first observation (count 0).
    np.testing.assert_array_equal(steps.start, steps.obs[..., 0] == 0)


def test_prev_action_and_reward_features(counter_rollout):
    _, steps = counter_rollout
    prev_action, prev_reward = steps.obs[..., 1:4], steps.obs[..., 4]
    assert not prev_action[steps.start].any() and not prev_reward[steps.start].any()
    # Elsewhere: the action and reward of the step that produced the row.
    not_start = ~steps.start[1:]
    one_hot = np.eye(3)[ACTIONS]
    np.testing.assert_array_equal(prev_action[1:][not_start], one_hot[not_start])
    np.testing.assert_array_equal(prev_reward[1:][not_start], EXPECTED_REWARD[1:][not_start])
    # Spot checks, by hand: env 2 after a_0 = 1 (r 11), env 0 after a_3 = 1 (r 11).
    np.testing.assert_array_equal(steps.obs[1, 2, 1:], [0, 1, 0, 11])
    np.testing.assert_array_equal(steps.obs[4, 0, 1:], [0, 1, 0, 11])


def test_episode_metrics_by_hand(counter_rollout):
    _, steps = counter_rollout
    np.testing.assert_array_equal(steps.episode_return, EXPECTED_RETURN)
    np.testing.assert_array_equal(steps.episode_length, EXPECTED_LENGTH)
    np.testing.assert_array_equal(steps.episode_done, EXPECTED_LAST)
    assert steps.episode_length.dtype == np.int32 and steps.episode_return.dtype == np.float32


def test_episode_metrics_match_reward_sums(counter_rollout):
    """Second computation: sum rewards between start flags in Python."""
    _, steps = counter_rollout
    for b in range(3):
        total, length = 0.0, 0
        for t in range(1, steps.start.shape[0]):
            total, length = total + steps.reward[t, b], length + 1
            if steps.last[t, b]:
                assert steps.episode_return[t, b] == total and steps.episode_length[t, b] == length
                total, length = 0.0, 0
            else:
                assert steps.episode_return[t, b] == 0 and steps.episode_length[t, b] == 0


def test_start_flag_rule():
    batch = TimeStep(
        step_type=jnp.array([StepType.FIRST, StepType.MID, StepType.LAST], jnp.int8),
        reward=jnp.zeros(3),
        discount=jnp.ones(3),
        observation=jnp.zeros((3, 1)),
    )
    np.testing.assert_array_equal(start_flag(batch), [True, False, True])


def test_feature_options():
    env = CounterEnv(max_steps=2)
    actions = jnp.array([[1], [0], [1]], jnp.int32)  # the second step ends episode 1
    for prev_action, prev_reward, size in [(False, False, 1), (True, False, 4), (False, True, 2)]:
        agent_env = wrap_env(env, num_envs=1, prev_action=prev_action, prev_reward=prev_reward)
        assert agent_env.obs_size == size
        steps = jax.jit(lambda a: _rollout(agent_env, a))(actions)
        rows = np.asarray(steps.obs[:, 0])
        assert rows.shape == (4, size)
        np.testing.assert_array_equal(steps.reward[:, 0], [0, 11, 20, 11])
        np.testing.assert_array_equal(rows[:, 0], [0, 1, 0, 1])
        if prev_action:
            np.testing.assert_array_equal(rows[:, 1:4], [[0, 0, 0], [0, 1, 0], [0, 0, 0], [0, 1, 0]])
        if prev_reward:
            np.testing.assert_array_equal(rows[:, -1], [0, 11, 0, 11])


def test_action_mask_follows_the_new_episode():
    agent_env = wrap_env(CounterEnv(max_steps=3, masked=True), num_envs=2)
    assert agent_env.has_action_mask
    actions = jnp.array([[0, 1], [STOP, 0], [0, 0]], jnp.int32)
    masks = np.asarray(jax.jit(lambda a: _rollout(agent_env, a))(actions).action_mask)
    assert masks.shape == (4, 2, 3)  # [T + 1, B, A]; STOP legal iff count >= 1
    np.testing.assert_array_equal(masks[..., :2], True)
    # env 0: counts 0, 1, 0 (STOP ended ep.), 1; env 1: counts 0, 1, 2, 0 (truncated).
    np.testing.assert_array_equal(masks[..., 2], [[F_, F_], [T_, T_], [F_, T_], [T_, F_]])


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="num_envs must be a positive int"):
        wrap_env(CounterEnv(max_steps=2), num_envs=0)
    agent_env = wrap_env(CounterEnv(max_steps=2), num_envs=3)
    with pytest.raises(ValueError, match=r"one PRNG key .* got shape \(3, 2\)"):
        agent_env.reset(jax.random.split(jax.random.PRNGKey(0), 3))
    state, _ = agent_env.reset(jax.random.PRNGKey(0))
    agent_env.reset(jax.random.key(0))  # a typed key works too
    with pytest.raises(ValueError, match=r"shape \[B\]=\(3,\), got int32\[3, 1\]"):
        agent_env.step(state, jnp.zeros((3, 1), jnp.int32))
    with pytest.raises(ValueError, match=r"integer array .* got float32\[3\]"):
        agent_env.step(state, jnp.zeros((3,), jnp.float32))
    with pytest.raises(ValueError, match="valid names: popgym/"):
        make_agent_env("popgym/no_such_task", num_envs=1)
    with pytest.raises(ValueError, match="valid: easy, medium, hard"):
        make_agent_env("popgym/repeat_previous", difficulty="extreme", num_envs=1)


class _MultiDiscreteEnv(CounterEnv):
    @property
    def action_spec(self):
        return specs.MultiDiscreteArray(jnp.array([2, 2], jnp.int32), name="action")


def test_non_discrete_action_spec_raises():
    with pytest.raises(ValueError, match="DiscreteArray"):
        wrap_env(_MultiDiscreteEnv(max_steps=2), num_envs=1)


# ---------------------------------------------------------------------------
# A real POPGym task: RepeatPrevious Easy has 51-transition episodes.


def test_repeat_previous_episode_boundaries():
    agent_env = make_agent_env("popgym/repeat_previous", difficulty="easy", num_envs=2)
    assert agent_env.num_actions == 4 and not agent_env.has_action_mask
    steps_count = 2 * 51 + 1
    actions = jax.random.randint(jax.random.PRNGKey(3), (steps_count, 2), 0, 4)
    steps = jax.jit(lambda a: _rollout(agent_env, a))(actions)
    steps = jax.tree_util.tree_map(np.asarray, steps)
    actions = np.asarray(actions)
    assert steps.obs.shape == (steps_count + 1, 2, agent_env.obs_size)
    expected_start = np.zeros((steps_count + 1, 2), bool)
    expected_start[[0, 51, 102]] = True
    np.testing.assert_array_equal(steps.start, expected_start)
    np.testing.assert_array_equal(steps.episode_done, expected_start & (np.arange(steps_count + 1) > 0)[:, None])
    np.testing.assert_array_equal(steps.episode_length[[51, 102]], 51)
    for end in (51, 102):
        np.testing.assert_allclose(steps.episode_return[end], steps.reward[end - 50 : end + 1].sum(0), rtol=1e-5)
    # Rewards: +-1/48 after the first 3 transitions of an episode, 0 before.
    in_episode = np.concatenate([np.arange(1, 52), np.arange(1, 52), [1]])
    np.testing.assert_array_equal(steps.reward[1:][in_episode <= 3], 0)
    np.testing.assert_allclose(np.abs(steps.reward[1:][in_episode > 3]), 1 / 48, rtol=1e-6)
    a_features = steps.obs[..., -5:-1]
    np.testing.assert_array_equal(a_features[1:][~steps.start[1:]], np.eye(4)[actions][~steps.start[1:]])
    assert not a_features[steps.start].any() and not steps.obs[..., -1][steps.start].any()


def test_reset_and_step_outputs_have_identical_structure():
    """A scan carry can hold either: same tree, shapes and dtypes."""
    agent_env = wrap_env(CounterEnv(max_steps=3, masked=True), num_envs=2)
    reset_out = jax.eval_shape(agent_env.reset, jax.random.PRNGKey(0))
    step_out = jax.eval_shape(agent_env.step, reset_out[0], jax.ShapeDtypeStruct((2,), jnp.int32))
    assert jax.tree_util.tree_structure(reset_out) == jax.tree_util.tree_structure(step_out)
    for a, b in zip(jax.tree_util.tree_leaves(reset_out), jax.tree_util.tree_leaves(step_out)):
        assert (a.shape, a.dtype) == (b.shape, b.dtype)
    step = step_out[1]
    assert step.obs.shape == (2, 5) and step.action_mask.shape == (2, 3)
    assert {f: getattr(step, f).shape for f in ("start", "reward", "discount", "last")} == {
        "start": (2,),
        "reward": (2,),
        "discount": (2,),
        "last": (2,),
    }


# ---------------------------------------------------------------------------
# The batched auto-reset equals jumanji's VmapWrapper(AutoResetWrapper(env)).


@chex.dataclass
class RandomLengthState:
    key: chex.PRNGKey
    count: chex.Array  # [] int32
    length: chex.Array  # [] int32, drawn at reset from the key


class RandomLengthEnv(jumanji.Environment):
    """Episodes of 1 to 3 transitions drawn from the reset key; obs [count, length]."""

    def reset(self, key):
        length = jax.random.randint(key, (), 1, 4)
        state = RandomLengthState(key=key, count=jnp.int32(0), length=length)
        return state, restart(self._observation(state))

    def _observation(self, state):
        return jnp.stack([state.count, state.length]).astype(jnp.float32)

    def step(self, state, action):
        state = state.replace(count=state.count + 1)
        last = state.count >= state.length
        timestep = TimeStep(
            step_type=jnp.where(last, StepType.LAST, StepType.MID),
            reward=(state.count + 10 * action).astype(jnp.float32),
            discount=jnp.where(last, 0.0, 1.0).astype(jnp.float32),
            observation=self._observation(state),
        )
        return state, timestep

    @property
    def observation_spec(self):
        return specs.Array((2,), jnp.float32, "observation")

    @property
    def action_spec(self):
        return specs.DiscreteArray(2, name="action")


def _compare_with_jumanji_stack(env, *, num_envs, num_steps, key):
    """Rolls out wrap_env's stack and jumanji's with the same keys and actions;
    returns the AgentSteps [num_steps + 1, B, ...] (row 0 from reset)."""
    agent_env = wrap_env(env, num_envs=num_envs)
    reference = VmapWrapper(AutoResetWrapper(env))
    actions = jax.random.randint(jax.random.PRNGKey(7), (num_steps, num_envs), 0, agent_env.num_actions)

    @jax.jit
    def both(key, actions):
        state, first = agent_env.reset(key)
        ref_state, ref_first = reference.reset(jax.random.split(key, num_envs))

        def body(carry, action):
            state, ref_state = carry
            state, step = agent_env.step(state, action)
            ref_state, ref_step = reference.step(ref_state, action)
            return (state, ref_state), (state.env_state, step, ref_state, ref_step)

        _, out = jax.lax.scan(body, (state, ref_state), actions)
        return (state.env_state, first, ref_state, ref_first), out

    start_out, step_out = both(key, actions)
    env_size = env.observation_spec.shape[0]
    for env_state, step, ref_state, ref_step in (start_out, step_out):
        chex.assert_trees_all_equal(env_state, ref_state)  # keys included
        np.testing.assert_array_equal(step.obs[..., :env_size], ref_step.observation)
        np.testing.assert_array_equal(step.reward, ref_step.reward)
        np.testing.assert_array_equal(step.discount, ref_step.discount)
        np.testing.assert_array_equal(step.last, ref_step.last())
        np.testing.assert_array_equal(step.start, ref_step.first() | ref_step.last())
    first, steps = start_out[1], step_out[1]
    return jax.tree_util.tree_map(lambda a, b: np.concatenate([np.asarray(a)[None], np.asarray(b)]), first, steps)


def test_auto_reset_equals_jumanji_with_unsynchronised_random_resets():
    steps = _compare_with_jumanji_stack(RandomLengthEnv(), num_envs=4, num_steps=12, key=jax.random.PRNGKey(5))
    last = steps.last[1:]
    # The comparison covered steps where some, but not all, environments ended.
    assert (last.any(1) & ~last.all(1)).any()
    # Each finished episode's length is the one its first observation showed.
    for b in range(4):
        shown_length = None
        for t in range(steps.start.shape[0]):
            if steps.last[t, b]:
                assert steps.episode_length[t, b] == shown_length
            if steps.start[t, b]:
                shown_length = steps.obs[t, b, 1]
                assert steps.obs[t, b, 0] == 0  # count 0: a first observation


def test_auto_reset_equals_jumanji_on_repeat_previous():
    env = make("popgym/repeat_previous", "easy")
    steps = _compare_with_jumanji_stack(env, num_envs=3, num_steps=110, key=jax.random.PRNGKey(6))
    assert steps.last.sum() == 3 * 2  # two 51-step episodes each


def test_auto_reset_with_typed_keys():
    agent_env = wrap_env(RandomLengthEnv(), num_envs=3)
    steps = jax.jit(lambda a: _rollout(agent_env, a, key=jax.random.key(1)))(jnp.zeros((4, 3), jnp.int32))
    # Every episode ends within 3 steps, so each environment was reset.
    assert np.asarray(steps.last).any(0).all() and np.asarray(steps.start[1:]).any(0).all()
