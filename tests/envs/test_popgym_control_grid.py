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
from typing import NamedTuple

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

from popgym.envs import battleship as ref_battleship  # noqa: E402
from popgym.envs import labyrinth_escape as ref_labyrinth_escape  # noqa: E402
from popgym.envs import labyrinth_explore as ref_labyrinth_explore  # noqa: E402
from popgym.envs import minesweeper as ref_minesweeper  # noqa: E402
from popgym.envs import noisy_position_only_cartpole as ref_noisy_cartpole  # noqa: E402
from popgym.envs import noisy_position_only_pendulum as ref_noisy_pendulum  # noqa: E402
from popgym.envs import position_only_cartpole as ref_cartpole  # noqa: E402
from popgym.envs import position_only_pendulum as ref_pendulum  # noqa: E402
from popgym.envs import velocity_only_cartpole as ref_velocity_cartpole  # noqa: E402

_LEVELS = {"easy": "Easy", "medium": "Medium", "hard": "Hard"}


def _ref_class(module, stem: str, difficulty: str):
    return getattr(module, stem + _LEVELS[difficulty])


# The fast loop (`pytest -m "not slow"`) checks every family at Easy; Medium and Hard run in the full suite.
PARITY_DIFFICULTIES = [d if d == "easy" else pytest.param(d, marks=pytest.mark.slow) for d in DIFFICULTIES]

CONTROL = {
    "position_only_cartpole": (ref_cartpole, "PositionOnlyCartPole"),
    "noisy_position_only_cartpole": (ref_noisy_cartpole, "NoisyPositionOnlyCartPole"),
    "velocity_only_cartpole": (ref_velocity_cartpole, "VelocityOnlyCartPole"),
    "position_only_pendulum": (ref_pendulum, "PositionOnlyPendulum"),
    "noisy_position_only_pendulum": (ref_noisy_pendulum, "NoisyPositionOnlyPendulum"),
}

GRID = {
    "minesweeper": (ref_minesweeper, "MineSweeper"),
    "battleship": (ref_battleship, "Battleship"),
    "labyrinth_escape": (ref_labyrinth_escape, "LabyrinthEscape"),
    "labyrinth_explore": (ref_labyrinth_explore, "LabyrinthExplore"),
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


class HostStep(NamedTuple):
    """One timestep fetched to the host in a single transfer."""

    observation: np.ndarray
    reward: float
    discount: float
    last: bool


def _host(ts) -> HostStep:
    ts = jax.device_get(ts)
    return HostStep(ts.observation, float(ts.reward), float(ts.discount), bool(ts.step_type == StepType.LAST))


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
        ts = _host(ts)
        np.testing.assert_allclose(ts.observation, ref_obs, atol=1e-6, rtol=0, err_msg=f"step {t}")
        assert abs(ts.reward - ref_reward) < 1e-6, (t, ts.reward, ref_reward)
        assert ts.last == (term or trunc), t
        assert ts.discount == (0.0 if term else 1.0), t
        rewards.append(ts.reward)
        if term or trunc:
            assert int(state.step_count) == t
            return term, trunc, t, rewards
    raise AssertionError("episode did not end")


@pytest.mark.parametrize("difficulty", PARITY_DIFFICULTIES)
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
        term, trunc, length, rewards = _control_episode(family, difficulty, rng, lambda t, s: _cartpole_controller(s))
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
            ts = _host(ts)
            np.testing.assert_allclose(ts.observation, ref_obs, atol=1e-5, rtol=0)
            assert abs(ts.reward - ref_reward) < 1e-6
            assert ts.last == (term or trunc) and ts.discount == (0.0 if term else 1.0)
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
    if _is_pendulum(family):  # our discretisation of the reference's Box(-2, 2, (1,)) torque
        np.testing.assert_array_equal(np.asarray(env.torques), [-2.0, -1.0, 0.0, 1.0, 2.0])
        np.testing.assert_array_equal(ref.action_space.low, [-2.0])
        np.testing.assert_array_equal(ref.action_space.high, [2.0])
    else:
        assert env.action_spec.num_values == ref.action_space.n == 2


# docs/design.md section 5: PositionOnlyCartPole truncates at L = 200/400/600 with
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
@pytest.mark.slow
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
# Grid families. The reference's observations are integers (MultiDiscrete for
# the labyrinths): one-hot each component here.


def _ref_one_hot(obs, sizes) -> np.ndarray:
    obs = np.atleast_1d(np.asarray(obs))
    assert len(obs) == len(sizes)
    return np.concatenate([np.eye(size, dtype=np.float32)[int(v)] for v, size in zip(obs, sizes)])


def _ref_obs_sizes(ref) -> list[int]:
    space = ref.observation_space
    return [int(space.n)] if hasattr(space, "n") else [int(n) for n in space.nvec]


def _grid_episode(j, ref, actions, state, ts, to_ref_action):
    """Steps both with ``actions`` until an episode end; compares every step.

    Returns (terminated, truncated, length, rewards) of the reference.
    """
    sizes = _ref_obs_sizes(ref)
    rewards = []
    for t, action in enumerate(actions, start=1):
        ref_obs, ref_reward, term, trunc, _ = ref.step(to_ref_action(action))
        state, ts = j.step(state, jnp.int32(action))
        ts = _host(ts)
        np.testing.assert_array_equal(ts.observation, _ref_one_hot(ref_obs, sizes), err_msg=f"step {t}")
        assert abs(ts.reward - ref_reward) < 1e-6, (t, ts.reward, ref_reward)
        assert ts.last == (term or trunc), (t, term, trunc)
        assert ts.discount == (0.0 if term else 1.0), t
        rewards.append(ref_reward)
        if term or trunc:
            return term, trunc, t, rewards
    raise AssertionError("action sequence ended before the episode")


def _minesweeper_pair(difficulty, seed):
    j = jitted("minesweeper", difficulty)
    ref = _ref_class(ref_minesweeper, "MineSweeper", difficulty)()
    ref_obs, _ = ref.reset(seed=seed)
    mines = ref.hidden_grid == 1
    state, ts = j.reset_to(jax.random.PRNGKey(seed), mines)
    np.testing.assert_array_equal(np.asarray(ts.observation), _ref_one_hot(ref_obs, _ref_obs_sizes(ref)))
    return j, ref, state, ts, mines


@pytest.mark.parametrize("difficulty", PARITY_DIFFICULTIES)
def test_minesweeper_parity(difficulty):
    rng = np.random.default_rng(zlib.crc32(difficulty.encode()))
    width = jitted("minesweeper", difficulty).env.dims[1]
    to_ref = lambda a: np.array([a // width, a % width])  # noqa: E731
    limit = jitted("minesweeper", difficulty).env.max_episode_length
    ends = set()
    for seed in range(6):
        j, ref, state, ts, mines = _minesweeper_pair(difficulty, seed)
        cells = mines.size
        safe = [a for a in range(cells) if not mines.flat[a]]
        sequences = {
            "random": rng.integers(cells, size=10 * cells),
            "row_major": np.arange(cells),  # ends on the first mine (or on a win)
            "safe_in_order": np.array(safe),  # wins: every safe tile once
            "repeat_one_safe": np.full(limit, safe[0]),  # repeats until truncation
            "random_safe": rng.choice(safe, size=10 * cells),
        }
        for name, actions in sequences.items():
            j, ref, state, ts, _ = _minesweeper_pair(difficulty, seed)
            term, trunc, length, rewards = _grid_episode(j, ref, actions, state, ts, to_ref)
            ends.add((name, term, trunc))
            if name == "safe_in_order":
                assert (term, trunc, length) == (True, False, limit) and math.isclose(sum(rewards), 1.0)
            if name == "repeat_one_safe":
                assert (term, trunc, length) == (False, True, limit)
    assert ("random", True, False) in ends  # random clicks hit mines


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.slow
def test_minesweeper_sampling_and_counts(difficulty):
    j = jitted("minesweeper", difficulty)
    states, _ = jax.jit(jax.vmap(j.env.reset))(jax.random.split(jax.random.PRNGKey(0), 512))
    mines = np.asarray(states.mines)
    assert np.all(mines.sum(axis=(1, 2)) == j.env.num_mines)
    frequency = mines.mean(0)
    expected = j.env.num_mines / mines[0].size
    assert np.abs(frequency - expected).max() < 5 * math.sqrt(expected * (1 - expected) / 512)
    # The count includes the clicked tile: a lone mine counts 1 on itself and its 8 neighbours.
    lone = np.zeros(j.env.dims, bool)
    lone[2, 2] = True
    state, _ = j.reset_to(jax.random.PRNGKey(0), lone)
    np.testing.assert_array_equal(np.asarray(state.counts)[1:4, 1:4], np.ones((3, 3)))
    assert int(np.asarray(state.counts).sum()) == 9


def _battleship_pair(difficulty, seed, board=None):
    j = jitted("battleship", difficulty)
    ref = _ref_class(ref_battleship, "Battleship", difficulty)()
    ref_obs, _ = ref.reset(seed=seed)
    if board is not None:
        ref.board = board.astype(np.int8)
    state, ts = j.reset_to(jax.random.PRNGKey(seed), ref.board == 1)
    np.testing.assert_array_equal(np.asarray(ts.observation), _ref_one_hot(ref_obs, [2]))
    return j, ref, state, ts


@pytest.mark.parametrize("difficulty", PARITY_DIFFICULTIES)
def test_battleship_parity(difficulty):
    rng = np.random.default_rng(zlib.crc32(difficulty.encode()))
    size = jitted("battleship", difficulty).env.board_size
    limit = size * size
    to_ref = lambda a: np.array([a // size, a % size])  # noqa: E731
    for seed in range(4):
        j, ref, state, ts = _battleship_pair(difficulty, seed)
        ships = np.flatnonzero(ref.board.ravel())
        sequences = {
            "random": rng.integers(limit, size=limit),  # repeats: usually truncated
            "permutation": rng.permutation(limit),  # every cell once: sinks all at the last ship cell
            "ships_first": np.concatenate([ships, ships]),  # perfect play: returns 1.0
            "repeat_one": np.full(limit, ships[0]),  # one hit, then misses until truncation
        }
        for name, actions in sequences.items():
            j, ref, state, ts = _battleship_pair(difficulty, seed)
            term, trunc, length, rewards = _grid_episode(j, ref, actions, state, ts, to_ref)
            if name == "ships_first":
                assert (term, length) == (True, 12) and math.isclose(sum(rewards), 1.0)
            if name == "repeat_one":
                assert (term, trunc, length) == (False, True, limit)
                assert math.isclose(sum(rewards), 1 / 12 - (limit - 1) / (limit - 12))
    # Last shot of the episode sinks the last ship: the reference reports both
    # terminated and truncated; ours is a termination (discount 0).
    board = np.zeros((size, size), bool)
    board[-1, -4:] = board[0, :2] = board[2, :3] = board[4, :3] = True
    j, ref, state, ts = _battleship_pair(difficulty, 0, board)
    term, trunc, length, _ = _grid_episode(j, ref, np.arange(limit), state, ts, to_ref)
    assert (term, trunc, length) == (True, True, limit)


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.slow
def test_battleship_placement_distribution(difficulty):
    """Our ship placement against the reference's: 12 cells, same row/column marginals."""
    j = jitted("battleship", difficulty)
    n = 400
    states, _ = jax.jit(jax.vmap(j.env.reset))(jax.random.split(jax.random.PRNGKey(1), n))
    ours = np.asarray(states.board)
    assert np.all(ours.sum(axis=(1, 2)) == 12)
    ref = _ref_class(ref_battleship, "Battleship", difficulty)()
    theirs = []
    for i in range(n):
        ref.reset(seed=1000 + i)
        theirs.append(ref.board == 1)
    theirs = np.stack(theirs)
    for axis in (1, 2):  # per-row and per-column occupancy
        ours_marginal = ours.mean(axis=axis).mean(0)
        theirs_marginal = theirs.mean(axis=axis).mean(0)
        # each marginal averages S cells over n boards: std error < 0.02
        np.testing.assert_allclose(ours_marginal, theirs_marginal, atol=0.06)
    # Each placed ship is a straight segment: every ship cell has a ship neighbour in its row or column.
    padded = np.pad(ours, ((0, 0), (1, 1), (1, 1)))
    neighbour = padded[:, :-2, 1:-1] | padded[:, 2:, 1:-1] | padded[:, 1:-1, :-2] | padded[:, 1:-1, 2:]
    assert np.all(neighbour[ours])


def _labyrinth_pair(family, difficulty, seed):
    j = jitted(family, difficulty)
    module, stem = GRID[family]
    ref = _ref_class(module, stem, difficulty)()
    ref_obs, _ = ref.reset(seed=seed)
    walls = ref.maze.grid == 1
    state, ts = j.reset_to(jax.random.PRNGKey(seed), walls, np.array(ref.maze.start), np.array(ref.maze.end))
    np.testing.assert_array_equal(np.asarray(ts.observation), _ref_one_hot(ref_obs, _ref_obs_sizes(ref)))
    return j, ref, state, ts


def _maze_moves(grid, start, goal=None) -> list[int]:
    """Moves of a depth-first tour of every walkable cell (or the BFS path to ``goal``)."""
    deltas = {0: (0, -1), 1: (0, 1), 2: (-1, 0), 3: (1, 0)}
    walkable = lambda p: 0 <= p[0] < grid.shape[0] and 0 <= p[1] < grid.shape[1] and grid[p] != 1  # noqa: E731
    if goal is not None:
        parent, frontier = {start: None}, [start]
        while frontier:
            pos = frontier.pop(0)
            for a, (dy, dx) in deltas.items():
                nxt = (pos[0] + dy, pos[1] + dx)
                if walkable(nxt) and nxt not in parent:
                    parent[nxt] = (pos, a)
                    frontier.append(nxt)
        moves, pos = [], goal
        while parent[pos] is not None:
            pos, a = parent[pos]
            moves.append(a)
        return moves[::-1]
    moves, seen = [], {start}
    opposite = {0: 1, 1: 0, 2: 3, 3: 2}

    def tour(pos):
        for a, (dy, dx) in deltas.items():
            nxt = (pos[0] + dy, pos[1] + dx)
            if walkable(nxt) and nxt not in seen:
                seen.add(nxt)
                moves.append(a)
                tour(nxt)
                moves.append(opposite[a])

    tour(start)
    return moves


# The reference warns on every maze it builds that mazes are solvable without memory; the
# parity test builds them on purpose (rmuzero reimplements every reference family).
@pytest.mark.filterwarnings("ignore:Maze environments have been shown:DeprecationWarning")
@pytest.mark.parametrize("difficulty", PARITY_DIFFICULTIES)
@pytest.mark.parametrize("family", ["labyrinth_escape", "labyrinth_explore"])
def test_labyrinth_parity(family, difficulty):
    rng = np.random.default_rng(zlib.crc32(f"{family}/{difficulty}".encode()))
    limit = jitted(family, difficulty).env.max_episode_length
    to_ref = int
    sides = set()
    for seed in range(4):
        j, ref, state, ts = _labyrinth_pair(family, difficulty, seed)
        start = tuple(ref.maze.start)
        sides.add((start[0] == 0, start[1] == 0))
        grid = ref.maze.grid.copy()
        if family == "labyrinth_escape":
            solve = _maze_moves(grid, start, tuple(ref.maze.end))
            term, trunc, length, rewards = _grid_episode(j, ref, solve, state, ts, to_ref)
            assert (term, trunc, length) == (True, False, len(solve))
            assert math.isclose(sum(rewards), 1.0 - length / limit)
        else:
            tour = _maze_moves(grid, start)
            term, trunc, length, rewards = _grid_episode(j, ref, tour, state, ts, to_ref)
            assert term and not trunc and length <= len(tour)
            assert math.isclose(sum(r for r in rewards if r > 0), 1.0)
        if seed == 0:  # a random walk, bumping into walls, run to the time limit
            j, ref, state, ts = _labyrinth_pair(family, difficulty, seed)
            term, trunc, length, _ = _grid_episode(j, ref, rng.integers(4, size=limit), state, ts, to_ref)
            assert term or (trunc and length == limit - 1)  # the reference truncates after L - 1 steps
    # Seeds 0-3 start on the top row and on the left column at every
    # difficulty: the reference's shifted edge view is exercised.
    assert (True, False) in sides and (False, True) in sides


def test_local_view_edge_quirk():
    """By hand: on the top row the reference's 3x3 view is shifted down-padded."""
    from rmuzero.envs.popgym._grid import local_view

    grid = np.arange(25).reshape(5, 5)
    np.testing.assert_array_equal(np.asarray(local_view(jnp.asarray(grid), jnp.array([2, 2]))), grid[1:4, 1:4])
    top = np.asarray(local_view(jnp.asarray(grid), jnp.array([0, 2])))
    np.testing.assert_array_equal(top, [[1, 2, 3], [6, 7, 8], [1, 1, 1]])  # agent (value 2) in view row 0
    corner = np.asarray(local_view(jnp.asarray(grid), jnp.array([4, 0])))
    np.testing.assert_array_equal(corner, [[15, 16, 1], [20, 21, 1], [1, 1, 1]])


def _maze_stats(walls: np.ndarray) -> tuple[bool, int, int]:
    """(perfect tree, open cells, dead ends) of a maze's walls."""
    open_ = ~walls
    h, w = walls.shape
    cells = [(r, c) for r in range(1, h, 2) for c in range(1, w, 2)]
    edges = int(open_[2:-1:2, 1::2].sum() + open_[1::2, 2:-1:2].sum())
    seen, stack = {cells[0]}, [cells[0]]
    while stack:
        r, c = stack.pop()
        for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            if open_[r + dr, c + dc] and (r + 2 * dr, c + 2 * dc) not in seen:
                seen.add((r + 2 * dr, c + 2 * dc))
                stack.append((r + 2 * dr, c + 2 * dc))
    perfect = len(seen) == len(cells) and edges == len(cells) - 1 and int(open_.sum()) == len(cells) + edges
    dead_ends = sum(sum(open_[r + dr, c + dc] for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1))) == 1 for r, c in cells)
    return perfect, int(open_.sum()), dead_ends


def test_maze_generator_matches_mazelib():
    """Ours vs mazelib's HuntAndKill on 5x5 mazes: perfect mazes, same dead-end statistics."""
    import random

    from mazelib import Maze
    from mazelib.generate.HuntAndKill import HuntAndKill

    from rmuzero.envs.popgym._grid import hunt_and_kill_maze, outer_entrances

    n = 300
    keys = jax.random.split(jax.random.PRNGKey(5), n)
    walls = np.asarray(jax.jit(jax.vmap(lambda k: hunt_and_kill_maze(k, 5, 5)))(keys))
    ours = np.array([_maze_stats(w) for w in walls])
    theirs = []
    for seed in range(n):
        random.seed(seed)
        np.random.seed(seed)
        maze = Maze()
        maze.generator = HuntAndKill(5, 5)
        maze.generate()
        theirs.append(_maze_stats(maze.grid == 1))
    theirs = np.array(theirs)
    assert ours[:, 0].all() and theirs[:, 0].all()
    assert np.all(ours[:, 1] == 49)
    # Dead ends per maze: mean ~4.1, std ~1.0; the difference of two means of
    # n = 300 has standard error 0.08.
    assert abs(ours[:, 2].mean() - theirs[:, 2].mean()) < 0.35
    assert abs(ours[:, 2].std() - theirs[:, 2].std()) < 0.3
    starts, ends = jax.jit(jax.vmap(lambda k: outer_entrances(k, 11, 11)))(keys)
    starts, ends = np.asarray(starts), np.asarray(ends)
    on_edge = lambda p: (p == 0) | (p == 10)  # noqa: E731
    # One coordinate on an outer wall, the other odd; end on the opposite wall.
    assert np.all(on_edge(starts).sum(1) == 1) and np.all(starts[~on_edge(starts)] % 2 == 1)
    np.testing.assert_array_equal(10 - starts[on_edge(starts)], ends[on_edge(ends)])
    sides = np.where(starts[:, 0] == 0, 0, np.where(starts[:, 0] == 10, 1, np.where(starts[:, 1] == 0, 2, 3)))
    # Uniform sides: each count is Binomial(n, 1/4), within 4 standard deviations.
    assert np.all(np.abs(np.bincount(sides, minlength=4) - n / 4) < 4 * math.sqrt(n * 3 / 16))


# ---------------------------------------------------------------------------
# Every family: jumanji wrappers, action errors, out-of-range actions.

ALL_FAMILIES = sorted([*CONTROL, *GRID])


# Time limits shortened so that every family ends episodes within the scan.
_SHORT_LIMIT = {"labyrinth_escape": {"episode_length": 12}, "labyrinth_explore": {"episode_length": 12}}


@pytest.mark.parametrize("family", ALL_FAMILIES)
@pytest.mark.slow
def test_wrapped_in_autoreset_and_vmap(family):
    """VmapWrapper(AutoResetWrapper(env)) over 4 envs, 72 random steps of one jitted step
    (tests/envs/test_registry.py runs the other families through the same wrappers)."""
    module = rmuzero.envs.registry._module(family)
    limit = _SHORT_LIMIT.get(family, {"max_episode_length": 20} if family in CONTROL else {})
    env = module.ENVIRONMENT(**{**module.DIFFICULTIES["easy"], **limit})
    wrapped = VmapWrapper(AutoResetWrapper(env, next_obs_in_extras=True))
    batch, steps = 4, 72
    rng = np.random.default_rng(0)
    state, first = jax.jit(wrapped.reset)(jax.random.split(jax.random.PRNGKey(0), batch))
    # XLA's default fusion emitters, as users run it (tests/conftest.py turns them off to compile
    # faster): with the older emitters the two fusions that each compute a noisy observation (the
    # step's and extras["next_obs"]) may vectorise sin / log differently and differ in the last bit.
    step = (
        jax.jit(wrapped.step).lower(state, jnp.zeros(batch, jnp.int32)).compile({"xla_cpu_use_fusion_emitters": True})
    )
    outs = []
    for _ in range(steps):
        state, ts = step(state, jnp.asarray(rng.integers(env.action_spec.num_values, size=batch), jnp.int32))
        outs.append((ts.step_type, ts.observation, ts.extras["next_obs"], state.step_count, ts.reward, ts.discount))
    step_type, obs, next_obs, step_count, reward, discount = (np.stack(x) for x in zip(*jax.device_get(outs)))
    assert first.observation.shape == (batch, *env.observation_spec.shape)
    assert obs.shape == (steps, batch, *env.observation_spec.shape) and obs.dtype == jnp.float32
    assert reward.shape == discount.shape == (steps, batch)
    assert np.isfinite(obs).all() and np.isfinite(reward).all()
    assert ((discount == 0) | (discount == 1)).all()
    # Every return lies in about [-1, 1] (docs/design.md section 5): per step, too.
    assert (np.abs(reward) <= 1.0 + 1e-6).all(), reward
    last = np.asarray(step_type) == StepType.LAST
    mid = np.asarray(step_type) == StepType.MID
    assert np.all(last | mid)
    # After a LAST step the state was reset: its step counter restarts at 0.
    np.testing.assert_array_equal(np.asarray(step_count)[last], 0)
    assert np.all(np.asarray(step_count)[mid] > 0)
    # Non-final steps carry their own observation in extras; final ones the terminal one.
    np.testing.assert_array_equal(np.asarray(obs)[mid], np.asarray(next_obs)[mid])
    assert last.any(axis=0).all()  # every env ended an episode (battleship: L = 64 steps)


@pytest.mark.parametrize("family", ALL_FAMILIES)
@pytest.mark.slow
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
