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

Hidden state: the deck in dealing order, injectable with ``reset_from``. The
game is ``_cards.SuitRecall``, asked for card 0 from step 1.
"""

from __future__ import annotations

import chex

from rmuzero.envs.popgym import _cards


class RepeatFirst(_cards.SuitRecall):
    """RepeatFirst with ``num_decks`` decks."""

    first_asked = 1

    def __init__(self, *, num_decks: int = 1) -> None:
        super().__init__(num_decks)

    def _asked(self, t: chex.Array) -> int:
        return 0


ENVIRONMENT = RepeatFirst
DIFFICULTIES = {
    "easy": {"num_decks": 1},
    "medium": {"num_decks": 8},
    "hard": {"num_decks": 16},
}
