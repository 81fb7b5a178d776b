"""Autoencode: watch a deck, then recite its suits in reverse order.

Legend: N = 52 * num_decks cards; A = 4 actions (suits); modes PLAY = 0,
WATCH = 1 (the reference's ``Mode``).

Exact to the reference ``popgym.envs.autoencode.Autoencode``:

- ``reset`` deals card 0 and shows ``(WATCH, suit)``. Watch steps t = 1..N-1
  deal card t and show its suit; the mode turns to PLAY on the step that
  deals the last card, so that card is shown as ``(PLAY, suit)``. Watch steps
  reward 0 and ignore the action.
- Play steps t = N..2N-1 ask for the suits in reverse dealing order: step N
  for card N-1, ..., step 2N-1 for card 0; +1/N for the right suit, -1/N
  otherwise. They show ``(PLAY, 0)``. The episode *terminates* at step 2N-1
  (103/207/311 steps). Best return 1, worst -1.
- Observation: one-hot mode then one-hot suit, ``[6]`` float32.
- An out-of-range action never equals a suit, so it is a wrong answer (as in
  the reference, which compares with ``==``).

Hidden state: the deck in dealing order, injectable with ``reset_from``.
"""

from __future__ import annotations

import chex
import jax.numpy as jnp
from jumanji.types import TimeStep

from rmuzero.envs.popgym import _cards
from rmuzero.envs.popgym._common import one_hot_concat
from rmuzero.envs.popgym._episode import step_timestep

PLAY = 0
WATCH = 1


class Autoencode(_cards.OneDeckGame):
    """Autoencode with ``num_decks`` decks."""

    observation_size = 2 + _cards.NUM_SUITS  # one-hot mode, one-hot suit
    num_actions = _cards.NUM_SUITS

    def __init__(self, *, num_decks: int = 1) -> None:
        super().__init__(num_decks)
        self.max_episode_length = 2 * self.num_cards - 1

    def _observe(self, mode: chex.Array, suit: chex.Array) -> chex.Array:
        return one_hot_concat([mode, suit], [2, _cards.NUM_SUITS])

    def _first_observation(self, cards: chex.Array) -> chex.Array:
        return self._observe(WATCH, _cards.card_field(cards[0], "suits"))

    def step(self, state: _cards.DeckState, action: chex.Array) -> tuple[_cards.DeckState, TimeStep]:
        action = _cards.check_action(action, "Autoencode")
        n = self.num_cards
        t = state.step_count + 1
        watching = t <= n - 1
        # Watch step t shows card t; play step t asks for card 2N-1-t.
        card = state.cards[jnp.where(watching, t, 2 * n - 1 - t)]
        suit = _cards.card_field(card, "suits")
        reward = jnp.where(watching, 0.0, jnp.where(action == suit, 1.0 / n, -1.0 / n))
        mode = jnp.where(t < n - 1, WATCH, PLAY)
        observation = self._observe(mode, jnp.where(watching, suit, 0))
        terminated = t == 2 * n - 1
        return state.replace(step_count=t), step_timestep(
            observation=observation, reward=reward, terminated=terminated, truncated=False
        )


ENVIRONMENT = Autoencode
DIFFICULTIES = {
    "easy": {"num_decks": 1},
    "medium": {"num_decks": 2},
    "hard": {"num_decks": 3},
}
