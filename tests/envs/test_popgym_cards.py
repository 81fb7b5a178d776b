"""Parity of the JAX card/bandit families with the reference ``popgym==1.0.7``.

Hidden state is injected into the reference through its own ``reset``: its
``np_random`` is replaced by a scripted generator whose ``shuffle`` writes the
chosen deck and whose ``random`` returns the chosen numbers, so the reference
runs its unmodified code on the same deck / payouts as ``reset_from``. Both are
then driven by the same actions (random, always-correct, always-wrong) and must
give the same one-hot observations, rewards (1e-6) and end flags at every step.
The reference -> one-hot conversion below reads the reference's observation
space; it shares no code with ``rmuzero.envs.popgym._common``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, NamedTuple

import gymnasium as gym
import jax
import jax.numpy as jnp
from jumanji.wrappers import AutoResetWrapper, VmapWrapper
import numpy as np
import pytest
from jumanji.types import StepType

from rmuzero.envs import make
from popgym.envs import autoencode as ref_autoencode
from popgym.envs import concentration as ref_concentration
from popgym.envs import count_recall as ref_count_recall
from popgym.envs import higher_lower as ref_higher_lower
from popgym.envs import multiarmed_bandit as ref_multiarmed_bandit
from popgym.envs import repeat_first as ref_repeat_first
from popgym.envs import repeat_previous as ref_repeat_previous

EPISODES_PER_POLICY = 2
MAX_STEPS = 5000  # guard against a runaway loop; longest episode here is 831


# ----------------------------------------------------------------------------
# Reference side: scripted randomness, one-hot encoding.
# ----------------------------------------------------------------------------


class ScriptedRng:
    """Stands in for the reference's ``np_random``: scripted shuffles and draws."""

    def __init__(self, decks: list[np.ndarray] = (), uniforms: list[np.ndarray] = ()):
        self.decks = list(decks)
        self.uniforms = list(uniforms)

    def shuffle(self, x: np.ndarray) -> None:
        deck = self.decks.pop(0)
        assert x.shape == deck.shape
        x[:] = deck

    def random(self, size=None, dtype=np.float64):
        value = self.uniforms.pop(0)
        assert np.shape(value) == (() if size is None else (size,))
        return np.asarray(value, dtype) if size is not None else float(value)


def ref_reset_with_decks(ref: gym.Env, dealing_orders: list[np.ndarray]):
    """Resets the reference so that its decks deal ``dealing_orders`` (each [N])."""
    # The reference deals from the end of Deck.idx: idx is the reversed dealing order.
    ref._np_random = ScriptedRng(decks=[order[::-1].copy() for order in dealing_orders])
    obs, _ = ref.reset()
    assert not ref._np_random.decks
    return obs


def one_hot(space: gym.Space, value: Any) -> np.ndarray:
    """The reference observation ``value`` of ``space``, one-hot per component."""
    if isinstance(space, gym.spaces.Discrete):
        assert 0 <= int(value) < space.n, (value, space)
        out = np.zeros(space.n, np.float32)
        out[int(value)] = 1.0
        return out
    if isinstance(space, gym.spaces.MultiDiscrete):
        return np.concatenate([one_hot(gym.spaces.Discrete(int(n)), v) for n, v in zip(space.nvec, value)])
    if isinstance(space, gym.spaces.Tuple):
        return np.concatenate([one_hot(s, v) for s, v in zip(space.spaces, value)])
    raise TypeError(space)


# ----------------------------------------------------------------------------
# The generic parity driver.
# ----------------------------------------------------------------------------


@dataclasses.dataclass
class Case:
    """One family: how to make, inject and play it on both sides."""

    ref_classes: dict[str, type]  # difficulty -> reference class
    # (ref, rng) -> (reference first obs, reset_from args after the key)
    inject: Callable[[gym.Env, np.random.Generator], tuple[Any, tuple]]
    # name -> (ref, rng) -> action, reading the reference's internals
    policies: dict[str, Callable[[gym.Env, np.random.Generator], int]]
    # The action the reference gets for ours (identity unless ours clips out-of-range actions).
    ref_action: Callable[[gym.Env, int], int] = lambda ref, action: action
    # Called before each step: feeds the reference the randomness our step will use.
    before_step: Callable[[gym.Env, "Jitted", Any], None] | None = None


@dataclasses.dataclass
class Episode:
    rewards: list[float]
    terminated: bool
    truncated: bool


class Jitted(NamedTuple):
    env: Any
    reset: Callable
    reset_from: Callable
    step: Callable
    payout_uniform: Callable | None


@functools.lru_cache(maxsize=None)
def jitted(family: str, difficulty: str) -> Jitted:
    """One jit of each entry point per (family, difficulty), shared by all tests."""
    env = make(f"popgym/{family}", difficulty)
    payout = jax.jit(env.payout_uniform) if hasattr(env, "payout_uniform") else None
    return Jitted(env, jax.jit(env.reset), jax.jit(env.reset_from), jax.jit(env.step), payout)


def play_parity(case: Case, family: str, difficulty: str, policy: str, seed: int) -> list[Episode]:
    """Plays EPISODES_PER_POLICY episodes on both sides, asserting parity step by step."""
    fns = jitted(family, difficulty)
    ref = case.ref_classes[difficulty]()
    rng = np.random.default_rng(seed)
    episodes = []
    for episode in range(EPISODES_PER_POLICY):
        ref_obs, hidden = case.inject(ref, rng)
        state, ts = fns.reset_from(jax.random.PRNGKey(episode), *hidden)
        where = f"{family}/{difficulty}/{policy} episode {episode}"
        np.testing.assert_array_equal(np.asarray(ts.observation), one_hot(ref.observation_space, ref_obs), where)
        assert ts.step_type == StepType.FIRST
        rewards = []
        for t in range(1, MAX_STEPS):
            action = case.policies[policy](ref, rng)
            if case.before_step is not None:
                case.before_step(ref, fns, state)
            ref_obs, ref_reward, terminated, truncated, _ = ref.step(case.ref_action(ref, action))
            state, ts = fns.step(state, np.int32(action))
            at = f"{where} step {t} action {action}"
            np.testing.assert_array_equal(np.asarray(ts.observation), one_hot(ref.observation_space, ref_obs), at)
            np.testing.assert_allclose(float(ts.reward), ref_reward, rtol=0, atol=1e-6, err_msg=at)
            done = terminated or truncated
            assert int(ts.step_type) == (StepType.LAST if done else StepType.MID), at
            assert float(ts.discount) == (0.0 if terminated else 1.0), at
            rewards.append(float(ts.reward))
            if done:
                break
        else:
            raise AssertionError(f"{where}: no end after {MAX_STEPS} steps")
        episodes.append(Episode(rewards, bool(terminated), bool(truncated)))
    return episodes


def random_action(num_actions: int) -> Callable[[gym.Env, np.random.Generator], int]:
    return lambda ref, rng: int(rng.integers(num_actions))


# ----------------------------------------------------------------------------
# Families.
# ----------------------------------------------------------------------------


def inject_one_deck(ref, rng):
    order = rng.permutation(ref.deck.num_cards)
    return ref_reset_with_decks(ref, [order]), (order,)


def repeat_previous_target(ref) -> int:
    hand = ref.deck["player"]
    if len(hand) < ref.k:
        return 0  # no reward yet: any action
    return int(ref.deck.suits_idx[hand[-ref.k]])


def inject_two_decks(ref, rng):
    value_order = rng.permutation(ref.value_deck.num_cards)
    query_order = rng.permutation(ref.query_deck.num_cards)
    return ref_reset_with_decks(ref, [value_order, query_order]), (value_order, query_order)


def count_recall_target(ref) -> int:
    return int(ref.counts[ref.query])


def autoencode_target(ref, rng) -> int:
    if ref.mode == ref_autoencode.Mode.WATCH:
        return int(rng.integers(4))  # ignored while watching
    return int(ref.deck.suits_idx[ref.deck["system"][-1]])


def higher_lower_target(ref) -> int:
    current = ref.deck.ranks_idx[ref.deck["player"][-1]]
    following = ref.deck.ranks_idx[ref.deck.idx[len(ref.deck) - 1]]  # the next card dealt
    return 0 if following > current else 1


def inject_layout(ref, rng):
    layout = rng.permutation(ref.deck.num_cards)
    ref._np_random = ScriptedRng(decks=[layout.copy()])  # Concentration keeps Deck.idx as the layout
    obs, _ = ref.reset()
    return obs, (layout,)


def concentration_target(ref) -> int:
    """A player who sees through the cards: flips a face-down card, then its match."""
    face_up = set(ref.deck["face_up_idx"])
    kinds = ref.deck_idx_type[ref.deck.idx]
    down = [p for p in range(ref.deck.num_cards) if p not in face_up]
    if not ref.deck["in_play_idx"]:
        return down[0]
    first = ref.deck["in_play_idx"][0]
    return next(p for p in down if p != first and kinds[p] == kinds[first])


def clip_to_space(ref, action: int) -> int:
    return int(np.clip(action, 0, ref.action_space.n - 1))


def inject_bandits(ref, rng):
    probabilities = rng.random(ref.num_bandits).astype(np.float32)
    ref._np_random = ScriptedRng(uniforms=[probabilities])
    obs, _ = ref.reset()
    np.testing.assert_array_equal(ref.bandits, probabilities)
    return obs, (probabilities,)


def feed_payout_draw(ref, fns: Jitted, state) -> None:
    ref._np_random.uniforms.append(np.float32(fns.payout_uniform(state)))


def difficulty_classes(module, name: str) -> dict[str, type]:
    return {d: getattr(module, name + d.capitalize()) for d in ("easy", "medium", "hard")}


CASES: dict[str, Case] = {
    "repeat_previous": Case(
        difficulty_classes(ref_repeat_previous, "RepeatPrevious"),
        inject_one_deck,
        {
            "random": random_action(4),
            "correct": lambda ref, rng: repeat_previous_target(ref),
            "wrong": lambda ref, rng: (repeat_previous_target(ref) + 1) % 4,
            # Out of range: the reference compares with ==, so it is a wrong answer.
            "out_of_range": lambda ref, rng: int(rng.choice([-1, 4, 7])),
        },
    ),
    "repeat_first": Case(
        difficulty_classes(ref_repeat_first, "RepeatFirst"),
        inject_one_deck,
        {
            "random": random_action(4),
            "correct": lambda ref, rng: int(ref.card),
            "wrong": lambda ref, rng: (int(ref.card) + 1) % 4,
            "out_of_range": lambda ref, rng: int(rng.choice([-1, 4, 7])),
        },
    ),
    "count_recall": Case(
        difficulty_classes(ref_count_recall, "CountRecall"),
        inject_two_decks,
        {
            # Counts concentrate near N / (2D): draw around them so some guesses are right.
            "random": lambda ref, rng: int(np.clip(count_recall_target(ref) + rng.integers(-1, 2), 0, ref.max_card_count)),
            "correct": lambda ref, rng: count_recall_target(ref),
            "wrong": lambda ref, rng: (count_recall_target(ref) + 1) % (ref.max_card_count + 1),
            "out_of_range": lambda ref, rng: int(rng.choice([-1, ref.max_card_count + 1])),
        },
    ),
    "autoencode": Case(
        difficulty_classes(ref_autoencode, "Autoencode"),
        inject_one_deck,
        {
            "random": random_action(4),
            "correct": autoencode_target,
            "wrong": lambda ref, rng: (autoencode_target(ref, rng) + 1) % 4,
            "out_of_range": lambda ref, rng: int(rng.choice([-1, 4, 7])),
        },
    ),
    "higher_lower": Case(
        difficulty_classes(ref_higher_lower, "HigherLower"),
        inject_one_deck,
        {
            "random": random_action(2),
            "correct": lambda ref, rng: higher_lower_target(ref),
            "wrong": lambda ref, rng: 1 - higher_lower_target(ref),
            # The reference tests `action == 0`: anything else guesses "lower".
            "out_of_range": lambda ref, rng: int(rng.choice([-1, 2, 5])),
        },
    ),
    "concentration": Case(
        difficulty_classes(ref_concentration, "Concentration"),
        inject_layout,
        {
            # Half informed, half random flips: matches, face-up flips, same-card flips.
            "random": lambda ref, rng: concentration_target(ref) if rng.random() < 0.5 else int(rng.integers(ref.deck.num_cards)),
            "correct": lambda ref, rng: concentration_target(ref),
            "wrong": lambda ref, rng: 0,  # the same card twice per turn: -2/L every other step
            "out_of_range": lambda ref, rng: concentration_target(ref) if rng.random() < 0.5 else int(rng.choice([-3, ref.deck.num_cards, ref.deck.num_cards + 9])),
        },
        ref_action=clip_to_space,
    ),
    "multiarmed_bandit": Case(
        difficulty_classes(ref_multiarmed_bandit, "MultiarmedBandit"),
        inject_bandits,
        {
            "random": lambda ref, rng: int(rng.integers(ref.num_bandits)),
            "correct": lambda ref, rng: int(np.argmax(ref.bandits)),
            "wrong": lambda ref, rng: int(np.argmin(ref.bandits)),
            "out_of_range": lambda ref, rng: int(rng.choice([-1, ref.num_bandits, ref.num_bandits + 4])),
        },
        ref_action=clip_to_space,
        before_step=feed_payout_draw,
    ),
}

# Known facts (DESIGN.md section 5): episode length, best and worst return.
EXPECTED = {
    ("repeat_previous", "easy"): dict(length=51, best=1.0, worst=-1.0),
    ("repeat_previous", "medium"): dict(length=103, best=1.0, worst=-1.0),
    ("repeat_previous", "hard"): dict(length=155, best=1.0, worst=-1.0),
    ("repeat_first", "easy"): dict(length=51, best=1.0, worst=-1.0),
    ("repeat_first", "medium"): dict(length=415, best=1.0, worst=-1.0),
    ("repeat_first", "hard"): dict(length=831, best=1.0, worst=-1.0),
    ("count_recall", "easy"): dict(length=51, best=1.0, worst=-1.0, num_actions=27),
    ("count_recall", "medium"): dict(length=103, best=1.0, worst=-1.0, num_actions=27),
    ("count_recall", "hard"): dict(length=207, best=1.0, worst=-1.0, num_actions=17),
    ("autoencode", "easy"): dict(length=103, best=1.0, worst=-1.0),
    ("autoencode", "medium"): dict(length=207, best=1.0, worst=-1.0),
    ("autoencode", "hard"): dict(length=311, best=1.0, worst=-1.0),
    ("higher_lower", "easy"): dict(length=51),
    ("higher_lower", "medium"): dict(length=103),
    ("higher_lower", "hard"): dict(length=155),
    # A seeing player matches every pair in N steps; flipping one card forever is truncated at L.
    ("concentration", "easy"): dict(correct_length=52, correct_end="terminated", best=1.0, wrong_length=104, wrong_end="truncated", worst=-1.0),
    ("concentration", "medium"): dict(correct_length=104, correct_end="terminated", best=1.0, wrong_length=208, wrong_end="truncated", worst=-1.0),
    ("concentration", "hard"): dict(correct_length=52, correct_end="terminated", best=1.0, wrong_length=104, wrong_end="truncated", worst=-1.0),
    ("multiarmed_bandit", "easy"): dict(length=200, end="truncated", num_actions=10),
    ("multiarmed_bandit", "medium"): dict(length=400, end="truncated", num_actions=20),
    ("multiarmed_bandit", "hard"): dict(length=600, end="truncated", num_actions=30),
}

PARAMS = [(family, difficulty) for family in CASES for difficulty in ("easy", "medium", "hard")]


@pytest.mark.parametrize("family,difficulty", PARAMS)
def test_parity_with_reference(family: str, difficulty: str):
    case = CASES[family]
    ref_class = case.ref_classes[difficulty]
    env = make(f"popgym/{family}", difficulty)
    ref = ref_class()
    assert env.action_spec.num_values == ref.action_space.n
    assert env.observation_spec.shape == one_hot(ref.observation_space, ref.observation_space.sample()).shape
    results = {
        policy: play_parity(case, family, difficulty, policy, seed)
        for seed, policy in enumerate(case.policies)
    }
    expected = EXPECTED.get((family, difficulty))
    if expected is None:
        return
    if "num_actions" in expected:
        assert env.action_spec.num_values == expected["num_actions"]
    for policy, episodes in results.items():
        length = expected.get(f"{policy}_length", expected.get("length"))
        end = expected.get(f"{policy}_end", expected.get("end", "terminated"))
        for episode in episodes:
            if length is not None:
                assert len(episode.rewards) == length, (policy, len(episode.rewards))
            if end == "terminated" and length is not None:
                assert episode.terminated, policy
            if end == "truncated":
                assert episode.truncated and not episode.terminated, policy
    if "best" in expected:
        for episode in results["correct"]:
            assert sum(episode.rewards) == pytest.approx(expected["best"], abs=1e-5)
    if "worst" in expected:
        for episode in results["wrong"]:
            assert sum(episode.rewards) == pytest.approx(expected["worst"], abs=1e-5)


@pytest.mark.parametrize("family", list(CASES))
def test_bad_action_raises_outside_jit(family: str):
    env = make(f"popgym/{family}", "easy")
    state, _ = env.reset(jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="integer scalar action"):
        env.step(state, jnp.zeros((2,), jnp.int32))
    with pytest.raises(ValueError, match="integer scalar action"):
        env.step(state, 1.0)
    with pytest.raises(ValueError, match="integer scalar action"):
        env.step(state, jnp.float32(1.0))


@pytest.mark.parametrize("family", list(CASES))
def test_auto_reset_and_vmap_wrappers(family: str):
    """VmapWrapper(AutoResetWrapper(env)) runs under jit; episodes restart at LAST."""
    env = make(f"popgym/{family}", "easy")
    wrapped = VmapWrapper(AutoResetWrapper(env))
    batch, num_steps = 4, 0
    # Random play never matches all of Concentration's pairs in 104 steps: truncated at L.
    lengths = {
        "repeat_previous": 51,
        "repeat_first": 51,
        "count_recall": 51,
        "autoencode": 103,
        "higher_lower": 51,
        "concentration": 104,
        "multiarmed_bandit": 200,
    }
    num_steps = lengths[family] + 3

    @jax.jit
    def rollout(key):
        state, ts = wrapped.reset(jax.random.split(key, batch))

        def body(state, key):
            actions = jax.random.randint(key, (batch,), 0, env.action_spec.num_values)
            state, ts = wrapped.step(state, actions)
            return state, (ts.step_type, ts.observation)

        _, (step_types, observations) = jax.lax.scan(body, state, jax.random.split(key, num_steps))
        return ts, step_types, observations

    first, step_types, observations = rollout(jax.random.PRNGKey(1))
    assert first.observation.shape == (batch, *env.observation_spec.shape)
    assert (first.step_type == StepType.FIRST).all()
    step_types = np.asarray(step_types)
    ends = np.argwhere(step_types == StepType.LAST)
    # Every env ends exactly at step `length` (1-based) and not before.
    np.testing.assert_array_equal(ends[:, 0], np.full(batch, lengths[family] - 1))
    assert observations.dtype == jnp.float32
