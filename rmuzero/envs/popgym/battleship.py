"""Battleship (reference ``popgym.envs.battleship``), board hidden.

Shapes: an S x S board, S = 8 / 10 / 12 (easy / medium / hard), ships of
sizes (2, 3, 3, 4) (N = 12 ship cells); episode limit L = S * S.

Action: the reference's ``MultiDiscrete([S, S])`` ``(row, col)`` flattened to
one integer ``row * S + col`` in ``[0, S * S)``; out-of-range actions are
clipped to that interval.

Observation: one-hot (size 2) of "hit": 1 when the shot hits a ship cell not
shot before, else 0 (0 after reset).

Reward: ``1/N`` per hit, ``-1/(L - N)`` per miss or repeated shot. Terminates
when all N ship cells are hit; truncated after L steps (on the L-th step
both can hold: then it is a termination, discount 0).

Hidden state is injected with ``reset_to(key, board)``, ``board`` a
``[S, S]`` bool ship map.
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
from rmuzero.envs.popgym._grid import place_ships


@chex.dataclass
class BattleshipState:
    board: chex.Array  # [S, S] bool, ship cells
    guesses: chex.Array  # [S, S] bool, cells shot at
    hits: chex.Array  # [] int32
    step_count: chex.Array  # [] int32
    key: chex.PRNGKey


class Battleship(Environment):
    """Hidden-board Battleship; keyword-only ``board_size`` and ``ship_sizes``."""

    def __init__(self, *, board_size: int = 10, ship_sizes: tuple[int, ...] = (2, 3, 3, 4)) -> None:
        ship_sizes = tuple(int(s) for s in ship_sizes)
        if not ship_sizes or min(ship_sizes) < 1 or max(ship_sizes) > board_size:
            raise ValueError(f"ship_sizes must be positive and <= board_size={board_size}; got {ship_sizes}")
        if sum(ship_sizes) >= board_size * board_size:
            raise ValueError(f"ships ({sum(ship_sizes)} cells) must leave free cells on a {board_size}^2 board")
        self.board_size = int(board_size)
        self.ship_sizes = ship_sizes
        self.max_episode_length = board_size * board_size
        self.needed_hits = sum(ship_sizes)
        self.hit_reward = 1.0 / self.needed_hits
        self.miss_reward = -1.0 / (self.max_episode_length - self.needed_hits)
        super().__init__()

    def __repr__(self) -> str:
        return f"Battleship(board_size={self.board_size}, ship_sizes={self.ship_sizes})"

    @cached_property
    def observation_spec(self) -> specs.BoundedArray:
        return vector_spec(2)

    @cached_property
    def action_spec(self) -> specs.DiscreteArray:
        return specs.DiscreteArray(self.board_size * self.board_size, name="action")

    def reset(self, key: chex.PRNGKey):
        key, board_key = jax.random.split(key)
        return self.reset_to(key, place_ships(board_key, self.board_size, self.ship_sizes))

    def reset_to(self, key: chex.PRNGKey, board: chex.Array):
        """Starts an episode on the given ``[S, S]`` bool ship board."""
        board = jnp.asarray(board)
        shape = (self.board_size, self.board_size)
        if board.shape != shape:
            raise ValueError(f"Battleship.reset_to: board must have shape {shape}; got {board.shape}")
        state = BattleshipState(
            board=board.astype(bool),
            guesses=jnp.zeros(shape, bool),
            hits=jnp.zeros((), jnp.int32),
            step_count=jnp.zeros((), jnp.int32),
            key=key,
        )
        return state, first_timestep(one_hot_concat([0], [2]))

    def step(self, state: BattleshipState, action: chex.Array):
        action = checked_action(action, num_actions=self.action_spec.num_values, env_name="Battleship")
        row, col = action // self.board_size, action % self.board_size
        hit = state.board[row, col] & ~state.guesses[row, col]
        hits = state.hits + hit.astype(jnp.int32)
        step_count = state.step_count + 1
        next_state = state.replace(guesses=state.guesses.at[row, col].set(True), hits=hits, step_count=step_count)
        return next_state, step_timestep(
            reward=jnp.where(hit, self.hit_reward, self.miss_reward),
            observation=one_hot_concat([hit], [2]),
            terminated=hits == self.needed_hits,
            truncated=step_count >= self.max_episode_length,
        )


ENVIRONMENT = Battleship
DIFFICULTIES = {
    "easy": {"board_size": 8, "ship_sizes": (2, 3, 3, 4)},
    "medium": {"board_size": 10, "ship_sizes": (2, 3, 3, 4)},
    "hard": {"board_size": 12, "ship_sizes": (2, 3, 3, 4)},
}
