"""HigherLower: guess whether the next card's rank is higher or lower.

Legend: N = 52 * num_decks cards, dealt one per step; A = 2 actions.

Exact to the reference ``popgym.envs.higher_lower.HigherLower``:

- ``reset`` deals card 0 and shows its rank; step t (t = 1..N-1) deals card t
  and shows its rank. The episode *terminates* at step N-1 (51/103/155 steps).
- Action 0 guesses "higher", any other action "lower" (the reference tests
  ``action == 0``, so an out-of-range action is a "lower" guess here too).
  Reward +1/N for a right guess, -1/N for a wrong one, 0 when the ranks are
  equal (ranks compare by index: ace 0 lowest, king 12 highest).
- Observation: one-hot rank, ``[13]`` float32.

Hidden state: the deck in dealing order, injectable with ``reset_from``.
"""

from __future__ import annotations

import chex
import jax.numpy as jnp
from jumanji.types import TimeStep

from rmuzero.envs.popgym import _cards
from rmuzero.envs.popgym._common import one_hot_concat
from rmuzero.envs.popgym._episode import step_timestep


class HigherLower(_cards.OneDeckGame):
    """HigherLower with ``num_decks`` decks."""

    observation_size = _cards.NUM_RANKS  # one-hot rank of the latest card
    num_actions = 2  # 0: higher; anything else: lower

    def __init__(self, *, num_decks: int = 1) -> None:
        super().__init__(num_decks)
        self.max_episode_length = self.num_cards - 1

    def _observe(self, card: chex.Array) -> chex.Array:
        return one_hot_concat([_cards.card_field(card, "ranks")], [_cards.NUM_RANKS])

    def _first_observation(self, cards: chex.Array) -> chex.Array:
        return self._observe(cards[0])

    def step(self, state: _cards.DeckState, action: chex.Array) -> tuple[_cards.DeckState, TimeStep]:
        action = _cards.check_action(action, "HigherLower")
        t = state.step_count + 1
        current = _cards.card_field(state.cards[t - 1], "ranks")
        following = _cards.card_field(state.cards[t], "ranks")
        scale = 1.0 / self.num_cards
        right = (following > current) == (action == 0)
        reward = jnp.where(following == current, 0.0, jnp.where(right, scale, -scale))
        terminated = t == self.num_cards - 1
        state = state.replace(step_count=t)
        return state, step_timestep(
            observation=self._observe(state.cards[t]), reward=reward, terminated=terminated, truncated=False
        )


ENVIRONMENT = HigherLower
DIFFICULTIES = {
    "easy": {"num_decks": 1},
    "medium": {"num_decks": 2},
    "hard": {"num_decks": 3},
}
