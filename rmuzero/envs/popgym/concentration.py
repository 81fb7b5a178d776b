"""Concentration: flip face-down cards two at a time to find matching pairs.

Legend: N = 52 * num_decks cards laid out face down at positions 0..N-1;
K kinds (colours 2 or ranks 13); the face-down marker is K; A = N actions
(the position to flip); L = ceil(2N - N / (2N - 1)) steps at most (104/208/104).

Exact to the reference ``popgym.envs.concentration.Concentration``:

- Each step flips the card at position ``action``. The observation shows the
  kind of every face-up card and of the cards flipped in the current turn
  (including the one flipped now, and the first of a finished pair even when
  the pair goes back face down), and K elsewhere.
- Flipping a card that is already face up costs -1/L per card in the current
  turn (1 or 2) and ends the turn. The second flip of a turn scores
  +1/(N/2) when both cards have the same kind and are different positions
  (they stay face up), else -2/L (both turn back).
- The episode *terminates* when every card is face up (a perfect agent:
  N steps, return 1) and is *truncated* at step L. When both happen at step L
  the reference reports both; here termination wins (discount 0).
- Observation: per position, one-hot over K + 1 values (kind or face down),
  position-major, ``[N * (K + 1)]`` float32 (156/312/728).
- Out of range: the reference indexes with the action (``IndexError`` above
  N-1; negative values wrap around). Here the action is clipped to
  ``[0, N-1]``.

Hidden state: the layout (card id at each position, the reference's
``deck.idx``), injectable with ``reset_from``.
"""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
from jumanji.types import TimeStep

from rmuzero.envs.popgym import _cards
from rmuzero.envs.popgym._common import one_hot_concat
from rmuzero.envs.popgym._episode import first_timestep, step_timestep

NO_CARD = -1  # ``first_flip`` when no card of the current turn is flipped


@chex.dataclass(frozen=True)
class ConcentrationState:
    """Hidden state of one Concentration episode."""

    key: chex.PRNGKey  # [2] key used by auto-reset
    layout: chex.Array  # [N] int32 card id at each position
    face_up: chex.Array  # [N] bool matched cards
    first_flip: chex.Array  # [] int32 position flipped first this turn, or NO_CARD
    step_count: chex.Array  # [] int32 steps taken since reset


class Concentration(_cards.CardGame):
    """Concentration with ``num_decks`` decks, matching ``deck_type`` kinds."""

    repr_fields = ("num_decks", "deck_type")

    def __init__(self, *, num_decks: int = 1, deck_type: _cards.CardField = "ranks") -> None:
        self.num_cards = _cards.check_num_decks(num_decks, "Concentration")
        if deck_type not in ("colors", "ranks"):
            raise ValueError(
                f"Concentration: deck_type must be 'colors' or 'ranks' (an even count of each), got {deck_type!r}"
            )
        self.num_decks = num_decks
        self.deck_type = deck_type
        self.num_kinds = _cards.num_field_values(deck_type)
        n = self.num_cards
        self.max_episode_length = math.ceil(2 * n - (n / (2 * n - 1)))
        self.success_reward = 1.0 / (n // 2)
        self.failure_reward = -1.0 / self.max_episode_length
        self.observation_size = n * (self.num_kinds + 1)  # per position: one-hot kind or face down
        self.num_actions = n  # the position to flip
        super().__init__()

    def _observe(self, layout: chex.Array, visible: chex.Array) -> chex.Array:
        values = jnp.where(visible, _cards.card_field(layout, self.deck_type), self.num_kinds)
        return one_hot_concat([values], [self.num_kinds + 1])

    def reset(self, key: chex.PRNGKey) -> tuple[ConcentrationState, TimeStep]:
        key, deck_key = jax.random.split(key)
        return self._start(key, _cards.shuffled_deck(deck_key, self.num_cards))

    def reset_from(self, key: chex.PRNGKey, layout: chex.Array) -> tuple[ConcentrationState, TimeStep]:
        """Starts an episode from a given layout.

        Args:
          key: the state's key (used only by auto-reset wrappers).
          layout: ``[N]`` int permutation of 0..N-1, the card id at each
            position (the reference's ``deck.idx``, not reversed).
        """
        return self._start(key, _cards.check_deck(layout, self.num_cards, "Concentration.reset_from layout"))

    def _start(self, key: chex.PRNGKey, layout: chex.Array) -> tuple[ConcentrationState, TimeStep]:
        face_up = jnp.zeros((self.num_cards,), bool)
        state = ConcentrationState(
            key=key,
            layout=layout,
            face_up=face_up,
            first_flip=jnp.asarray(NO_CARD, jnp.int32),
            step_count=jnp.zeros((), jnp.int32),
        )
        return state, first_timestep(self._observe(layout, face_up))

    def step(self, state: ConcentrationState, action: chex.Array) -> tuple[ConcentrationState, TimeStep]:
        flip = jnp.clip(_cards.check_action(action, "Concentration"), 0, self.num_cards - 1)
        positions = jnp.arange(self.num_cards)
        has_first = state.first_flip != NO_CARD
        first = jnp.maximum(state.first_flip, 0)
        in_turn = (has_first & (positions == first)) | (positions == flip)
        observation = self._observe(state.layout, state.face_up | in_turn)

        # The first card of a turn is never face up: a face-up first flip ends the turn.
        already_up = state.face_up[flip]
        second_flip = has_first & ~already_up
        kinds = _cards.card_field(state.layout, self.deck_type)
        matched = second_flip & (kinds[first] == kinds[flip]) & (first != flip)
        reward = jnp.where(
            already_up,
            self.failure_reward * (1 + has_first),
            jnp.where(second_flip, jnp.where(matched, self.success_reward, 2 * self.failure_reward), 0.0),
        )
        face_up = state.face_up | (matched & in_turn)
        terminated = matched & face_up.all()
        truncated = state.step_count >= self.max_episode_length - 1
        state = state.replace(
            face_up=face_up,
            first_flip=jnp.where(has_first | already_up, NO_CARD, flip).astype(jnp.int32),
            step_count=state.step_count + 1,
        )
        return state, step_timestep(observation=observation, reward=reward, terminated=terminated, truncated=truncated)


ENVIRONMENT = Concentration
DIFFICULTIES = {
    "easy": {"num_decks": 1, "deck_type": "colors"},
    "medium": {"num_decks": 2, "deck_type": "colors"},
    "hard": {"num_decks": 1, "deck_type": "ranks"},
}
