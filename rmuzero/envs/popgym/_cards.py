"""What the card and bandit families share (timesteps: ``_episode``).

Legend: N cards in play (52 x decks), C card ids 0..N-1, F observation size,
A actions.

- ``CardGame``: the specs (a float32 ``[F]`` observation in [0, 1], ``A``
  discrete actions) and the repr of a family;
- ``OneDeckGame``: ``reset`` / ``reset_from`` of the games played with one
  shuffled deck (state ``DeckState``);
- ``SuitRecall``: RepeatFirst and RepeatPrevious, which differ only in the card
  they ask for;
- deck and action helpers.

The reference (``popgym.core.deck.Deck``) lays out N = 52 * decks cards so that
card ``c`` has suit ``c % 4``, rank ``(c // 4) % 13`` and colour ``c % 2`` (its
``suits_idx``, ``ranks_idx`` and ``colors_idx`` arrays). A shuffled deck is a
permutation of the ids. Here a deck is always held in *dealing order*:
``cards[0]`` is the first card dealt (shown by ``reset``), ``cards[1]`` the next.
The reference deals from the end of ``Deck.idx``, so its ``idx`` equals
``cards[::-1]``.
"""

from __future__ import annotations

from functools import cached_property
from typing import Literal

import chex
import jax
import jax.numpy as jnp
import numpy as np
from jumanji import specs
from jumanji.env import Environment
from jumanji.types import TimeStep

from rmuzero.envs.popgym._common import one_hot_concat, vector_spec
from rmuzero.envs.popgym._episode import first_timestep, step_timestep
from rmuzero.validation import is_int

DECK_SIZE = 52
NUM_SUITS = 4
NUM_RANKS = 13
NUM_COLORS = 2

CardField = Literal["suits", "ranks", "colors"]
CARD_FIELDS: tuple[CardField, ...] = ("colors", "suits", "ranks")


def num_field_values(field: CardField) -> int:
    """How many values ``field`` takes (colours 2, suits 4, ranks 13)."""
    sizes = {"colors": NUM_COLORS, "suits": NUM_SUITS, "ranks": NUM_RANKS}
    if field not in sizes:
        raise ValueError(f"unknown card field {field!r}; valid: {', '.join(CARD_FIELDS)}")
    return sizes[field]


def card_field(cards: jnp.ndarray, field: CardField) -> jnp.ndarray:
    """The ``field`` index (suit, rank or colour) of integer card ids, any shape."""
    cards = jnp.asarray(cards, jnp.int32)
    if field == "suits":
        return cards % NUM_SUITS
    if field == "ranks":
        return (cards // NUM_SUITS) % NUM_RANKS
    if field == "colors":
        return cards % NUM_COLORS
    raise ValueError(f"unknown card field {field!r}; valid: {', '.join(CARD_FIELDS)}")


def check_num_decks(num_decks: int, env_name: str) -> int:
    """Validates a deck count; returns the number of cards N = 52 * num_decks."""
    if not is_int(num_decks) or num_decks < 1:
        raise ValueError(f"{env_name}: num_decks must be a positive int, got {num_decks!r}")
    return DECK_SIZE * int(num_decks)


def shuffled_deck(key: jax.Array, num_cards: int) -> jnp.ndarray:
    """A uniformly shuffled deck, ``[N]`` int32 card ids in dealing order."""
    return jax.random.permutation(key, num_cards).astype(jnp.int32)


def _is_concrete(x: object) -> bool:
    return not isinstance(x, jax.core.Tracer)


def check_deck(cards: jax.typing.ArrayLike, num_cards: int, name: str) -> jnp.ndarray:
    """Validates an injected deck (``[N]`` integer permutation of 0..N-1).

    The permutation check runs only on concrete values (outside ``jit``/``vmap``);
    the shape and dtype checks also run on tracers.

    Raises:
      ValueError: naming the expected and received shape, dtype or content.
    """
    if not _is_concrete(cards):
        if cards.shape != (num_cards,) or not jnp.issubdtype(cards.dtype, jnp.integer):
            raise ValueError(f"{name}: expected int array of shape ({num_cards},), got {cards.dtype} {cards.shape}")
        return cards.astype(jnp.int32)
    array = np.asarray(cards)
    if array.shape != (num_cards,) or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name}: expected int array of shape ({num_cards},), got {array.dtype} {array.shape}")
    if not np.array_equal(np.sort(array), np.arange(num_cards)):
        raise ValueError(f"{name}: expected a permutation of 0..{num_cards - 1}")
    return jnp.asarray(array, jnp.int32)


def check_action(action: jax.typing.ArrayLike, env_name: str) -> jnp.ndarray:
    """Validates a step action: a scalar of integer dtype (Python int allowed).

    Under ``jit``/``vmap`` the action is a tracer: its shape and dtype are still
    checked (they are static), its value never is (see each family for what an
    out-of-range value does).

    Raises:
      ValueError: for a non-scalar or non-integer action.
    """
    if isinstance(action, int) and not isinstance(action, bool):  # a Python int (a bool is not an action)
        return jnp.asarray(action, jnp.int32)
    shape, dtype = getattr(action, "shape", None), getattr(action, "dtype", None)
    if shape != () or dtype is None or not jnp.issubdtype(dtype, jnp.integer):
        raise ValueError(
            f"{env_name}.step: expected an integer scalar action (shape (), int dtype), "
            f"got {type(action).__name__} with shape {shape} dtype {dtype}"
        )
    return jnp.asarray(action).astype(jnp.int32)


class CardGame(Environment):
    """The specs and repr of a card or bandit family (a jumanji Environment).

    A family sets ``observation_size`` (F) and ``num_actions`` (A) before calling
    ``super().__init__()`` (jumanji builds the specs there), and names its
    constructor arguments, read back from attributes of the same names, in
    ``repr_fields``.
    """

    observation_size: int  # F: observations are float32 [F] vectors in [0, 1]
    num_actions: int  # A
    repr_fields: tuple[str, ...] = ("num_decks",)

    def __repr__(self) -> str:
        arguments = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.repr_fields)
        return f"{type(self).__name__}({arguments})"

    @cached_property
    def observation_spec(self) -> specs.BoundedArray:
        return vector_spec(self.observation_size)

    @cached_property
    def action_spec(self) -> specs.DiscreteArray:
        return specs.DiscreteArray(self.num_actions, jnp.int32, "action")


@chex.dataclass(frozen=True)
class DeckState:
    """Hidden state of one episode of a one-deck game."""

    key: chex.PRNGKey  # [2] key used by auto-reset
    cards: chex.Array  # [N] int32 card ids in dealing order
    step_count: chex.Array  # [] int32 steps taken since reset


class OneDeckGame(CardGame):
    """A card game played with one shuffled deck of ``num_decks`` decks, dealt in order.

    A family calls ``super().__init__(num_decks)`` once it has set ``observation_size``
    and ``num_actions``, and defines ``_first_observation(cards)`` and ``step``.
    """

    def __init__(self, num_decks: int) -> None:
        self.num_cards = check_num_decks(num_decks, type(self).__name__)
        self.num_decks = num_decks
        super().__init__()

    def reset(self, key: chex.PRNGKey) -> tuple[DeckState, TimeStep]:
        key, deck_key = jax.random.split(key)
        return self._start(key, shuffled_deck(deck_key, self.num_cards))

    def reset_from(self, key: chex.PRNGKey, cards: chex.Array) -> tuple[DeckState, TimeStep]:
        """Starts an episode from a given deck.

        Args:
          key: the state's key (used only by auto-reset wrappers).
          cards: ``[N]`` int permutation of 0..N-1, in dealing order (the
            reference's ``deck.idx[::-1]``).
        """
        return self._start(key, check_deck(cards, self.num_cards, f"{type(self).__name__}.reset_from cards"))

    def _start(self, key: chex.PRNGKey, cards: chex.Array) -> tuple[DeckState, TimeStep]:
        state = DeckState(key=key, cards=cards, step_count=jnp.zeros((), jnp.int32))
        return state, first_timestep(self._first_observation(cards))


class SuitRecall(OneDeckGame):
    """Deals one card per step and shows its suit; from step ``first_asked`` on, step t asks
    for the suit of card ``_asked(t)``: +1/(N - first_asked) when the action names it, else
    -1/(N - first_asked); earlier steps give 0. The episode terminates at step N-1, so a
    perfect return is 1 (RepeatFirst: card 0 from step 1; RepeatPrevious: card t-k from step k).

    An out-of-range action never equals a suit, so it is a wrong answer (as in the
    reference, which compares with ``==``).
    """

    observation_size = NUM_SUITS  # one-hot suit of the latest card
    num_actions = NUM_SUITS  # the suit asked for
    first_asked: int  # the first step that asks for a suit

    def __init__(self, num_decks: int) -> None:
        super().__init__(num_decks)
        self.max_episode_length = self.num_cards - 1

    def _asked(self, t: chex.Array) -> chex.Array:
        """[] int32: the index of the card whose suit step ``t`` asks for (any value before ``first_asked``)."""
        raise NotImplementedError

    def _observe(self, card: chex.Array) -> chex.Array:
        return one_hot_concat([card_field(card, "suits")], [NUM_SUITS])

    def _first_observation(self, cards: chex.Array) -> chex.Array:
        return self._observe(cards[0])

    def step(self, state: DeckState, action: chex.Array) -> tuple[DeckState, TimeStep]:
        action = check_action(action, type(self).__name__)
        t = state.step_count + 1  # the card dealt now
        target = card_field(state.cards[self._asked(t)], "suits")
        scale = 1.0 / (self.num_cards - self.first_asked)
        reward = jnp.where(t >= self.first_asked, jnp.where(action == target, scale, -scale), 0.0)
        terminated = t == self.num_cards - 1
        state = state.replace(step_count=t)
        return state, step_timestep(
            observation=self._observe(state.cards[t]), reward=reward, terminated=terminated, truncated=False
        )
