"""Deck and action helpers shared by the card and bandit families (timesteps: ``_episode``).

Legend: N cards in play (52 x decks), C card ids 0..N-1.

The reference (``popgym.core.deck.Deck``) lays out N = 52 * decks cards so that
card ``c`` has suit ``c % 4``, rank ``(c // 4) % 13`` and colour ``c % 2`` (its
``suits_idx``, ``ranks_idx`` and ``colors_idx`` arrays). A shuffled deck is a
permutation of the ids. Here a deck is always held in *dealing order*:
``cards[0]`` is the first card dealt (shown by ``reset``), ``cards[1]`` the next.
The reference deals from the end of ``Deck.idx``, so its ``idx`` equals
``cards[::-1]``.
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from rmuzero.envs.popgym._episode import first_timestep

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
    if isinstance(num_decks, bool) or not isinstance(num_decks, (int, np.integer)) or num_decks < 1:
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
            raise ValueError(
                f"{name}: expected int array of shape ({num_cards},), got {cards.dtype} {cards.shape}"
            )
        return cards.astype(jnp.int32)
    array = np.asarray(cards)
    if array.shape != (num_cards,) or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"{name}: expected int array of shape ({num_cards},), got {array.dtype} {array.shape}"
        )
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
    if isinstance(action, int) and not isinstance(action, bool):
        return jnp.asarray(action, jnp.int32)
    shape, dtype = getattr(action, "shape", None), getattr(action, "dtype", None)
    if shape != () or dtype is None or not jnp.issubdtype(dtype, jnp.integer):
        raise ValueError(
            f"{env_name}.step: expected an integer scalar action (shape (), int dtype), "
            f"got {type(action).__name__} with shape {shape} dtype {dtype}"
        )
    return jnp.asarray(action).astype(jnp.int32)


class OneDeckGame:
    """``reset`` / ``reset_from`` of the one-deck card games (a mixin for jumanji Environments).

    A family sets ``state_type`` (a state with ``key``, ``cards [N]``, ``step_count []``),
    ``num_cards`` and ``family_name``, and defines ``_first_observation(cards)``.
    """

    def reset(self, key):
        key, deck_key = jax.random.split(key)
        return self._start(key, shuffled_deck(deck_key, self.num_cards))

    def reset_from(self, key, cards):
        """Starts an episode from a given deck.

        Args:
          key: the state's key (used only by auto-reset wrappers).
          cards: ``[N]`` int permutation of 0..N-1, in dealing order (the
            reference's ``deck.idx[::-1]``).
        """
        return self._start(key, check_deck(cards, self.num_cards, f"{self.family_name}.reset_from cards"))

    def _start(self, key, cards):
        state = self.state_type(key=key, cards=cards, step_count=jnp.zeros((), jnp.int32))
        return state, first_timestep(self._first_observation(cards))
