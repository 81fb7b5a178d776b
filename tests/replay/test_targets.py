"""Tests of rmuzero/replay/targets.py against a plain-Python reference written here.

Record convention: start[j] means o_j begins an episode; reward[j] / discount[j]
belong to the transition taken from o_j.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rmuzero.replay.targets import (
    batched_unroll_targets,
    lambda_value_targets,
    n_step_value_targets,
    unroll_targets,
)

L, K, A, N, GAMMA, LAMBDA = 8, 3, 3, 3, 0.9, 0.7


# ----------------------------------------------------------------------------------------------
# Plain-Python reference (loops, no jax).


def ref_n_step(reward, discount, start, value, n, gamma):
    """Walks forward from each j, adding rewards until n steps, the window edge or a new episode
    (after a truncated end, discount > 0, bootstrapping from the last observation's value)."""
    length = len(reward)
    out = []
    for j in range(length):
        total, scale, pos, steps = 0.0, 1.0, j, 0
        while True:
            if steps < n and pos == length - 1 and discount[pos] == 0:  # ends with the window
                total += scale * reward[pos]
                break
            if steps == n or pos == length - 1:  # bootstrap from the position reached
                total += scale * value[pos]
                break
            total += scale * reward[pos]
            scale *= gamma * discount[pos]
            pos += 1
            steps += 1
            if start[pos]:  # the transition just taken ended j's episode: nothing after it
                total += scale * value[pos - 1]  # scale is 0 after a termination (discount 0)
                break
        out.append(total)
    return np.array(out)


def ref_lambda(reward, discount, start, value, lam, gamma):
    """Forward view: (1 - lam) sum_n lam^(n-1) G^(n) + lam^(M-1) G^(M), with G^(M) the full return."""
    length = len(reward)
    big = length + 1  # every n >= L - 1 gives the same (full) return
    returns = [ref_n_step(reward, discount, start, value, n, gamma) for n in range(1, big + 1)]
    mix = sum((1 - lam) * lam ** (n - 1) * returns[n - 1] for n in range(1, big))
    return mix + lam ** (big - 1) * returns[big - 1]


def ref_unroll(reward, start, policy, z, num_unroll_steps, discount=None):
    """Targets for every (t, k) from the definitions, one entry at a time. A window whose
    last transition terminates (discount 0) has its next start flag at L."""
    length, num_actions = policy.shape
    if discount is not None and discount[length - 1] == 0:
        start = np.concatenate([start, [True]])
    shape = (length, num_unroll_steps + 1)
    out = dict(
        value=np.zeros(shape),
        reward=np.zeros(shape),
        policy=np.full(shape + (num_actions,), 1.0 / num_actions),
        in_episode=np.zeros(shape, bool),
        in_window=np.zeros(shape, bool),
        reward_mask=np.zeros(shape, bool),
    )
    for t in range(length):
        for k in range(num_unroll_steps + 1):
            pos = t + k
            flags_between = [start[p] for p in range(t + 1, pos + 1) if p < len(start)]
            in_episode = not any(flags_between)
            in_window = pos < length
            out["in_episode"][t, k] = in_episode
            out["in_window"][t, k] = in_window
            if in_episode and in_window:
                out["value"][t, k] = z[pos]
                out["policy"][t, k] = policy[pos]
            if k >= 1:
                prev = pos - 1  # dynamics step k models the transition from o_{t+k-1}
                prev_flags = [start[p] for p in range(t + 1, prev + 1) if p < len(start)]
                if prev < length and not any(prev_flags):
                    out["reward_mask"][t, k] = True
                    out["reward"][t, k] = reward[prev]
    return out


# ----------------------------------------------------------------------------------------------
# Windows: hand-placed episode boundaries plus random ones.


def _window(rng, starts, terminal_last=False):
    start = np.zeros(L, bool)
    start[list(starts)] = True
    discount = np.ones(L, np.float32)
    for p in starts:
        if p >= 1:  # the transition from o_{p-1} ended an episode: terminated or truncated
            discount[p - 1] = rng.integers(0, 2)
    if terminal_last:  # the window's last transition terminates (the next start is unseen)
        discount[L - 1] = 0.0
    reward = rng.normal(size=L).astype(np.float32)
    value = rng.normal(size=L).astype(np.float32)
    policy = rng.dirichlet(np.ones(A), size=L).astype(np.float32)
    return dict(reward=reward, discount=discount, start=start, value=value, policy=policy)


def _make_windows():
    rng = np.random.default_rng(0)
    windows = [
        _window(rng, []),
        _window(rng, [0, 1]),  # the first transition of the window ends an episode
        _window(rng, [4]),  # middle
        _window(rng, [7]),  # o_{L-1} begins a new episode
        _window(rng, [0], terminal_last=True),  # the last transition ends the episode
        _window(rng, [0, 2, 5, 6]),  # several, including a one-step episode
    ]
    for _ in range(10):  # random flags and discounts in {0, 1}
        w = _window(rng, list(np.flatnonzero(rng.random(L) < 0.3)))
        w["discount"] = (rng.random(L) < 0.8).astype(np.float32)
        windows.append(w)
    return {key: np.stack([w[key] for w in windows]) for key in windows[0]}


WINDOWS = _make_windows()
NUM_WINDOWS = WINDOWS["reward"].shape[0]

_batched_n_step = jax.jit(
    functools.partial(batched_unroll_targets, num_unroll_steps=K, discount_factor=GAMMA, td_steps=N)
)


@pytest.fixture(scope="module")
def n_step_out():
    w = WINDOWS
    return _batched_n_step(w["reward"], w["discount"], w["start"], w["value"], w["policy"])


def _ref_for(b, z):
    w = WINDOWS
    return ref_unroll(w["reward"][b], w["start"][b], w["policy"][b], z, K, w["discount"][b])


# ----------------------------------------------------------------------------------------------
# Hand-computed numbers.


def test_n_step_hand_values():
    r = jnp.array([1.0, 2.0, 3.0])
    v = jnp.array([10.0, 20.0, 30.0])
    d = jnp.ones(3)
    targets = jax.jit(functools.partial(n_step_value_targets, td_steps=2, discount_factor=0.5))
    # 1 + 0.5*2 + 0.25*v_2;  2 + 0.5*v_2 (window edge: one reward, bootstrap v_2);  v_2.
    np.testing.assert_allclose(targets(r, d, jnp.array([True, False, False]), v), [9.5, 17.0, 30.0])
    # o_2 starts a new episode after a truncation (d_1 = 1): nothing from the next episode, the
    # cut episode bootstraps from o_1's value: 1 + 0.5*2 + 0.25*v_1; 2 + 0.5*v_1; v_2.
    np.testing.assert_allclose(targets(r, d, jnp.array([True, False, True]), v), [7.0, 12.0, 30.0])
    # The same end as a termination (d_1 = 0): no bootstrap.
    np.testing.assert_allclose(
        targets(r, jnp.array([1.0, 0.0, 1.0]), jnp.array([True, False, True]), v), [2.0, 2.0, 30.0]
    )
    # Termination after o_0 (d_0 = 0, o_1 starts): just the terminal reward.
    np.testing.assert_allclose(
        targets(r, jnp.array([0.0, 1.0, 1.0]), jnp.array([False, True, False]), v), [1.0, 17.0, 30.0]
    )


def test_episode_ending_with_the_window_by_hand():
    """The last transition terminates (d_2 = 0) and the next start flag is past the window:
    o_2's value is its terminal reward, not its own bootstrap value, and every unroll
    step past the window is absorbing (known), not unknown."""
    r = jnp.array([1.0, 2.0, 3.0])
    v = jnp.array([10.0, 20.0, 30.0])
    start = jnp.array([True, False, False])
    d = jnp.array([1.0, 1.0, 0.0])
    n_step = jax.jit(functools.partial(n_step_value_targets, td_steps=2, discount_factor=0.5))
    # 1 + 0.5 * 2 + 0.25 * v_2 (n = 2 reaches o_2 first);  2 + 0.5 * 3;  3.
    np.testing.assert_allclose(n_step(r, d, start, v), [9.5, 3.5, 3.0])
    lam = jax.jit(functools.partial(lambda_value_targets, td_lambda=0.5, discount_factor=0.5))
    # G_2 = 3; G_1 = 2 + 0.5 (0.5 * 30 + 0.5 * 3) = 10.25; G_0 = 1 + 0.5 (0.5 * 20 + 0.5 * 10.25).
    np.testing.assert_allclose(lam(r, d, start, v), [8.5625, 10.25, 3.0])
    unroll = jax.jit(functools.partial(unroll_targets, num_unroll_steps=2, discount_factor=0.5, td_steps=2))
    out = unroll(r, d, start, v, jnp.eye(3))
    np.testing.assert_array_equal(out.in_episode, [[1, 1, 1], [1, 1, 0], [1, 0, 0]])
    np.testing.assert_array_equal(out.reward_mask, [[0, 1, 1], [0, 1, 1], [0, 1, 0]])
    np.testing.assert_allclose(out.reward, [[0, 1, 2], [0, 2, 3], [0, 3, 0]])
    np.testing.assert_allclose(out.value, [[9.5, 3.5, 3.0], [3.5, 3.0, 0], [3.0, 0, 0]])
    # The same window without the termination keeps the old edge rule: v_2 bootstraps itself.
    np.testing.assert_allclose(n_step(r, jnp.ones(3), start, v), [9.5, 17.0, 30.0])


def test_lambda_hand_values():
    r = jnp.array([1.0, 2.0, 3.0])
    v = jnp.array([10.0, 20.0, 30.0])
    targets = jax.jit(functools.partial(lambda_value_targets, td_lambda=0.5, discount_factor=0.5))
    out = targets(r, jnp.array([1.0, 0.0, 1.0]), jnp.array([True, False, True]), v)
    # G_2 = 30; G_1 = 2 (terminated, o_2 starts anew); G_0 = 1 + 0.5 * (0.5 * 20 + 0.5 * 2) = 6.5.
    np.testing.assert_allclose(out, [6.5, 2.0, 30.0])
    out = targets(r, jnp.ones(3), jnp.array([True, False, True]), v)
    # Truncated after o_1: G_1 = 2 + 0.5 * v_1 = 12; G_0 = 1 + 0.5 * (0.5 * 20 + 0.5 * 12) = 9.
    np.testing.assert_allclose(out, [9.0, 12.0, 30.0])


def test_unroll_hand_values():
    r = jnp.array([1.0, 2.0, 3.0])
    v = jnp.array([10.0, 20.0, 30.0])
    start = jnp.array([True, False, True])  # the transition from o_1 ends the first episode
    targets = jax.jit(functools.partial(unroll_targets, num_unroll_steps=2, discount_factor=0.5, td_steps=2))
    out = targets(r, jnp.array([1.0, 0.0, 1.0]), start, v, jnp.eye(3))  # by termination
    np.testing.assert_array_equal(out.in_episode, [[1, 1, 0], [1, 0, 0], [1, 1, 1]])
    np.testing.assert_array_equal(out.in_window, [[1, 1, 1], [1, 1, 0], [1, 0, 0]])
    # Root 0, step 2 predicts the terminal reward r_1: valid although o_2 is in the next episode.
    np.testing.assert_array_equal(out.reward_mask, [[0, 1, 1], [0, 1, 0], [0, 1, 0]])
    np.testing.assert_allclose(out.reward, [[0, 1, 2], [0, 2, 0], [0, 3, 0]])
    np.testing.assert_allclose(out.value, [[2, 2, 0], [2, 0, 0], [30, 0, 0]])
    third = np.full(3, 1 / 3)
    np.testing.assert_allclose(out.policy[0], [[1, 0, 0], [0, 1, 0], third], rtol=1e-6)
    np.testing.assert_allclose(out.policy[1], [[0, 1, 0], third, third], rtol=1e-6)


def test_first_transition_ending_an_episode_is_kept(n_step_out):
    # Window 1: start = [T, T, F, ...]: the transition from o_0 ended the episode.
    assert bool(n_step_out.reward_mask[1, 0, 1])
    np.testing.assert_allclose(n_step_out.reward[1, 0, 1], WINDOWS["reward"][1, 0])
    # Its value target: the terminal reward, plus gamma v_0 if it was a truncation (discount 1).
    expected = WINDOWS["reward"][1, 0] + GAMMA * WINDOWS["discount"][1, 0] * WINDOWS["value"][1, 0]
    np.testing.assert_allclose(n_step_out.value[1, 0, 0], expected, rtol=1e-6)
    np.testing.assert_array_equal(n_step_out.in_episode[1, 0], [True, False, False, False])
    np.testing.assert_array_equal(n_step_out.reward_mask[1, 0], [False, True, False, False])


# ----------------------------------------------------------------------------------------------
# Reference comparisons (jit + vmap over the batch of windows).


@pytest.mark.parametrize("b", range(NUM_WINDOWS))
def test_n_step_targets_match_reference(n_step_out, b):
    w = WINDOWS
    z = ref_n_step(w["reward"][b], w["discount"][b], w["start"][b], w["value"][b], N, GAMMA)
    ref = _ref_for(b, z)
    for field in ("in_episode", "in_window", "reward_mask"):
        np.testing.assert_array_equal(n_step_out[field][b], ref[field], err_msg=field)
    for field in ("value", "reward", "policy"):
        np.testing.assert_allclose(n_step_out[field][b], ref[field], rtol=1e-5, atol=1e-6, err_msg=field)


def test_lambda_targets_match_forward_view_reference():
    w = WINDOWS
    batched = jax.jit(
        functools.partial(batched_unroll_targets, num_unroll_steps=K, discount_factor=GAMMA, td_lambda=LAMBDA)
    )
    out = batched(w["reward"], w["discount"], w["start"], w["value"], w["policy"])
    for b in range(NUM_WINDOWS):
        z = ref_lambda(w["reward"][b], w["discount"][b], w["start"][b], w["value"][b], LAMBDA, GAMMA)
        ref = _ref_for(b, z)
        np.testing.assert_allclose(out.value[b], ref["value"], rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(out.reward_mask[b], ref["reward_mask"])


def test_lambda_extremes_equal_n_step():
    w = WINDOWS
    args = (w["reward"], w["discount"], w["start"], w["value"])

    def compare(*args):
        one_step = functools.partial(n_step_value_targets, discount_factor=GAMMA, td_steps=1)
        td0 = functools.partial(lambda_value_targets, discount_factor=GAMMA, td_lambda=0.0)
        full = functools.partial(n_step_value_targets, discount_factor=GAMMA, td_steps=L)
        td1 = functools.partial(lambda_value_targets, discount_factor=GAMMA, td_lambda=1.0)
        return [jax.vmap(f)(*args) for f in (td0, one_step, td1, full)]

    td0, one_step, td1, full = jax.jit(compare)(*args)
    np.testing.assert_allclose(td0, one_step, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(td1, full, rtol=1e-5, atol=1e-6)


def test_single_window_equals_batched_slice(n_step_out):
    w = WINDOWS
    b = 5  # several start flags
    single = jax.jit(functools.partial(unroll_targets, num_unroll_steps=K, discount_factor=GAMMA, td_steps=N))(
        w["reward"][b], w["discount"][b], w["start"][b], w["value"][b], w["policy"][b]
    )
    for field in ("value", "reward", "policy", "in_episode", "in_window", "reward_mask"):
        np.testing.assert_allclose(single[field], n_step_out[field][b], rtol=1e-6, err_msg=field)


def test_start_flags_shifted_by_one_change_the_targets(n_step_out):
    # The off-by-one bug (flag placed on the last observation of an episode instead of the
    # first of the next) must give different targets, so the reference tests would catch it.
    w = WINDOWS
    shifted = np.roll(w["start"], -1, axis=1)
    shifted[:, -1] = False
    wrong = _batched_n_step(w["reward"], w["discount"], shifted, w["value"], w["policy"])
    for b in (1, 2, 3, 5):  # windows with a boundary after position 0
        assert not np.allclose(wrong.value[b], n_step_out.value[b]), b
        assert not np.array_equal(wrong.reward_mask[b], n_step_out.reward_mask[b]), b
    # Middle boundary (o_4 starts): root 2 sees the terminal reward r_3 at step 2.
    assert bool(n_step_out.reward_mask[2, 2, 2]) and not bool(n_step_out.reward_mask[2, 2, 3])
    assert bool(wrong.reward_mask[2, 2, 1]) and not bool(wrong.reward_mask[2, 2, 2])


def test_discount_scales_but_does_not_end_episodes():
    # d_1 = 0 with no start flag: rewards after the zero discount vanish from the return.
    r = jnp.array([1.0, 2.0, 3.0, 4.0])
    v = jnp.array([5.0, 6.0, 7.0, 8.0])
    targets = jax.jit(functools.partial(n_step_value_targets, td_steps=3, discount_factor=0.5))
    out = targets(r, jnp.array([1.0, 0.0, 1.0, 1.0]), jnp.zeros(4, bool), v)
    np.testing.assert_allclose(out, [1 + 0.5 * 2, 2.0, 3 + 0.5 * 8, 8.0])


# ----------------------------------------------------------------------------------------------
# Bad input.


def _one_window():
    return (jnp.zeros(4), jnp.ones(4), jnp.zeros(4, bool), jnp.zeros(4), jnp.full((4, 2), 0.5))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_unroll_steps=2, discount_factor=0.9), "exactly one of td_steps"),
        (dict(num_unroll_steps=2, discount_factor=0.9, td_steps=2, td_lambda=0.5), "exactly one of td_steps"),
        (dict(num_unroll_steps=-1, discount_factor=0.9, td_steps=2), "num_unroll_steps"),
        (dict(num_unroll_steps=2, discount_factor=0.9, td_steps=0), "td_steps must be an int"),
        (dict(num_unroll_steps=2, discount_factor=1.5, td_steps=2), "discount_factor"),
        (dict(num_unroll_steps=2, discount_factor=0.9, td_lambda=-0.1), "td_lambda"),
    ],
)
def test_bad_hyperparameters_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        unroll_targets(*_one_window(), **kwargs)


def test_bad_shapes_raise():
    reward, discount, start, value, policy = _one_window()
    kwargs = dict(num_unroll_steps=2, discount_factor=0.9, td_steps=2)
    with pytest.raises(ValueError, match=r"policy \[L, A\].*reward \(4,\).*policy \(3, 2\)"):
        unroll_targets(reward, discount, start, value, policy[:3], **kwargs)
    with pytest.raises(ValueError, match=r"got reward \(1, 4\)"):
        unroll_targets(reward[None], discount, start, value, policy, **kwargs)
    with pytest.raises(ValueError, match="start must be a bool array"):
        unroll_targets(reward, discount, start.astype(jnp.float32), value, policy, **kwargs)
    with pytest.raises(ValueError, match=r"batch of windows.*\(4,\)"):
        batched_unroll_targets(reward, discount, start, value, policy, **kwargs)


# ----------------------------------------------------------------------------------------------
# The return scale (rewards and values are divided by it; 1 for POPGym).


def test_return_scale_by_hand():
    from rmuzero.replay.targets import return_scale

    scale = jax.jit(return_scale)
    # RepeatPrevious-like: 51 rewards of 1/51 sum to 1 (float error aside): scale 1, targets unchanged.
    assert float(scale(jnp.full((2, 51), 1 / 51), jnp.zeros((2, 51), bool).at[:, 0].set(True))) == 1.0
    # Partial sums 0.5, 1.0, 1.02: above 1 + 0.01, so the next power of two.
    assert float(scale(jnp.array([[0.5, 0.5, 0.02]]), jnp.array([[True, False, False]]))) == 2.0
    # CartPole's 500 steps of reward 1 -> 512; a start flag begins a new sum (1, 2, 1, 2 -> 2).
    assert float(scale(jnp.ones((1, 500)), jnp.zeros((1, 500), bool).at[0, 0].set(True))) == 512.0
    assert float(scale(jnp.ones((1, 4)), jnp.array([[True, False, True, False]]))) == 2.0
    # Negative returns count by magnitude (-3, -6 -> 8); the largest over all environments.
    rewards = jnp.array([[-3.0, -3.0], [0.1, 0.1]])
    assert float(scale(rewards, jnp.array([[True, False], [True, False]]))) == 8.0
