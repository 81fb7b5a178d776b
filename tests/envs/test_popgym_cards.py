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
import numpy as np
import pytest
from jumanji.types import StepType
from jumanji.wrappers import AutoResetWrapper, VmapWrapper
from popgym.envs import autoencode as ref_autoencode
from popgym.envs import concentration as ref_concentration
from popgym.envs import count_recall as ref_count_recall
from popgym.envs import higher_lower as ref_higher_lower
from popgym.envs import multiarmed_bandit as ref_multiarmed_bandit
from popgym.envs import repeat_first as ref_repeat_first
from popgym.envs import repeat_previous as ref_repeat_previous

from rmuzero.envs import make

EPISODES_PER_POLICY = 2
# These tests check behaviour, not speed: XLA backend optimisations off roughly halves compile time.
FAST_COMPILE = {"xla_backend_optimization_level": 0}


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
    """One family: how to inject and play it on the reference side."""

    ref_classes: dict[str, type]  # difficulty -> reference class
    # (ref, rng) -> (reference first obs, reset_from args after the key)
    inject: Callable[[gym.Env, np.random.Generator], tuple[Any, tuple]]
    # name -> (ref, rng) -> action, reading the reference's internals
    policies: dict[str, Callable[[gym.Env, np.random.Generator], int]]
    # The action the reference gets for ours (identity unless ours clips out-of-range actions).
    ref_action: Callable[[gym.Env, int], int] = lambda ref, action: action
    # Whether our steps draw randomness (MultiarmedBandit): then the reference is fed our draws.
    random_steps: bool = False


class RefEpisode(NamedTuple):
    """One reference episode and what our side needs to replay it."""

    hidden: tuple  # reset_from arguments after the key
    actions: np.ndarray  # [T] int, as given to our env
    observations: np.ndarray  # [T + 1, O] one-hot; row 0 from reset
    rewards: np.ndarray  # [T] float64
    terminated: bool
    truncated: bool


class Episode(NamedTuple):
    rewards: np.ndarray  # [T] ours
    terminated: bool
    truncated: bool


class Ours(NamedTuple):
    env: Any
    rollout: Callable  # (keys [E], hidden [E, ...], actions [E, L]) -> (first, steps [E, L])
    draws: Callable  # (key, *hidden) -> [L] payout draws our steps will use


@functools.lru_cache(maxsize=None)
def ours(family: str, difficulty: str) -> Ours:
    """One jit per (family, difficulty): reset_from then a scan of L steps, vmapped over episodes."""
    env = make(f"popgym/{family}", difficulty)
    length = env.max_episode_length

    def rollout(key, hidden, actions):
        state, first = env.reset_from(key, *hidden)
        return first, jax.lax.scan(lambda state, a: env.step(state, a), state, actions)[1]

    def draws(key, *hidden):
        state, _ = env.reset_from(key, *hidden)

        def body(state, _):
            return env.step(state, 0)[0], env.payout_uniform(state)

        return jax.lax.scan(body, state, None, length=length)[1]

    return Ours(
        env, jax.jit(jax.vmap(rollout), compiler_options=FAST_COMPILE), jax.jit(draws, compiler_options=FAST_COMPILE)
    )


def play_reference(case: Case, ref: gym.Env, policy: str, rng: np.random.Generator, key, fns: Ours) -> RefEpisode:
    ref_obs, hidden = case.inject(ref, rng)
    if case.random_steps:
        ref._np_random.uniforms.extend(np.asarray(fns.draws(key, *hidden)))
    observations, actions, rewards = [one_hot(ref.observation_space, ref_obs)], [], []
    for _ in range(fns.env.max_episode_length):
        action = case.policies[policy](ref, rng)
        ref_obs, reward, terminated, truncated, _ = ref.step(case.ref_action(ref, action))
        actions.append(action)
        observations.append(one_hot(ref.observation_space, ref_obs))
        rewards.append(reward)
        if terminated or truncated:
            break
    else:
        raise AssertionError(f"reference did not end within {fns.env.max_episode_length} steps")
    return RefEpisode(hidden, np.array(actions), np.stack(observations), np.array(rewards), terminated, truncated)


def assert_parity(
    family: str, difficulty: str, keys: jax.Array, labels: list[str], episodes: list[RefEpisode]
) -> list[np.ndarray]:
    """Replays every reference episode on our side in one call and compares each step.

    Returns our rewards of each episode ([T] each).
    """
    fns = ours(family, difficulty)
    length = fns.env.max_episode_length
    actions = np.zeros((len(episodes), length), np.int32)
    for i, episode in enumerate(episodes):
        actions[i, : len(episode.actions)] = episode.actions
    hidden = tuple(np.stack(parts) for parts in zip(*(episode.hidden for episode in episodes)))
    first, steps = jax.device_get(fns.rollout(keys, hidden, actions))
    for i, (label, episode) in enumerate(zip(labels, episodes)):
        where = f"{family}/{difficulty}/{label}"
        t = len(episode.rewards)
        assert first.step_type[i] == StepType.FIRST, where
        np.testing.assert_array_equal(first.observation[i], episode.observations[0], f"{where} reset")
        # Row j is step j + 1.
        np.testing.assert_array_equal(steps.observation[i, :t], episode.observations[1:], f"{where} observations")
        np.testing.assert_allclose(steps.reward[i, :t], episode.rewards, rtol=0, atol=1e-6, err_msg=f"{where} rewards")
        step_types = np.full(t, int(StepType.MID))
        step_types[-1] = StepType.LAST
        np.testing.assert_array_equal(steps.step_type[i, :t], step_types, f"{where} step types")
        discounts = np.ones(t)
        discounts[-1] = 0.0 if episode.terminated else 1.0
        np.testing.assert_array_equal(steps.discount[i, :t], discounts, f"{where} discounts")
    return [steps.reward[i, : len(episode.rewards)] for i, episode in enumerate(episodes)]


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


def half_informed(ref, rng, other: int) -> int:
    return concentration_target(ref) if rng.random() < 0.5 else other


def concentration_finish_at_limit(ref, rng) -> int:
    if ref.curr_step < ref.episode_length - ref.deck.num_cards:
        return 0
    return concentration_target(ref)


def clip_to_space(ref, action: int) -> int:
    return int(np.clip(action, 0, ref.action_space.n - 1))


def inject_bandits(ref, rng):
    probabilities = rng.random(ref.num_bandits).astype(np.float32)
    ref._np_random = ScriptedRng(uniforms=[probabilities])
    obs, _ = ref.reset()
    np.testing.assert_array_equal(ref.bandits, probabilities)
    return obs, (probabilities,)


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
            "random": lambda ref, rng: int(
                min(max(count_recall_target(ref) + rng.integers(-1, 2), 0), ref.max_card_count)
            ),
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
            "random": lambda ref, rng: half_informed(ref, rng, int(rng.integers(ref.deck.num_cards))),
            "correct": lambda ref, rng: concentration_target(ref),
            "wrong": lambda ref, rng: 0,  # the same card twice per turn: -2/L every other step
            # Wastes L - N steps, then sees through: the last pair matches at step L, where
            # the reference reports terminated and truncated both; ours terminates (discount 0).
            "finish_at_limit": concentration_finish_at_limit,
            "out_of_range": lambda ref, rng: half_informed(ref, rng, int(rng.choice([-3, 52, 104, 200]))),
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
        random_steps=True,
    ),
}

# Known facts (docs/design.md section 5): episode length, best and worst return.
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
    ("concentration", "easy"): dict(
        correct_length=52,
        correct_end="terminated",
        best=1.0,
        wrong_length=104,
        wrong_end="truncated",
        worst=-1.0,
        finish_at_limit_length=104,
        finish_at_limit_end="both",
    ),
    ("concentration", "medium"): dict(
        correct_length=104,
        correct_end="terminated",
        best=1.0,
        wrong_length=208,
        wrong_end="truncated",
        worst=-1.0,
        finish_at_limit_length=208,
        finish_at_limit_end="both",
    ),
    ("concentration", "hard"): dict(
        correct_length=52,
        correct_end="terminated",
        best=1.0,
        wrong_length=104,
        wrong_end="truncated",
        worst=-1.0,
        finish_at_limit_length=104,
        finish_at_limit_end="both",
    ),
    ("multiarmed_bandit", "easy"): dict(length=200, end="truncated", num_actions=10),
    ("multiarmed_bandit", "medium"): dict(length=400, end="truncated", num_actions=20),
    ("multiarmed_bandit", "hard"): dict(length=600, end="truncated", num_actions=30),
}

# The fast loop (`pytest -m "not slow"`) checks every family at Easy; Medium and Hard run in the full suite.
PARAMS = [
    (family, difficulty) if difficulty == "easy" else pytest.param(family, difficulty, marks=pytest.mark.slow)
    for family in CASES
    for difficulty in ("easy", "medium", "hard")
]


@pytest.mark.parametrize("family,difficulty", PARAMS)
def test_parity_with_reference(family: str, difficulty: str):
    case = CASES[family]
    fns = ours(family, difficulty)
    env, ref = fns.env, case.ref_classes[difficulty]()
    assert env.action_spec.num_values == ref.action_space.n
    assert env.observation_spec.shape == one_hot(ref.observation_space, ref.observation_space.sample()).shape
    rng = np.random.default_rng(sorted(CASES).index(family))
    keys = jax.random.split(jax.random.PRNGKey(0), EPISODES_PER_POLICY * len(case.policies))
    labels, episodes = [], []
    for policy in case.policies:
        for episode in range(EPISODES_PER_POLICY):
            labels.append(f"{policy} episode {episode}")
            episodes.append(play_reference(case, ref, policy, rng, keys[len(episodes)], fns))
    our_rewards = assert_parity(family, difficulty, keys, labels, episodes)
    # Facts checked on our side (equal to the reference's by the parity above).
    results = {
        policy: [
            Episode(rewards, e.terminated, e.truncated)
            for label, e, rewards in zip(labels, episodes, our_rewards)
            if label.startswith(policy + " ")
        ]
        for policy in case.policies
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
            if end == "both":
                assert episode.truncated and episode.terminated, policy
    if "best" in expected:
        for episode in results["correct"]:
            assert sum(episode.rewards) == pytest.approx(expected["best"], abs=1e-5)
    if "worst" in expected:
        for episode in results["wrong"]:
            assert sum(episode.rewards) == pytest.approx(expected["worst"], abs=1e-5)


@pytest.mark.parametrize("family", list(CASES))
def test_bad_input_raises_outside_jit(family: str):
    env = ours(family, "easy").env
    _, hidden = CASES[family].inject(CASES[family].ref_classes["easy"](), np.random.default_rng(0))
    state, _ = env.reset_from(jax.random.PRNGKey(0), *hidden)
    for bad in (jnp.zeros((2,), jnp.int32), 1.0, jnp.float32(1.0), True, "1"):
        with pytest.raises(ValueError, match="integer scalar action"):
            env.step(state, bad)
    with pytest.raises(ValueError, match=r"expected .*shape"):
        env.reset_from(jax.random.PRNGKey(0), hidden[0][:-1], *hidden[1:])
    if family == "multiarmed_bandit":
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            env.reset_from(jax.random.PRNGKey(0), hidden[0] + 2.0)
    else:
        with pytest.raises(ValueError, match="permutation"):
            env.reset_from(jax.random.PRNGKey(0), np.zeros_like(hidden[0]), *hidden[1:])


def test_concrete_integer_actions_of_any_int_type_step_alike():
    env = ours("repeat_previous", "easy").env
    state, _ = env.reset_from(jax.random.PRNGKey(0), np.arange(52))
    rewards = [float(env.step(state, a)[1].reward) for a in (1, np.int64(1), jnp.int32(1), np.array(1, np.uint8))]
    assert rewards == [0.0] * 4  # first step of RepeatPrevious: no reward yet
    rewards = [float(env.step(state, a)[1].reward) for a in (jnp.array(5, jnp.int16), np.int8(-1))]
    assert rewards == [0.0] * 2


def replay(family: str, difficulty: str, hidden: tuple, actions: np.ndarray):
    """Our env from ``hidden`` under ``actions`` [L] (one episode, through the cached rollout)."""
    fns = ours(family, difficulty)
    first, steps = fns.rollout(jax.random.PRNGKey(0)[None], tuple(np.asarray(h)[None] for h in hidden), actions[None])
    return jax.tree.map(lambda x: np.asarray(x[0]), (first, steps))


def test_repeat_previous_answers_the_card_k_minus_1_observations_back():
    # Deck 0..51 in order: card c has suit c % 4, so step t (t >= k = 4) asks for
    # the suit of card t - 4, i.e. t % 4; one card further back would be (t - 1) % 4.
    t = np.arange(1, 52)
    cards = np.arange(52)
    for actions, expected in ((t % 4, 1.0), ((t - 1) % 4, -1.0), ((t + 1) % 4, -1.0)):
        _, steps = replay("repeat_previous", "easy", (cards,), actions.astype(np.int32))
        np.testing.assert_allclose(steps.reward[:3], 0.0)  # steps 1..3: nothing to recall yet
        np.testing.assert_allclose(steps.reward[3:], expected / 48, atol=1e-7)
        assert steps.step_type[50] == StepType.LAST and (steps.step_type[:50] == StepType.MID).all()


def test_autoencode_shows_the_cards_while_watching():
    # Deck 0..51 in order: card t (suit t % 4) is shown at step t; the last one
    # with mode PLAY = 0, then (PLAY, suit 0) while reciting 51, 50, ..., 0.
    cards = np.arange(52)
    recite = (51 - np.arange(52)) % 4
    actions = np.concatenate([np.zeros(51), recite]).astype(np.int32)
    first, steps = replay("autoencode", "easy", (cards,), actions)
    np.testing.assert_array_equal(first.observation, [0, 1, 1, 0, 0, 0])  # (WATCH, suit 0)
    for t in range(1, 52):
        mode = [0, 1] if t < 51 else [1, 0]
        np.testing.assert_array_equal(steps.observation[t - 1], mode + list(np.eye(4)[t % 4]), f"step {t}")
    np.testing.assert_array_equal(steps.observation[51:103], np.tile([1, 0, 1, 0, 0, 0], (52, 1)))
    np.testing.assert_allclose(steps.reward[:51], 0.0)
    np.testing.assert_allclose(steps.reward[51:103], 1 / 52, atol=1e-7)
    assert steps.step_type[102] == StepType.LAST and steps.discount[102] == 0.0


@pytest.mark.parametrize("family", list(CASES))
@pytest.mark.slow
def test_auto_reset_and_vmap_wrappers(family: str):
    """VmapWrapper(AutoResetWrapper(env)) under jit: LAST exactly at step L, then a fresh episode."""
    env = make(f"popgym/{family}", "easy")
    wrapped = VmapWrapper(AutoResetWrapper(env))
    # Random play never matches all of Concentration's 26 pairs in 104 steps: truncated at L.
    length = {
        "repeat_previous": 51,
        "repeat_first": 51,
        "count_recall": 51,
        "autoencode": 103,
        "higher_lower": 51,
        "concentration": 104,
        "multiarmed_bandit": 200,
    }[family]
    batch, num_steps = 3, length + 2

    def rollout(key):
        state, first = wrapped.reset(jax.random.split(key, batch))

        def body(state, key):
            actions = jax.random.randint(key, (batch,), 0, env.action_spec.num_values)
            state, ts = wrapped.step(state, actions)
            return state, (ts.step_type, ts.discount, ts.observation, state.step_count)

        return first, jax.lax.scan(body, state, jax.random.split(key, num_steps))[1]

    compiled = jax.jit(rollout, compiler_options=FAST_COMPILE)
    first, (step_types, discounts, observations, step_counts) = jax.device_get(compiled(jax.random.PRNGKey(1)))
    assert first.observation.shape == (batch, *env.observation_spec.shape)
    assert (first.step_type == StepType.FIRST).all()
    assert observations.dtype == np.float32 and observations.shape == (num_steps, batch, *env.observation_spec.shape)
    expected_types = np.full((num_steps, batch), int(StepType.MID))
    expected_types[length - 1] = StepType.LAST
    np.testing.assert_array_equal(step_types, expected_types)
    # Only MultiarmedBandit and Concentration (here) end by truncation: discount 1.
    truncates = family in ("multiarmed_bandit", "concentration")
    np.testing.assert_array_equal(discounts[length - 1], np.full(batch, 1.0 if truncates else 0.0))
    # The step that ends an episode hands back a freshly reset state; play goes on from it.
    np.testing.assert_array_equal(
        step_counts[length - 2 : length + 1], [[length - 1] * batch, [0] * batch, [1] * batch]
    )
