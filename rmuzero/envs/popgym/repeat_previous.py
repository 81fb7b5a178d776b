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

Hidden state: the deck in dealing order, injectable with ``reset_from``. The
game is ``_cards.SuitRecall``, asked for card t-k from step k.
"""

from __future__ import annotations

import chex
import jax.numpy as jnp

from rmuzero.envs.popgym import _cards
from rmuzero.validation import is_int


class RepeatPrevious(_cards.SuitRecall):
    """RepeatPrevious with ``num_decks`` decks, answering for ``k`` steps back."""

    repr_fields = ("num_decks", "k")

    def __init__(self, *, num_decks: int = 1, k: int = 4) -> None:
        super().__init__(num_decks)
        if not is_int(k) or not 1 <= k < self.num_cards:
            raise ValueError(f"RepeatPrevious: k must be an int in [1, {self.num_cards - 1}], got {k!r}")
        self.k = k
        self.first_asked = k

    def _asked(self, t: chex.Array) -> chex.Array:
        return jnp.maximum(t - self.k, 0)


ENVIRONMENT = RepeatPrevious
DIFFICULTIES = {
    "easy": {"num_decks": 1, "k": 4},
    "medium": {"num_decks": 2, "k": 32},
    "hard": {"num_decks": 3, "k": 64},
}
