"""RepeatPrevious: name the suit of the card seen k-1 observations before the latest.

Legend: N = 52 * num_decks cards, dealt one per step; A = 4 actions (suits).

Exact to the reference ``popgym.envs.repeat_previous.RepeatPrevious``:

- ``reset`` deals card 0 and shows its suit; step t (t = 1..N-1) deals card t
  and shows its suit. The episode *terminates* at step N-1 (51/103/155 steps
  for easy/medium/hard).
- At step t >= k the reward is +1/(N-k) if the action equals the suit of card
  t-k (the card shown k-1 observations before the latest one), else -1/(N-k);
  the first k-1 steps give 0. Best return 1, worst -1.
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
class RepeatPreviousState:
    """Hidden state of one RepeatPrevious episode."""

    key: chex.PRNGKey  # [2] key used by auto-reset
    cards: chex.Array  # [N] int32 card ids in dealing order
    step_count: chex.Array  # [] int32 steps taken since reset (index of the latest card)


class RepeatPrevious(_cards.OneDeckGame, Environment[RepeatPreviousState, specs.DiscreteArray, chex.Array]):
    """RepeatPrevious with ``num_decks`` decks, answering for ``k`` steps back."""

    state_type = RepeatPreviousState
    family_name = "RepeatPrevious"

    def __init__(self, *, num_decks: int = 1, k: int = 4) -> None:
        self.num_cards = _cards.check_num_decks(num_decks, "RepeatPrevious")
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k < self.num_cards:
            raise ValueError(f"RepeatPrevious: k must be an int in [1, {self.num_cards - 1}], got {k!r}")
        self.num_decks = num_decks
        self.k = k
        self.max_episode_length = self.num_cards - 1
        super().__init__()

    def __repr__(self) -> str:
        return f"RepeatPrevious(num_decks={self.num_decks}, k={self.k})"

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

    def step(self, state: RepeatPreviousState, action: chex.Array) -> tuple[RepeatPreviousState, TimeStep]:
        action = _cards.check_action(action, "RepeatPrevious")
        t = state.step_count + 1  # cards dealt before this step = hand size
        target = _cards.card_field(state.cards[jnp.maximum(t - self.k, 0)], "suits")
        scale = 1.0 / (self.num_cards - self.k)
        reward = jnp.where(t >= self.k, jnp.where(action == target, scale, -scale), 0.0)
        terminated = t == self.num_cards - 1
        state = state.replace(step_count=t)
        return state, step_timestep(observation=self._observe(state.cards[t]), reward=reward, terminated=terminated, truncated=False)


ENVIRONMENT = RepeatPrevious
DIFFICULTIES = {
    "easy": {"num_decks": 1, "k": 4},
    "medium": {"num_decks": 2, "k": 32},
    "hard": {"num_decks": 3, "k": 64},
}
