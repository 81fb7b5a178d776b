"""LabyrinthExplore (reference ``popgym.envs.labyrinth_explore``).

A hidden maze (``maze_dims`` 10x10 / 14x14 / 18x18 for easy / medium / hard,
grid ``[D + 1, D + 1]``) seen through a 3 x 3 window; the agent starts on an
outer entrance and must visit every walkable cell. Observation, actions and
maze generation: see ``_grid.LabyrinthEnvironment`` (``[50]`` float32). The
exit cell is not marked and stays a wall, as in the reference.

Reward ``1/F`` for stepping onto a cell not visited before (F = the number of
FREE cells at reset, the start cell excluded), else ``-1/L``; a full
exploration returns 1 minus the step penalties. Terminates once every
non-wall cell is visited. Reference quirk kept: truncated after
``L - 1 = 1023`` steps, L = 1024.

Hidden state is injected with ``reset_to(key, walls, start, end)``.
"""

from __future__ import annotations

import jax.numpy as jnp

from rmuzero.envs.popgym._grid import OBSTACLE, LabyrinthEnvironment


class LabyrinthExplore(LabyrinthEnvironment):
    """Explore a hidden maze; keyword-only ``maze_dims``, ``episode_length``."""

    mark_goal = False

    def _reward_and_termination(self, state, new_square, explored, position):
        reward = jnp.where(new_square, 1.0 / state.num_free, self.neg_reward)
        done = jnp.all((state.grid != OBSTACLE) == explored)
        return reward, done


ENVIRONMENT = LabyrinthExplore
DIFFICULTIES = {
    "easy": {"maze_dims": (10, 10), "episode_length": 1024},
    "medium": {"maze_dims": (14, 14), "episode_length": 1024},
    "hard": {"maze_dims": (18, 18), "episode_length": 1024},
}
