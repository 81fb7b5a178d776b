"""Board and maze helpers for the grid families (minesweeper, battleship, labyrinths).

All functions are pure JAX (``jit``/``vmap``-able); random ones take a key and
reproduce the *distribution* of the reference's numpy / ``random`` /
``mazelib`` procedure, not its random stream.

Shapes: H x W boards; a maze grid is ``[2h + 1, 2w + 1]`` for an h x w maze of
corridors (odd coordinates are cells, the others walls or passages).
"""

from __future__ import annotations

from functools import cached_property

import chex
import jax
import jax.numpy as jnp
from jumanji import specs
from jumanji.env import Environment

from rmuzero.envs.popgym._episode import checked_action, first_timestep, step_timestep


def random_mask(key: chex.PRNGKey, shape: tuple[int, int], count: int) -> chex.Array:
    """``[H, W]`` bool with exactly ``count`` True cells, uniformly without replacement."""
    size = shape[0] * shape[1]
    order = jax.random.permutation(key, size)
    return (jnp.zeros(size, bool).at[order[:count]].set(True)).reshape(shape)


def neighbourhood_counts(mask: chex.Array) -> chex.Array:
    """``[H, W]`` int32: True cells of ``mask`` in each 3 x 3 block, the centre included."""
    height, width = mask.shape
    padded = jnp.pad(mask.astype(jnp.int32), 1)
    return sum(padded[1 + di : 1 + di + height, 1 + dj : 1 + dj + width] for di in (-1, 0, 1) for dj in (-1, 0, 1))


def place_ships(key: chex.PRNGKey, board_size: int, ship_sizes: tuple[int, ...]) -> chex.Array:
    """``[S, S]`` bool board with non-overlapping straight ships, as the reference places them.

    Each ship in turn: draw a start cell and a direction (axis, sign), and
    redraw until the ship lies on the board without touching an earlier ship's
    cells (rejection sampling, the reference's procedure). One loop over all
    ships keeps the compiled program small.
    """
    rows = jnp.arange(board_size)[:, None]
    cols = jnp.arange(board_size)[None, :]
    sizes = jnp.asarray(ship_sizes, jnp.int32)
    draw_high = jnp.asarray([board_size, board_size, 2, 2], jnp.int32)

    def body(carry):
        key, board, ship = carry
        key, try_key = jax.random.split(key)
        draw = jax.random.randint(try_key, (4,), 0, draw_high)
        start, axis, sign = draw[:2], draw[2], draw[3]
        end = start.at[axis].add((1 - 2 * sign) * (sizes[ship] - 1))
        low, high = jnp.minimum(start, end), jnp.maximum(start, end)
        cells = (rows >= low[0]) & (rows <= high[0]) & (cols >= low[1]) & (cols <= high[1])
        valid = jnp.all(end >= 0) & jnp.all(end < board_size) & ~jnp.any(board & cells)
        return key, jnp.where(valid, board | cells, board), ship + valid.astype(jnp.int32)

    init = (key, jnp.zeros((board_size, board_size), bool), jnp.zeros((), jnp.int32))
    _, board, _ = jax.lax.while_loop(lambda carry: carry[2] < len(ship_sizes), body, init)
    return board


# Maze cell values (the reference's ``popgym.core.maze.Cell``).
FREE, OBSTACLE, START, GOAL, HIDDEN = 0, 1, 2, 3, 4
NUM_CELL_VALUES = 5
# Moves of the reference's ``Actions`` LEFT, RIGHT, UP, DOWN as (dy, dx).
MOVES = ((0, -1), (0, 1), (-1, 0), (1, 0))


def hunt_and_kill_maze(key: chex.PRNGKey, height: int, width: int) -> chex.Array:
    """``[2h + 1, 2w + 1]`` bool walls of a maze, mazelib's ``HuntAndKill`` (random hunt).

    mazelib: open a uniformly random cell; random-walk from it, carving to a
    uniformly chosen unvisited neighbour cell, until stuck; then "hunt": draw a
    uniformly random cell and walk from it if it is open; at most ``H * W``
    hunts (H, W the grid sides), so a few cells may stay closed, rarely.

    Same distribution, fewer loop iterations (the loop runs in lock-step under
    ``vmap``): a hunt that draws a closed cell, or an open one without unvisited
    neighbours, changes nothing. So each loop iteration either carves one step
    or performs the next *effective* hunt directly: a uniform draw among the open
    cells with an unvisited neighbour (E of them), after a Geometric(E / (h w))
    number of hunts is charged to the budget. The loop stops when no cell has
    an unvisited neighbour (all open) or the budget would be exceeded.
    """
    grid_h, grid_w = 2 * height + 1, 2 * width + 1
    max_hunts = grid_h * grid_w
    num_cells = height * width
    offsets = jnp.asarray([(-2, 0), (2, 0), (0, -2), (0, 2)], jnp.int32)

    def kth_true(mask, uniform):  # index of a uniformly chosen True entry of a flat mask
        count = jnp.sum(mask)
        k = jnp.minimum(jnp.floor(uniform * count).astype(jnp.int32), count - 1)
        return jnp.argmax(mask & (jnp.cumsum(mask) - 1 == k))

    def unvisited(walls, pos):
        neighbours = pos[None, :] + offsets  # [4, 2]
        inside = (
            (neighbours[:, 0] >= 1)
            & (neighbours[:, 0] <= grid_h - 2)
            & (neighbours[:, 1] >= 1)
            & (neighbours[:, 1] <= grid_w - 2)
        )
        clipped = jnp.clip(neighbours, 0, jnp.asarray([grid_h - 1, grid_w - 1]))
        return neighbours, inside & walls[clipped[:, 0], clipped[:, 1]]

    def effective_cells(walls):  # [h * w] open cells with an unvisited neighbour cell
        closed = walls[1::2, 1::2]
        padded = jnp.pad(closed, 1)  # outside counts as visited
        near = padded[:-2, 1:-1] | padded[2:, 1:-1] | padded[1:-1, :-2] | padded[1:-1, 2:]
        return (~closed & near).reshape(-1)

    def cell_position(index):
        return jnp.stack([2 * (index // width) + 1, 2 * (index % width) + 1]).astype(jnp.int32)

    key, start_key = jax.random.split(key)
    pos = cell_position(jax.random.randint(start_key, (), 0, num_cells))
    walls = jnp.ones((grid_h, grid_w), bool).at[pos[0], pos[1]].set(False)
    # Carry: walls, current cell, hunts used, done, key.
    init = (walls, pos, jnp.zeros((), jnp.int32), jnp.zeros((), bool), key)

    def body(carry):
        walls, pos, used, _, key = carry
        key, draw_key = jax.random.split(key)
        uniforms = jax.random.uniform(draw_key, (3,))
        # Carve one step from the current cell, if it has an unvisited neighbour.
        neighbours, candidates = unvisited(walls, pos)
        carve = jnp.any(candidates)
        nxt = neighbours[kth_true(candidates, uniforms[0])]
        middle = (nxt + pos) // 2
        carved = walls.at[nxt[0], nxt[1]].set(False).at[middle[0], middle[1]].set(False)
        # Otherwise hunt: the next effective cell, and the hunts it costs.
        effective = effective_cells(walls)
        count = jnp.sum(effective)
        p = jnp.where(count > 0, count / num_cells, 1.0)
        hunts = jnp.floor(jnp.log1p(-uniforms[1]) / jnp.log1p(-jnp.minimum(p, 1.0 - 1e-7))).astype(jnp.int32) + 1
        hunts = jnp.where(p >= 1.0, 1, hunts)
        hunted = cell_position(kth_true(effective, uniforms[2]))
        done = ~carve & ((count == 0) | (used + hunts > max_hunts))
        return (
            jnp.where(carve, carved, walls),
            jnp.where(carve, nxt, hunted),
            jnp.where(carve, used, used + hunts),
            done,
            key,
        )

    walls, *_ = jax.lax.while_loop(lambda carry: ~carry[3], body, init)
    return walls


def outer_entrances(key: chex.PRNGKey, grid_h: int, grid_w: int) -> tuple[chex.Array, chex.Array]:
    """``(start [2], end [2])`` int32 on opposite outer walls, as mazelib's outer entrances.

    A uniformly random side for the start, the opposite side for the end, each
    at a uniformly random odd coordinate along its side.
    """
    if grid_h != grid_w:
        raise ValueError(f"outer_entrances expects a square grid; got {grid_h} x {grid_w}")
    draw = jax.random.randint(key, (3,), 0, jnp.asarray([4, (grid_w - 1) // 2, (grid_w - 1) // 2]))
    side, a, b = draw[0], 2 * draw[1] + 1, 2 * draw[2] + 1
    last = grid_w - 1
    starts = jnp.stack([jnp.stack([0, a]), jnp.stack([last, a]), jnp.stack([a, 0]), jnp.stack([a, last])])
    ends = jnp.stack([jnp.stack([last, b]), jnp.stack([0, b]), jnp.stack([b, last]), jnp.stack([b, 0])])
    return starts[side].astype(jnp.int32), ends[side].astype(jnp.int32)


def local_view(grid: chex.Array, position: chex.Array) -> chex.Array:
    """``[3, 3]`` cells around ``position = (y, x)``, with the reference's edge quirk.

    The reference slices ``grid[max(y-1, 0) : y+2, max(x-1, 0) : x+2]`` and pads
    the *bottom / right* with OBSTACLE up to 3 x 3. In the interior that is the
    centred view; on the top row (or left column) the view is shifted, the agent
    sits in view row (column) 0 and the padding lands at the bottom (right).
    """
    y, x = position[0], position[1]
    y0, x0 = jnp.maximum(y - 1, 0), jnp.maximum(x - 1, 0)
    padded = jnp.pad(grid, ((0, 2), (0, 2)), constant_values=OBSTACLE)
    view = jax.lax.dynamic_slice(padded, (y0, x0), (3, 3))
    offsets = jnp.arange(3)
    keep = ((y0 + offsets) <= y + 1)[:, None] & ((x0 + offsets) <= x + 1)[None, :]
    return jnp.where(keep, view, OBSTACLE)


def move(grid: chex.Array, position: chex.Array, action: chex.Array) -> chex.Array:
    """The position after ``action`` (0 left, 1 right, 2 up, 3 down); walls block.

    As the reference: the target is clamped to the grid, and the agent stays put
    if the target is an OBSTACLE (START and GOAL cells are walkable).
    """
    delta = jnp.asarray(MOVES, jnp.int32)[action]
    high = jnp.asarray(grid.shape, jnp.int32) - 1
    target = jnp.clip(position + delta, 0, high)
    return jnp.where(grid[target[0], target[1]] == OBSTACLE, position, target)


@chex.dataclass
class LabyrinthState:
    grid: chex.Array  # [N, N] int32 cell values (FREE, OBSTACLE, START, GOAL)
    explored: chex.Array  # [N, N] bool, cells visited
    position: chex.Array  # [2] int32 (y, x)
    step_count: chex.Array  # [] int32
    num_free: chex.Array  # [] int32, FREE cells at reset (LabyrinthExplore's reward scale)
    key: chex.PRNGKey


class LabyrinthEnvironment(Environment):
    """The reference's ``MazeEnv``: a hidden maze seen through a 3 x 3 window.

    Shapes: ``maze_dims = (D, D)`` (even, square) gives a ``[D + 1, D + 1]``
    grid of a ``D/2 x D/2`` hunt-and-kill maze, entrances on opposite outer
    walls, the agent starting on the entrance cell (marked START).

    Observation: one-hot of the 9 cells of ``local_view`` (5 values each:
    FREE, OBSTACLE, START, GOAL, HIDDEN), row-major, then one-hot of the last
    action (5 values: LEFT, RIGHT, UP, DOWN, NONE; NONE after reset): ``[50]``.

    Actions: 0 left, 1 right, 2 up, 3 down; out-of-range actions are clipped
    to ``[0, 3]`` (the clipped action is the one observed).

    Hidden state is injected with ``reset_to(key, walls, start, end)``
    (``walls`` a ``[D + 1, D + 1]`` bool maze, ``start``/``end`` ``(y, x)``).
    """

    mark_goal: bool  # whether the exit cell is marked GOAL (walkable)

    def __init__(self, *, maze_dims: tuple[int, int] = (10, 10), episode_length: int = 1024) -> None:
        maze_dims = tuple(int(d) for d in maze_dims)
        if len(maze_dims) != 2 or maze_dims[0] != maze_dims[1] or maze_dims[0] % 2 or maze_dims[0] < 6:
            raise ValueError(f"maze_dims must be square, even and >= 6, e.g. (10, 10); got {maze_dims!r}")
        if not isinstance(episode_length, int) or episode_length < 2:
            raise ValueError(f"episode_length must be an int >= 2; got {episode_length!r}")
        self.maze_dims = maze_dims
        self.max_episode_length = episode_length
        self.grid_size = maze_dims[0] + 1
        self.neg_reward = -1.0 / episode_length
        super().__init__()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(maze_dims={self.maze_dims}, episode_length={self.max_episode_length})"

    @cached_property
    def observation_spec(self) -> specs.BoundedArray:
        return specs.BoundedArray((9 * NUM_CELL_VALUES + len(MOVES) + 1,), jnp.float32, 0.0, 1.0, "observation")

    @cached_property
    def action_spec(self) -> specs.DiscreteArray:
        return specs.DiscreteArray(len(MOVES), name="action")

    def _observation(self, grid: chex.Array, position: chex.Array, last_action: chex.Array) -> chex.Array:
        view = local_view(grid, position).reshape(9)
        cells = jnp.eye(NUM_CELL_VALUES, dtype=jnp.float32)[view].reshape(-1)
        return jnp.concatenate([cells, jnp.eye(len(MOVES) + 1, dtype=jnp.float32)[last_action]])

    def reset(self, key: chex.PRNGKey):
        key, maze_key, door_key = jax.random.split(key, 3)
        half = self.maze_dims[0] // 2
        walls = hunt_and_kill_maze(maze_key, half, half)
        start, end = outer_entrances(door_key, self.grid_size, self.grid_size)
        return self.reset_to(key, walls, start, end)

    def reset_to(self, key: chex.PRNGKey, walls: chex.Array, start: chex.Array, end: chex.Array):
        """Starts an episode in the given maze (``walls [N, N]`` bool, ``start``/``end`` ``[2]`` (y, x))."""
        walls, start, end = jnp.asarray(walls), jnp.asarray(start), jnp.asarray(end)
        shape = (self.grid_size, self.grid_size)
        if walls.shape != shape or start.shape != (2,) or end.shape != (2,):
            raise ValueError(
                f"{type(self).__name__}.reset_to: expected walls {shape}, start (2,), end (2,); "
                f"got {walls.shape}, {start.shape}, {end.shape}"
            )
        start, end = start.astype(jnp.int32), end.astype(jnp.int32)
        grid = jnp.where(walls, OBSTACLE, FREE).astype(jnp.int32)
        grid = grid.at[start[0], start[1]].set(START)
        if self.mark_goal:
            grid = grid.at[end[0], end[1]].set(GOAL)
        state = LabyrinthState(
            grid=grid,
            explored=jnp.zeros(shape, bool).at[start[0], start[1]].set(True),
            position=start,
            step_count=jnp.zeros((), jnp.int32),
            num_free=jnp.sum(grid == FREE).astype(jnp.int32),
            key=key,
        )
        return state, first_timestep(self._observation(grid, start, jnp.int32(len(MOVES))))

    def _reward_and_termination(
        self, state: LabyrinthState, new_square: chex.Array, explored: chex.Array, position: chex.Array
    ):
        raise NotImplementedError

    def step(self, state: LabyrinthState, action: chex.Array):
        action = checked_action(action, num_actions=len(MOVES), env_name=type(self).__name__)
        position = move(state.grid, state.position, action)
        new_square = ~state.explored[position[0], position[1]]
        explored = state.explored.at[position[0], position[1]].set(True)
        step_count = state.step_count + 1
        reward, terminated = self._reward_and_termination(state, new_square, explored, position)
        next_state = state.replace(explored=explored, position=position, step_count=step_count)
        return next_state, step_timestep(
            reward=reward,
            observation=self._observation(state.grid, position, action),
            terminated=terminated,
            # The reference truncates after L - 1 steps (curr_step == L - 1).
            truncated=step_count == self.max_episode_length - 1,
        )
