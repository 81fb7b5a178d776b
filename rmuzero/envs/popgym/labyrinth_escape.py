"""LabyrinthEscape (reference ``popgym.envs.labyrinth_escape``).

A hidden maze (``maze_dims`` 10x10 / 14x14 / 18x18 for easy / medium / hard,
grid ``[D + 1, D + 1]``) seen through a 3 x 3 window; the agent starts on one
outer entrance and must reach the exit (GOAL) on the opposite outer wall.
Observation, actions and maze generation: see ``_grid.LabyrinthEnvironment``
(``[50]`` float32: 9 one-hot cells of 5 values, then the last action one-hot
of 5; actions 0 left, 1 right, 2 up, 3 down).

Reward ``-1/L`` per step, ``+1`` more on reaching the exit, which terminates.
Reference quirk kept: the episode is truncated after ``L - 1 = 1023`` steps
(``curr_step == L - 1``), L = 1024.

Hidden state is injected with ``reset_to(key, walls, start, end)``.
"""

from __future__ import annotations

import jax.numpy as jnp

from rmuzero.envs.popgym._grid import GOAL, LabyrinthEnvironment


class LabyrinthEscape(LabyrinthEnvironment):
    """Escape a hidden maze; keyword-only ``maze_dims``, ``episode_length``."""

    mark_goal = True

    def _reward_and_termination(self, state, new_square, explored, position):
        at_goal = state.grid[position[0], position[1]] == GOAL
        return self.neg_reward + jnp.where(at_goal, 1.0, 0.0), at_goal


ENVIRONMENT = LabyrinthEscape
DIFFICULTIES = {
    "easy": {"maze_dims": (10, 10), "episode_length": 1024},
    "medium": {"maze_dims": (14, 14), "episode_length": 1024},
    "hard": {"maze_dims": (18, 18), "episode_length": 1024},
}
