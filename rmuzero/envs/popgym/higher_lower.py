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

from functools import cached_property

import chex
import jax.numpy as jnp
from jumanji import specs
from jumanji.env import Environment
from jumanji.types import TimeStep

from rmuzero.envs.popgym import _cards
from rmuzero.envs.popgym._episode import step_timestep
from rmuzero.envs.popgym._common import one_hot_concat, vector_spec


@chex.dataclass(frozen=True)
class HigherLowerState:
    """Hidden state of one HigherLower episode."""

    key: chex.PRNGKey  # [2] key used by auto-reset
    cards: chex.Array  # [N] int32 card ids in dealing order
    step_count: chex.Array  # [] int32 steps taken since reset (index of the latest card)


class HigherLower(_cards.OneDeckGame, Environment[HigherLowerState, specs.DiscreteArray, chex.Array]):
    """HigherLower with ``num_decks`` decks."""

    state_type = HigherLowerState
    family_name = "HigherLower"

    def __init__(self, *, num_decks: int = 1) -> None:
        self.num_cards = _cards.check_num_decks(num_decks, "HigherLower")
        self.num_decks = num_decks
        self.max_episode_length = self.num_cards - 1
        super().__init__()

    def __repr__(self) -> str:
        return f"HigherLower(num_decks={self.num_decks})"

    @cached_property
    def observation_spec(self) -> specs.BoundedArray:
        return vector_spec(_cards.NUM_RANKS)

    @cached_property
    def action_spec(self) -> specs.DiscreteArray:
        return specs.DiscreteArray(2, jnp.int32, "action")

    def _observe(self, card: chex.Array) -> chex.Array:
        return one_hot_concat([_cards.card_field(card, "ranks")], [_cards.NUM_RANKS])

    def _first_observation(self, cards: chex.Array) -> chex.Array:
        return self._observe(cards[0])

    def step(self, state: HigherLowerState, action: chex.Array) -> tuple[HigherLowerState, TimeStep]:
        action = _cards.check_action(action, "HigherLower")
        t = state.step_count + 1
        current = _cards.card_field(state.cards[t - 1], "ranks")
        following = _cards.card_field(state.cards[t], "ranks")
        scale = 1.0 / self.num_cards
        right = (following > current) == (action == 0)
        reward = jnp.where(following == current, 0.0, jnp.where(right, scale, -scale))
        terminated = t == self.num_cards - 1
        state = state.replace(step_count=t)
        return state, step_timestep(observation=self._observe(state.cards[t]), reward=reward, terminated=terminated, truncated=False)


ENVIRONMENT = HigherLower
DIFFICULTIES = {
    "easy": {"num_decks": 1},
    "medium": {"num_decks": 2},
    "hard": {"num_decks": 3},
}
