"""MineSweeper (reference ``popgym.envs.minesweeper``), board hidden.

Shapes: an H x W board (4x4 / 6x6 / 8x8 with 2 / 6 / 10 mines for easy /
medium / hard); episode limit L = H * W - mines.

Action: the reference's ``MultiDiscrete([H, W])`` ``(row, col)`` flattened to
one integer ``row * W + col`` in ``[0, H * W)``; out-of-range actions are
clipped to that interval.

Observation: one-hot (size ``min(mines + 1, 10)``) of the number of mines in
the 3 x 3 block around the clicked tile, *the tile itself included* (the
reference's count; clicking a mine shows a count >= 1); 0 after reset.

Reward: ``1/L`` for a new safe tile; ``-0.5/(L - 2)`` for a tile already
revealed; ``-0.5 - 1/L`` for a mine, which terminates. The episode also
terminates once every safe tile is revealed, and is truncated (not
terminated) after L steps.

Hidden state is injected with ``reset_to(key, mines)``, ``mines`` a ``[H, W]``
bool board.
"""

from __future__ import annotations

from functools import cached_property

import chex
import jax
import jax.numpy as jnp
from jumanji import specs
from jumanji.env import Environment

from rmuzero.envs.popgym._common import one_hot_concat, vector_spec
from rmuzero.envs.popgym._episode import checked_action, first_timestep, step_timestep
from rmuzero.envs.popgym._grid import neighbourhood_counts, random_mask


@chex.dataclass
class MineSweeperState:
    mines: chex.Array  # [H, W] bool
    counts: chex.Array  # [H, W] int32, mines in each 3 x 3 block (centre included)
    revealed: chex.Array  # [H, W] bool, safe tiles clicked
    step_count: chex.Array  # [] int32
    key: chex.PRNGKey


class MineSweeper(Environment):
    """Hidden-board MineSweeper; keyword-only ``dims`` ``(H, W)`` and ``num_mines``."""

    def __init__(self, *, dims: tuple[int, int] = (4, 4), num_mines: int = 2) -> None:
        dims = tuple(int(d) for d in dims)
        if len(dims) != 2 or min(dims) < 1:
            raise ValueError(f"dims must be two positive ints (H, W); got {dims!r}")
        if not 1 <= num_mines < dims[0] * dims[1] - 2:
            raise ValueError(f"num_mines must be in [1, H*W - 3]; got {num_mines!r} for dims {dims}")
        self.dims = dims
        self.num_mines = int(num_mines)
        self.max_episode_length = dims[0] * dims[1] - num_mines
        self.num_counts = min(num_mines + 1, 10)
        self.success_reward = 1.0 / self.max_episode_length
        self.fail_reward = -0.5 - self.success_reward
        self.repeat_reward = -0.5 / (self.max_episode_length - 2)
        super().__init__()

    def __repr__(self) -> str:
        return f"MineSweeper(dims={self.dims}, num_mines={self.num_mines})"

    @cached_property
    def observation_spec(self) -> specs.BoundedArray:
        return vector_spec(self.num_counts)

    @cached_property
    def action_spec(self) -> specs.DiscreteArray:
        return specs.DiscreteArray(self.dims[0] * self.dims[1], name="action")

    def reset(self, key: chex.PRNGKey):
        key, mine_key = jax.random.split(key)
        return self.reset_to(key, random_mask(mine_key, self.dims, self.num_mines))

    def reset_to(self, key: chex.PRNGKey, mines: chex.Array):
        """Starts an episode on the given ``[H, W]`` bool mine board."""
        mines = jnp.asarray(mines)
        if mines.shape != self.dims:
            raise ValueError(f"MineSweeper.reset_to: mines must have shape {self.dims}; got {mines.shape}")
        mines = mines.astype(bool)
        state = MineSweeperState(
            mines=mines,
            counts=neighbourhood_counts(mines),
            revealed=jnp.zeros(self.dims, bool),
            step_count=jnp.zeros((), jnp.int32),
            key=key,
        )
        return state, first_timestep(one_hot_concat([0], [self.num_counts]))

    def step(self, state: MineSweeperState, action: chex.Array):
        action = checked_action(action, num_actions=self.action_spec.num_values, env_name="MineSweeper")
        row, col = action // self.dims[1], action % self.dims[1]
        is_mine = state.mines[row, col]
        seen = state.revealed[row, col]
        reward = jnp.where(is_mine, self.fail_reward, jnp.where(seen, self.repeat_reward, self.success_reward))
        revealed = state.revealed.at[row, col].set(seen | ~is_mine)
        step_count = state.step_count + 1
        terminated = is_mine | jnp.all(state.mines | revealed)
        truncated = (step_count == self.max_episode_length) & ~terminated
        count = state.counts[row, col]  # <= min(num_mines, 9) < num_counts
        next_state = state.replace(revealed=revealed, step_count=step_count)
        return next_state, step_timestep(
            reward=reward,
            observation=one_hot_concat([count], [self.num_counts]),
            terminated=terminated,
            truncated=truncated,
        )


ENVIRONMENT = MineSweeper
# The reference's MineSweeper("easy" | "medium" | "hard").
DIFFICULTIES = {
    "easy": {"dims": (4, 4), "num_mines": 2},
    "medium": {"dims": (6, 6), "num_mines": 6},
    "hard": {"dims": (8, 8), "num_mines": 10},
}
