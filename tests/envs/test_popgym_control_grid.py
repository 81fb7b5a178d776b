"""Parity of the JAX control and grid POPGym families with ``popgym==1.0.7``.

The reference is driven through its own code: its random generator is replaced
by a scripted one (``_ScriptedRandom``) that hands out the hidden state we also
inject into ours (initial physics, observation noise), or its hidden attributes
(board, mines, maze) are set after ``reset``. Observations are compared after a
one-hot conversion of the reference's discrete components written here,
independently of ``rmuzero.envs.popgym._common``.

Tolerances for the classic-control families: ours integrates in float32, the
reference in float64 (observations float32). Compared one step at a time from
the reference's state rounded to float32 ("teacher forcing"), observations and
rewards agree to 1e-6 (observation magnitudes <= 4.8, a few float32 ulps).
Open loop, CartPole episodes under random actions end within ~60 steps and
agree to 1e-5 (measured 2.2e-7; the pole's unstable mode amplifies rounding by
at most ~1.11 per step). Open-loop pendulum trajectories are not compared:
rounding grows to 1e-3 over 200 steps when the pendulum passes the top.
"""

from __future__ import annotations

import functools
import math
import warnings
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jumanji.types import StepType
from jumanji.wrappers import AutoResetWrapper, VmapWrapper

import rmuzero.envs
from rmuzero.envs.registry import DIFFICULTIES

warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", message=".*step\\(\\)")

from popgym.envs import noisy_position_only_cartpole as ref_noisy_cartpole  # noqa: E402
from popgym.envs import noisy_position_only_pendulum as ref_noisy_pendulum  # noqa: E402
from popgym.envs import position_only_cartpole as ref_cartpole  # noqa: E402
from popgym.envs import position_only_pendulum as ref_pendulum  # noqa: E402
from popgym.envs import velocity_only_cartpole as ref_velocity_cartpole  # noqa: E402

_LEVELS = {"easy": "Easy", "medium": "Medium", "hard": "Hard"}


def _ref_class(module, stem: str, difficulty: str):
    return getattr(module, stem + _LEVELS[difficulty])


CONTROL = {
    "position_only_cartpole": (ref_cartpole, "PositionOnlyCartPole"),
    "noisy_position_only_cartpole": (ref_noisy_cartpole, "NoisyPositionOnlyCartPole"),
    "velocity_only_cartpole": (ref_velocity_cartpole, "VelocityOnlyCartPole"),
    "position_only_pendulum": (ref_pendulum, "PositionOnlyPendulum"),
    "noisy_position_only_pendulum": (ref_noisy_pendulum, "NoisyPositionOnlyPendulum"),
}


class Jitted:
    """One environment with its jitted functions, built once per (family, difficulty)."""

    def __init__(self, family: str, difficulty: str):
        self.env = rmuzero.envs.make("popgym/" + family, difficulty=difficulty)
        self.reset = jax.jit(self.env.reset)
        self.reset_to = jax.jit(self.env.reset_to)
        self.step = jax.jit(self.env.step)
        if hasattr(self.env, "step_with_noise"):
            self.step_with_noise = jax.jit(self.env.step_with_noise)


@functools.lru_cache(maxsize=None)
def jitted(family: str, difficulty: str) -> Jitted:
    return Jitted(family, difficulty)


class _ScriptedRandom:
    """Stands in for a reference env's ``np_random``: returns scripted draws."""

    def __init__(self, uniforms=(), normals=()):
        self.uniforms = list(uniforms)
        self.normals = list(normals)

    def uniform(self, low=0.0, high=1.0, size=None):
        value = np.asarray(self.uniforms.pop(0), np.float64)
        assert np.all(value >= low) and np.all(value <= high)
        return value

    def normal(self, loc=0.0, scale=1.0, size=None):
        return np.asarray(self.normals.pop(0), np.float64)


# ---------------------------------------------------------------------------
# Classic control.


def _is_pendulum(family: str) -> bool:
    return "pendulum" in family


def _is_noisy(family: str) -> bool:
    return family.startswith("noisy")


def _cartpole_controller(state, gains=(0.05, 0.2, 1.0, 0.3)) -> int:
    return int(np.dot(gains, np.asarray(state, np.float64)) > 0)


def _control_episode(family, difficulty, rng, policy):
    """Runs one episode in both, teacher-forcing our physics to the reference's.

    Returns the reference's (terminated, truncated) at the last step, the
    episode length, and our rewards.
    """
    j = jitted(family, difficulty)
    module, stem = CONTROL[family]
    ref = _ref_class(module, stem, difficulty)()
    pendulum = _is_pendulum(family)
    sigma = j.env.noise_sigma
    if pendulum:
        physics = rng.uniform([-np.pi, -1.0], [np.pi, 1.0]).astype(np.float32)
    else:
        physics = rng.uniform(-0.05, 0.05, 4).astype(np.float32)
    noise = (sigma * rng.standard_normal(2)).astype(np.float32)
    ref.np_random = _ScriptedRandom(uniforms=[physics], normals=[noise])
    ref_obs, _ = ref.reset()
    if _is_noisy(family):
        state, ts = j.reset_to(jax.random.PRNGKey(0), physics, noise)
    else:
        state, ts = j.reset_to(jax.random.PRNGKey(0), physics)
    np.testing.assert_allclose(np.asarray(ts.observation), ref_obs, atol=1e-6, rtol=0)
    assert ts.observation.dtype == jnp.float32 and ts.step_type == StepType.FIRST
    rewards = []
    for t in range(1, 10_000):
        ref_state = np.asarray(ref.state, np.float64)
        if pendulum:  # ours keeps theta in [-pi, pi); the reference's is unbounded
            ref_state = np.array([(ref_state[0] + np.pi) % (2 * np.pi) - np.pi, ref_state[1]])
        state = state.replace(physics=jnp.asarray(ref_state, jnp.float32))
        action = policy(t, ref_state)
        noise = (sigma * rng.standard_normal(2)).astype(np.float32)
        ref.np_random = _ScriptedRandom(normals=[noise])
        if pendulum:
            ref_obs, ref_reward, term, trunc, _ = ref.step(np.asarray([j.env.torques[action]], np.float32))
        else:
            ref_obs, ref_reward, term, trunc, _ = ref.step(action)
        if _is_noisy(family):
            state, ts = j.step_with_noise(state, action, noise)
        else:
            state, ts = j.step(state, action)
        np.testing.assert_allclose(np.asarray(ts.observation), ref_obs, atol=1e-6, rtol=0, err_msg=f"step {t}")
        assert abs(float(ts.reward) - ref_reward) < 1e-6, (t, float(ts.reward), ref_reward)
        assert bool(ts.last()) == (term or trunc), t
        assert float(ts.discount) == (0.0 if term else 1.0), t
        assert int(state.step_count) == t
        rewards.append(float(ts.reward))
        if term or trunc:
            return term, trunc, t, rewards
    raise AssertionError("episode did not end")


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize("family", sorted(CONTROL))
def test_control_parity_teacher_forced(family, difficulty):
    rng = np.random.default_rng(zlib.crc32(f"{family}/{difficulty}".encode()))
    j = jitted(family, difficulty)
    num_actions = j.env.action_spec.num_values
    limit = j.env.max_episode_length
    random_policy = lambda t, s: int(rng.integers(num_actions))  # noqa: E731
    if _is_pendulum(family):
        # Random torques, full torque one way, bang-bang every 10 steps: all reach the limit.
        policies = [random_policy, lambda t, s: num_actions - 1, lambda t, s: (t // 10) % 2 * (num_actions - 1)]
        for policy in policies:
            term, trunc, length, _ = _control_episode(family, difficulty, rng, policy)
            assert (term, trunc, length) == (False, True, limit)
    else:
        for _ in range(3):  # random pushes: the pole falls early
            term, trunc, length, _ = _control_episode(family, difficulty, rng, random_policy)
            assert term and length < limit
        # A balancing controller on the reference's state reaches the limit.
        term, trunc, length, rewards = _control_episode(
            family, difficulty, rng, lambda t, s: _cartpole_controller(s)
        )
        assert (term, trunc, length) == (False, True, limit)
        assert math.isclose(sum(rewards), 1.0, abs_tol=1e-4)


@pytest.mark.parametrize("family", ["position_only_cartpole", "velocity_only_cartpole", "noisy_position_only_cartpole"])
def test_cartpole_open_loop_parity(family):
    """Whole random-action episodes without resynchronising the physics."""
    j = jitted(family, "easy")
    module, stem = CONTROL[family]
    rng = np.random.default_rng(7)
    lengths = []
    for _ in range(8):
        physics = rng.uniform(-0.05, 0.05, 4).astype(np.float32)
        noise = (j.env.noise_sigma * rng.standard_normal(2)).astype(np.float32)
        ref = _ref_class(module, stem, "easy")()
        ref.np_random = _ScriptedRandom(uniforms=[physics], normals=[noise])
        ref.reset()
        state, ts = j.reset_to(jax.random.PRNGKey(0), physics, *([noise] if _is_noisy(family) else []))
        for t in range(1, 1000):
            action = int(rng.integers(2))
            noise = (j.env.noise_sigma * rng.standard_normal(2)).astype(np.float32)
            ref.np_random = _ScriptedRandom(normals=[noise])
            ref_obs, ref_reward, term, trunc, _ = ref.step(action)
            if _is_noisy(family):
                state, ts = j.step_with_noise(state, action, noise)
            else:
                state, ts = j.step(state, action)
            np.testing.assert_allclose(np.asarray(ts.observation), ref_obs, atol=1e-5, rtol=0)
            assert abs(float(ts.reward) - ref_reward) < 1e-6
            assert bool(ts.last()) == (term or trunc) and float(ts.discount) == (0.0 if term else 1.0)
            if term or trunc:
                lengths.append(t)
                break
    assert len(lengths) == 8 and max(lengths) > 15  # several non-trivial episodes


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize("family", sorted(CONTROL))
def test_control_parameters_match_reference(family, difficulty):
    module, stem = CONTROL[family]
    ref = _ref_class(module, stem, difficulty)()
    env = jitted(family, difficulty).env
    assert env.max_episode_length == ref.max_episode_length
    ref_sigma = float(ref.noise_sigma[0]) if hasattr(ref, "noise_sigma") else 0.0
    assert env.noise_sigma == ref_sigma
    spec = env.observation_spec
    assert spec.shape == ref.observation_space.shape == (2,)
    np.testing.assert_allclose(np.asarray(spec.maximum), ref.observation_space.high, rtol=1e-6)
    if not _is_pendulum(family):
        assert env.action_spec.num_values == ref.action_space.n == 2


# DESIGN.md section 5: PositionOnlyCartPole truncates at L = 200/400/600 with
# reward 1/L, a full episode returns 1.0; NoisyStatelessCartPole has L = 200
# and sigma 0.1/0.2/0.3.
@pytest.mark.parametrize("difficulty,limit", [("easy", 200), ("medium", 400), ("hard", 600)])
def test_position_only_cartpole_full_episode_returns_one(difficulty, limit):
    j = jitted("position_only_cartpole", difficulty)
    state, ts = j.reset(jax.random.PRNGKey(3))
    total, t = 0.0, 0
    while not ts.last():
        state, ts = j.step(state, _cartpole_controller(state.physics))
        total += float(ts.reward)
        t += 1
        assert float(ts.reward) == pytest.approx(1.0 / limit, rel=1e-6)
    assert t == limit and float(ts.discount) == 1.0
    assert total == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("difficulty,sigma", [("easy", 0.1), ("medium", 0.2), ("hard", 0.3)])
@pytest.mark.parametrize("family", ["noisy_position_only_cartpole", "noisy_position_only_pendulum"])
def test_noise_distribution(family, difficulty, sigma):
    """``step`` adds N(0, sigma) noise: compare with the noise-free observation.

    A component far from its clip bound is used (cart x near 0 for CartPole,
    cos(theta) at theta = pi/2 for Pendulum), so clipping is negligible. With
    n = 4096 draws the sample std has relative standard error 1/sqrt(2n) = 1.1%.
    """
    j = jitted(family, difficulty)
    n = 4096
    if _is_pendulum(family):
        physics = jnp.asarray([jnp.pi / 2, 0.0], jnp.float32)
        clean = lambda p: jnp.cos(p[0])  # noqa: E731
    else:
        physics = jnp.zeros(4, jnp.float32)
        clean = lambda p: p[0]  # noqa: E731
    keys = jax.random.split(jax.random.PRNGKey(11), n)

    @jax.jit
    def residuals(keys):
        states, ts0 = jax.vmap(j.env.reset_to, in_axes=(0, None))(keys, physics)
        states, ts1 = jax.vmap(j.env.step, in_axes=(0, None))(states, jnp.int32(0))
        return states, ts0.observation[:, 0] - clean(physics), ts1.observation[:, 0] - jax.vmap(clean)(states.physics)

    states, residual0, residual1 = (np.asarray(x) if i else x for i, x in enumerate(residuals(keys)))
    for residual in (residual0, residual1):
        assert abs(residual.mean()) < 4 * sigma / math.sqrt(n)
        assert abs(residual.std() / sigma - 1.0) < 0.05
    assert abs(np.corrcoef(residual0, residual1)[0, 1]) < 0.1  # fresh noise each step
    # The noise does not touch the physics: same as the noise-free family.
    plain = jitted(family.removeprefix("noisy_"), "easy")
    plain_state, _ = plain.reset_to(keys[0], physics)
    plain_state, _ = plain.step(plain_state, jnp.int32(0))
    np.testing.assert_allclose(np.asarray(states.physics[0]), np.asarray(plain_state.physics), atol=1e-7, rtol=1e-6)


# ---------------------------------------------------------------------------
# Every family: jumanji wrappers, action errors, out-of-range actions.

ALL_FAMILIES = sorted(CONTROL)


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_wrapped_in_autoreset_and_vmap(family):
    """AutoResetWrapper(VmapWrapper-free env) vmapped over 4 envs, 64 steps in one scan."""
    env = rmuzero.envs.make("popgym/" + family, difficulty="easy")
    wrapped = VmapWrapper(AutoResetWrapper(env, next_obs_in_extras=True))
    batch, steps = 4, 64
    num_actions = env.action_spec.num_values

    @jax.jit
    def rollout(key):
        state, ts = wrapped.reset(jax.random.split(key, batch))

        def body(carry, key):
            state, _ = carry
            action = jax.random.randint(key, (batch,), 0, num_actions)
            state, ts = wrapped.step(state, action)
            return (state, ts), (ts.step_type, ts.observation, ts.extras["next_obs"], state.step_count)

        keys = jax.random.split(key, steps)
        _, out = jax.lax.scan(body, (state, ts), keys)
        return ts, out

    first, (step_type, obs, next_obs, step_count) = rollout(jax.random.PRNGKey(0))
    assert first.observation.shape == (batch, *env.observation_spec.shape)
    assert obs.shape == (steps, batch, *env.observation_spec.shape) and obs.dtype == jnp.float32
    last = np.asarray(step_type) == StepType.LAST
    mid = np.asarray(step_type) == StepType.MID
    assert np.all(last | mid)
    # After a LAST step the state was reset: its step counter restarts at 0.
    np.testing.assert_array_equal(np.asarray(step_count)[last], 0)
    assert np.all(np.asarray(step_count)[mid] > 0)
    # Non-final steps carry their own observation in extras; final ones the terminal one.
    np.testing.assert_array_equal(np.asarray(obs)[mid], np.asarray(next_obs)[mid])
    if "cartpole" in family:
        assert last.any()  # random pushes end CartPole episodes within 64 steps


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_bad_actions(family):
    j = jitted(family, "easy")
    state, _ = j.reset(jax.random.PRNGKey(1))
    n = j.env.action_spec.num_values
    for bad in (jnp.zeros((2,), jnp.int32), jnp.float32(1.0), jnp.zeros((1,), jnp.int32)):
        with pytest.raises(ValueError, match="action must be an integer scalar"):
            j.env.step(state, bad)
    # Inside jit an out-of-range action is clipped to the nearest valid one.
    for bad, clipped in ((n + 3, n - 1), (-2, 0)):
        state_a, ts_a = j.step(state, jnp.int32(bad))
        state_b, ts_b = j.step(state, jnp.int32(clipped))
        jax.tree_util.tree_map(np.testing.assert_array_equal, (state_a, ts_a), (state_b, ts_b))
