"""rmuzero.envs.popgym.anchors: every task present, the numbers consistent with each other and
with the environments, and some ceilings recomputed by another route (an oracle playing the env,
or a simulation that does not use it)."""

from __future__ import annotations

import collections
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rmuzero.envs import DIFFICULTIES, list_envs, make
from rmuzero.envs.popgym import _cards
from rmuzero.envs.popgym._grid import GOAL, MOVES, OBSTACLE
from rmuzero.envs.popgym.anchors import (
    BEST_POSSIBLE_KINDS,
    NOT_FOUND,
    PUBLISHED_FROM,
    REFERENCES,
    SOURCES,
    UNVERIFIED,
    reference,
)

FIELDS = {
    "popgym_gru",
    "popgym_best",
    "popgym_best_model",
    "s5",
    "ffm",
    "random",
    "random_stderr",
    "random_episodes",
    "best_possible",
    "best_possible_kind",
    "best_possible_stderr",
    "best_possible_note",
}
PUBLISHED = ("popgym_gru", "popgym_best", "s5", "ffm")


def test_every_family_and_difficulty_has_one_entry_with_every_field():
    assert set(REFERENCES) == {(name, d) for name in list_envs() for d in DIFFICULTIES}
    for key, entry in REFERENCES.items():
        assert set(entry) == FIELDS, key
        assert entry["best_possible_kind"] in BEST_POSSIBLE_KINDS, key
        assert entry["random_episodes"] >= 1000, key
        assert isinstance(entry["best_possible_note"], str) and entry["best_possible_note"], key
        monte_carlo = "Monte Carlo" in entry["best_possible_kind"]
        assert (entry["best_possible_stderr"] is not None) == monte_carlo, key


def test_published_fields_are_numbers_or_none_and_every_source_is_named():
    for key, entry in REFERENCES.items():
        for field in PUBLISHED:
            assert entry[field] is None or isinstance(entry[field], float), (key, field)
        assert entry["popgym_best_model"] is None or isinstance(entry["popgym_best_model"], str), key
    assert {"popgym", "s5", "ffm", "random", "oracle", "derived"} <= set(SOURCES)
    assert NOT_FOUND
    for key, figures in UNVERIFIED.items():
        assert key in REFERENCES
        assert all(isinstance(value, float) and where for _, value, where in figures)


def test_published_figures_are_where_a_source_was_read_and_between_chance_and_ceiling():
    """The POPGym and S5 figures exist exactly for the five Hard tasks of the S5 paper's table;
    each best model scores at least the GRU, and every figure lies between the random policy's
    return and the ceiling (MMER is a best mean over training, so above chance by construction)."""
    assert sorted(PUBLISHED_FROM) == sorted(
        (f"popgym/{family}", "hard")
        for family in (
            "noisy_position_only_cartpole",
            "noisy_position_only_pendulum",
            "position_only_cartpole",
            "position_only_pendulum",
            "repeat_previous",
        )
    )
    for key, entry in REFERENCES.items():
        read = key in PUBLISHED_FROM
        assert all((entry[field] is not None) == read for field in ("popgym_gru", "popgym_best", "s5")), key
        if read:
            assert PUBLISHED_FROM[key] in SOURCES
            assert entry["popgym_gru"] <= entry["popgym_best"], key
            for field in ("popgym_gru", "popgym_best", "s5"):
                assert entry["random"] < entry[field] <= entry["best_possible"], (key, field)
    for key, figures in UNVERIFIED.items():  # the transcription's best model is never below its GRU
        (_, gru, _), (_, best, _) = figures
        assert gru <= best, key


def test_random_is_below_the_ceiling():
    for key, entry in REFERENCES.items():
        slack = 3 * (entry["random_stderr"] + (entry["best_possible_stderr"] or 0.0))
        assert entry["random"] < entry["best_possible"] + slack, key
        assert entry["best_possible"] <= 1.0, key  # every family's return is at most 1


def _analytic_random(name: str, difficulty: str) -> float | None:
    """The uniform random policy's expected return where it follows from the reward code alone."""
    family = name.split("/", 1)[1]
    if family in ("repeat_first", "repeat_previous", "autoencode"):
        return 2 * (1 / 4) - 1  # +-1/steps with a 1/4 chance of the right suit, summed over the scored steps
    if family == "count_recall":
        return 2 / make(name, difficulty).action_spec.num_values - 1  # the count is one of the A actions
    if family in ("higher_lower", "multiarmed_bandit"):
        return 0.0  # a random guess is right as often as wrong; a random arm pays with E[p] = 1/2
    return None


def test_random_agrees_with_the_analytic_expectation_where_there_is_one():
    checked = 0
    for (name, difficulty), entry in REFERENCES.items():
        expected = _analytic_random(name, difficulty)
        if expected is not None:
            assert abs(entry["random"] - expected) <= 4 * entry["random_stderr"], (name, difficulty)
            checked += 1
    assert checked == 6 * 3


def test_reference_returns_a_copy_and_rejects_unknown_tasks():
    entry = reference("popgym/repeat_previous", "hard")
    entry["best_possible"] = -1.0
    assert REFERENCES[("popgym/repeat_previous", "hard")]["best_possible"] == 1.0
    with pytest.raises(ValueError, match="popgym/repeat_previous"):
        reference("popgym/nope", "easy")
    with pytest.raises(ValueError, match="easy, medium, hard"):
        reference("popgym/repeat_previous", "extreme")


def _play(env, policy, memory, key, episodes):
    """Returns ``[episodes]`` of ``policy(state, observation, memory) -> (action, memory)``."""

    def episode(key):
        state, timestep = env.reset(key)

        def body(carry, _):
            state, observation, memory, ret, done = carry
            action, memory = policy(state, observation, memory)
            state, timestep = env.step(state, action)
            ret = ret + jnp.where(done, 0.0, timestep.reward)
            return (state, timestep.observation, memory, ret, done | timestep.last()), None

        init = (state, timestep.observation, memory, jnp.zeros((), jnp.float32), jnp.zeros((), bool))
        (_, _, _, ret, done), _ = jax.lax.scan(body, init, None, length=env.max_episode_length)
        return ret, done

    returns, done = jax.jit(jax.vmap(episode))(jax.random.split(key, episodes))
    assert bool(jnp.all(done))
    return np.asarray(returns, np.float64)


@pytest.mark.parametrize("difficulty", ["easy", "hard"])
def test_repeat_previous_oracle_reaches_the_exact_ceiling(difficulty):
    env = make("popgym/repeat_previous", difficulty)

    def oracle(state, observation, memory):  # the suit of the card the next step asks for
        target = state.cards[jnp.maximum(state.step_count + 1 - env.k, 0)]
        return _cards.card_field(target, "suits"), memory

    returns = _play(env, oracle, jnp.zeros(()), jax.random.key(0), 8)
    np.testing.assert_allclose(returns, reference("popgym/repeat_previous", difficulty)["best_possible"], atol=1e-5)


@pytest.mark.parametrize("name", ["popgym/position_only_cartpole", "popgym/velocity_only_cartpole"])
def test_cartpole_controller_on_the_observations_reaches_the_exact_ceiling(name):
    """A linear controller that sees only the observations: (x, theta) and their finite differences,
    or (x_dot, theta_dot) and their Euler sums (the reset offsets of x, theta, |.| <= 0.05, unknown)."""
    tau = 0.02  # gymnasium CartPole's time step
    gains = jnp.asarray([0.05, 0.1, 1.0, 0.2])  # on (x, x_dot, theta, theta_dot)
    env = make(name, "hard")  # L = 600

    def from_positions(state, observation, memory):  # memory: [previous observation, started flag]
        previous = jnp.where(memory[2] > 0, memory[:2], observation)
        velocity = (observation - previous) / tau
        estimate = jnp.stack([observation[0], velocity[0], observation[1], velocity[1]])
        return (jnp.dot(estimate, gains) > 0).astype(jnp.int32), jnp.concatenate([observation, jnp.ones(1)])

    def from_velocities(state, observation, memory):  # memory: [summed positions, unused]
        estimate = jnp.stack([memory[0], observation[0], memory[1], observation[1]])
        memory = memory.at[:2].add(tau * observation)
        return (jnp.dot(estimate, gains) > 0).astype(jnp.int32), memory

    policy = from_positions if name == "popgym/position_only_cartpole" else from_velocities
    returns = _play(env, policy, jnp.zeros(3), jax.random.key(1), 8)
    np.testing.assert_allclose(returns, reference(name, "hard")["best_possible"], atol=1e-5)


def test_multiarmed_bandit_clairvoyant_averages_the_derived_bound():
    env = make("popgym/multiarmed_bandit", "easy")

    def clairvoyant(state, observation, memory):
        return jnp.argmax(state.probabilities).astype(jnp.int32), memory

    returns = _play(env, clairvoyant, jnp.zeros(()), jax.random.key(2), 2000)
    stderr = returns.std(ddof=1) / math.sqrt(len(returns))
    assert abs(returns.mean() - reference("popgym/multiarmed_bandit", "easy")["best_possible"]) < 4 * stderr


def test_higher_lower_card_counting_recomputed_without_the_env():
    """The optimal policy's value by a numpy simulation of shuffled decks (no JAX env), against the
    module's Monte Carlo value; both below the clairvoyant's 12/13."""
    rng = np.random.default_rng(0)
    num_cards, episodes = 52, 1000
    ranks_of_deck = (np.arange(num_cards) // 4) % 13
    returns = np.empty(episodes)
    for i in range(episodes):
        ranks = ranks_of_deck[rng.permutation(num_cards)]
        unseen = np.bincount(ranks, minlength=13)
        total = 0.0
        for t in range(num_cards - 1):
            current, following = ranks[t], ranks[t + 1]
            unseen[current] -= 1
            guess_higher = unseen[current + 1 :].sum() >= unseen[:current].sum()
            if following != current:
                total += (1 if (following > current) == guess_higher else -1) / num_cards
        returns[i] = total
    entry = reference("popgym/higher_lower", "easy")
    stderr = math.hypot(returns.std(ddof=1) / math.sqrt(episodes), entry["best_possible_stderr"])
    assert abs(returns.mean() - entry["best_possible"]) < 4 * stderr
    for difficulty in DIFFICULTIES:
        assert reference("popgym/higher_lower", difficulty)["best_possible"] < 12 / 13


def test_labyrinth_escape_shortest_path_played_in_the_env():
    """A clairvoyant walking the breadth-first shortest path escapes with 1 - d/L, below the
    analytic bound 1 - D/L that the module's Monte Carlo ceiling must respect too."""
    env = make("popgym/labyrinth_escape", "easy")
    reset, step = jax.jit(env.reset), jax.jit(env.step)
    bound = 1 - env.maze_dims[0] / env.max_episode_length
    assert reference("popgym/labyrinth_escape", "easy")["best_possible"] <= bound
    for seed in range(3):
        state, _ = reset(jax.random.key(seed))
        grid, start = np.asarray(state.grid), tuple(int(v) for v in state.position)
        parent, queue = {start: None}, collections.deque([start])
        while queue:
            cell = queue.popleft()
            for move, (dy, dx) in enumerate(MOVES):
                nxt = (cell[0] + dy, cell[1] + dx)
                inside = 0 <= nxt[0] < grid.shape[0] and 0 <= nxt[1] < grid.shape[1]
                if inside and grid[nxt] != OBSTACLE and nxt not in parent:
                    parent[nxt] = (cell, move)
                    queue.append(nxt)
        cell, moves = tuple(int(v) for v in np.argwhere(grid == GOAL)[0]), []
        while parent[cell] is not None:
            cell, move = parent[cell]
            moves.append(move)
        total, timestep = 0.0, None
        for move in reversed(moves):
            state, timestep = step(state, jnp.int32(move))
            total += float(timestep.reward)
        assert bool(timestep.last()) and float(timestep.discount) == 0.0  # escaped (terminated)
        assert total == pytest.approx(1 - len(moves) / env.max_episode_length, abs=1e-5)
        assert total <= bound + 1e-6
