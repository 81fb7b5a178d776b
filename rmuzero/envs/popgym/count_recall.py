"""CountRecall: say how many times the queried card kind has been dealt so far.

Legend: N = 52 * num_decks cards per deck, D distinct kinds (colours 2, suits 4
or ranks 13), M = N / D the most a kind can be dealt, A = M + 1 actions.

Exact to the reference ``popgym.envs.count_recall.CountRecall``:

- Two independently shuffled decks: a value deck and a query deck. ``reset``
  deals card 0 of each and shows ``(value kind, query kind)``; step t
  (t = 1..N-1) deals card t of each. The episode *terminates* at step N-1
  (51/103/207 steps for easy/medium/hard).
- Step t rewards +1/(N-1) if the action equals the number of value cards
  0..t-1 (the current one included) whose kind is the query shown at t-1,
  else -1/(N-1). Best return 1, worst -1.
- Observation: one-hot value kind then one-hot query kind, ``[2D]`` float32.
  Action: the count, 0..M (``num_values`` = M + 1: 27/27/17).
- An out-of-range action never equals a count, so it is a wrong answer (as in
  the reference, which compares with ``==``).
- ``error_clamp`` is accepted for the reference's signature; the reference
  never uses it (the reward is +-1/(N-1) whatever the error).

Hidden state: both decks in dealing order, injectable with ``reset_from``.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
from jumanji.types import TimeStep

from rmuzero.envs.popgym import _cards
from rmuzero.envs.popgym._common import one_hot_concat
from rmuzero.envs.popgym._episode import first_timestep, step_timestep


@chex.dataclass(frozen=True)
class CountRecallState:
    """Hidden state of one CountRecall episode."""

    key: chex.PRNGKey  # [2] key used by auto-reset
    value_cards: chex.Array  # [N] int32 value-deck card ids in dealing order
    query_cards: chex.Array  # [N] int32 query-deck card ids in dealing order
    counts: chex.Array  # [D] int32 value cards dealt so far, per kind
    step_count: chex.Array  # [] int32 steps taken since reset (index of the latest cards)


class CountRecall(_cards.CardGame):
    """CountRecall with ``num_decks`` decks per deck, counting ``deck_type`` kinds."""

    repr_fields = ("num_decks", "deck_type")

    def __init__(self, *, num_decks: int = 1, error_clamp: float = 0.5, deck_type: _cards.CardField = "colors") -> None:
        self.num_cards = _cards.check_num_decks(num_decks, "CountRecall")
        self.num_kinds = _cards.num_field_values(deck_type)
        self.num_decks = num_decks
        self.error_clamp = error_clamp
        self.deck_type = deck_type
        self.max_card_count = self.num_cards // self.num_kinds
        self.max_episode_length = self.num_cards - 1
        self.observation_size = 2 * self.num_kinds  # one-hot value kind, one-hot query kind
        self.num_actions = self.max_card_count + 1  # the count, 0..M
        super().__init__()

    def _kind(self, card: chex.Array) -> chex.Array:
        return _cards.card_field(card, self.deck_type)

    def _observe(self, state: CountRecallState) -> chex.Array:
        t = state.step_count
        value, query = self._kind(state.value_cards[t]), self._kind(state.query_cards[t])
        return one_hot_concat([value, query], [self.num_kinds, self.num_kinds])

    def reset(self, key: chex.PRNGKey) -> tuple[CountRecallState, TimeStep]:
        key, value_key, query_key = jax.random.split(key, 3)
        return self._start(
            key,
            _cards.shuffled_deck(value_key, self.num_cards),
            _cards.shuffled_deck(query_key, self.num_cards),
        )

    def reset_from(
        self, key: chex.PRNGKey, value_cards: chex.Array, query_cards: chex.Array
    ) -> tuple[CountRecallState, TimeStep]:
        """Starts an episode from given decks.

        Args:
          key: the state's key (used only by auto-reset wrappers).
          value_cards: ``[N]`` int permutation of 0..N-1, the value deck in
            dealing order (the reference's ``value_deck.idx[::-1]``).
          query_cards: ``[N]`` the query deck, likewise (``query_deck.idx[::-1]``).
        """
        return self._start(
            key,
            _cards.check_deck(value_cards, self.num_cards, "CountRecall.reset_from value_cards"),
            _cards.check_deck(query_cards, self.num_cards, "CountRecall.reset_from query_cards"),
        )

    def _start(
        self, key: chex.PRNGKey, value_cards: chex.Array, query_cards: chex.Array
    ) -> tuple[CountRecallState, TimeStep]:
        counts = jnp.zeros((self.num_kinds,), jnp.int32).at[self._kind(value_cards[0])].add(1)
        state = CountRecallState(
            key=key,
            value_cards=value_cards,
            query_cards=query_cards,
            counts=counts,
            step_count=jnp.zeros((), jnp.int32),
        )
        return state, first_timestep(self._observe(state))

    def step(self, state: CountRecallState, action: chex.Array) -> tuple[CountRecallState, TimeStep]:
        action = _cards.check_action(action, "CountRecall")
        answer = state.counts[self._kind(state.query_cards[state.step_count])]
        t = state.step_count + 1
        scale = 1.0 / (self.num_cards - 1)
        reward = jnp.where(action == answer, scale, -scale)
        terminated = t == self.num_cards - 1
        state = state.replace(
            counts=state.counts.at[self._kind(state.value_cards[t])].add(1),
            step_count=t,
        )
        return state, step_timestep(
            observation=self._observe(state), reward=reward, terminated=terminated, truncated=False
        )


ENVIRONMENT = CountRecall
DIFFICULTIES = {
    "easy": {"num_decks": 1, "deck_type": "colors"},
    "medium": {"num_decks": 2, "deck_type": "suits"},
    "hard": {"num_decks": 4, "deck_type": "ranks"},
}
