"""RepeatFirst: name the suit of the first card at every step.

Legend: N = 52 * num_decks cards, dealt one per step; A = 4 actions (suits).

Exact to the reference ``popgym.envs.repeat_first.RepeatFirst``:

- ``reset`` deals card 0 and shows its suit; step t (t = 1..N-1) deals card t
  and shows its suit. The episode *terminates* at step N-1 (51/415/831 steps
  for easy/medium/hard).
- Every step rewards +1/(N-1) if the action equals the suit of card 0, else
  -1/(N-1). Best return 1, worst -1.
- Observation: one-hot suit, ``[4]`` float32. Action: suit index.
- An out-of-range action never equals a suit, so it is a wrong answer (as in
  the reference, which compares with ``==``).

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
class RepeatFirstState:
    """Hidden state of one RepeatFirst episode."""

    key: chex.PRNGKey  # [2] key used by auto-reset
    cards: chex.Array  # [N] int32 card ids in dealing order
    step_count: chex.Array  # [] int32 steps taken since reset (index of the latest card)


class RepeatFirst(_cards.OneDeckGame, Environment[RepeatFirstState, specs.DiscreteArray, chex.Array]):
    """RepeatFirst with ``num_decks`` decks."""

    state_type = RepeatFirstState
    family_name = "RepeatFirst"

    def __init__(self, *, num_decks: int = 1) -> None:
        self.num_cards = _cards.check_num_decks(num_decks, "RepeatFirst")
        self.num_decks = num_decks
        self.max_episode_length = self.num_cards - 1
        super().__init__()

    def __repr__(self) -> str:
        return f"RepeatFirst(num_decks={self.num_decks})"

    @cached_property
    def observation_spec(self) -> specs.BoundedArray:
        return vector_spec(_cards.NUM_SUITS)

    @cached_property
    def action_spec(self) -> specs.DiscreteArray:
        return specs.DiscreteArray(_cards.NUM_SUITS, jnp.int32, "action")

    def _observe(self, card: chex.Array) -> chex.Array:
        return one_hot_concat([_cards.card_field(card, "suits")], [_cards.NUM_SUITS])

    def _first_observation(self, cards: chex.Array) -> chex.Array:
        return self._observe(cards[0])

    def step(self, state: RepeatFirstState, action: chex.Array) -> tuple[RepeatFirstState, TimeStep]:
        action = _cards.check_action(action, "RepeatFirst")
        t = state.step_count + 1
        scale = 1.0 / (self.num_cards - 1)
        reward = jnp.where(action == _cards.card_field(state.cards[0], "suits"), scale, -scale)
        terminated = t == self.num_cards - 1
        state = state.replace(step_count=t)
        return state, step_timestep(observation=self._observe(state.cards[t]), reward=reward, terminated=terminated, truncated=False)


ENVIRONMENT = RepeatFirst
DIFFICULTIES = {
    "easy": {"num_decks": 1},
    "medium": {"num_decks": 8},
    "hard": {"num_decks": 16},
}
