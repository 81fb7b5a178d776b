"""Random-policy and oracle returns of every POPGym family x difficulty, measured in rmuzero's JAX envs.

What it measures (the numbers pasted into ``rmuzero/envs/popgym/anchors.py``):

- ``random``: the undiscounted episode return of a policy drawing each action
  uniformly from the ``A`` actions, independently of everything, over
  ``--episodes`` independent episodes per task (one jitted program per task:
  ``vmap`` over episodes, a ``lax.while_loop`` over steps; each episode is
  played from ``env.reset`` until its first ``LAST`` timestep, without
  auto-reset, and its state is frozen after that). Printed: mean, standard
  error of the mean, mean episode length.
- ``--oracles`` adds two oracle measurements used as ceilings in the module:
  * HigherLower, the card-counting policy: guess "higher" when at least as many
    of the cards not yet seen rank above the current card as below it. The
    action has no effect on the cards dealt, so this myopic Bayes-optimal
    guess is the best policy given the history: its mean is the best
    achievable expected return (a Monte Carlo estimate).
  * LabyrinthEscape / LabyrinthExplore, a clairvoyant that knows the maze:
    Escape walks the shortest path (return ``1 - d / L``, ``d`` its length from
    a breadth-first search), Explore takes the shortest walk that visits every
    cell of the maze tree (``F`` new cells and ``F - depth`` revisits, return
    ``1 - (F - depth) / L``, ``depth`` the deepest cell's distance from the
    start). No policy that sees only the 3 x 3 window can beat it on any
    maze, so its mean is an upper bound of the best achievable expectation.

    python scripts/popgym_random_returns.py oracles=true    # the module's numbers: every task, 2000 episodes
    python scripts/popgym_random_returns.py families=[repeat_previous] episodes=1000
    python scripts/popgym_random_returns.py oracles_only=true

Options (``key=value``, rmuzero.cli): ``episodes=`` per task, ``seed=``, ``families=`` (default:
all), ``difficulties=``, ``oracles=true`` (also the oracle ceilings), ``oracles_only=true``.

Seeds: ``seed`` (default 0) is split into one key per task in the order of
``list_envs()`` x ``DIFFICULTIES``, so a task's numbers do not depend on which
other tasks are run.

Like the test suite, it asks XLA for unoptimised CPU code unless ``XLA_FLAGS``
already sets the level: the programs compute the same numbers and the whole
table compiles in about half the time.
"""

from __future__ import annotations

import collections
import math
import os
import time
from types import SimpleNamespace

if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

import jax
import jax.numpy as jnp
import numpy as np

from rmuzero import cli
from rmuzero.envs import DIFFICULTIES, list_envs, make
from rmuzero.envs.popgym import _cards
from rmuzero.envs.popgym._grid import OBSTACLE


def _task_key(seed: int, name: str, difficulty: str) -> jax.Array:
    index = list_envs().index(name) * len(DIFFICULTIES) + DIFFICULTIES.index(difficulty)
    return jax.random.fold_in(jax.random.key(seed), index)


def play(env, policy, key: jax.Array, episodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Plays ``episodes`` episodes of ``env`` with ``policy(key, state) -> action`` (a scalar int).

    Returns ``(returns [episodes], lengths [episodes])`` as numpy float64 / int64.
    """
    cap = env.max_episode_length + 1  # every family ends by its own limit (the labyrinths at L - 1)
    reset_key, play_key = jax.random.split(key)

    @jax.jit
    def run(reset_keys, play_key):
        state, _ = jax.vmap(env.reset)(reset_keys)
        done = jnp.zeros(episodes, bool)
        ret = jnp.zeros(episodes, jnp.float32)
        length = jnp.zeros(episodes, jnp.int32)

        def cond(carry):
            _, done, _, _, _, t = carry
            return jnp.any(~done) & (t < cap)

        def body(carry):
            state, done, ret, length, key, t = carry
            key, act_key = jax.random.split(key)
            actions = jax.vmap(policy)(jax.random.split(act_key, episodes), state)
            new_state, timestep = jax.vmap(env.step)(state, actions)
            ret = ret + jnp.where(done, 0.0, timestep.reward)
            length = length + (~done).astype(jnp.int32)

            def keep(new, old):
                return jnp.where(jnp.reshape(done, done.shape + (1,) * (new.ndim - 1)), old, new)

            state = jax.tree_util.tree_map(keep, new_state, state)
            done = done | timestep.last()
            return state, done, ret, length, key, t + 1

        init = (state, done, ret, length, play_key, jnp.zeros((), jnp.int32))
        _, done, ret, length, _, _ = jax.lax.while_loop(cond, body, init)
        return ret, length, done

    ret, length, done = run(jax.random.split(reset_key, episodes), play_key)
    if not bool(np.all(np.asarray(done))):
        raise RuntimeError(f"{env!r}: some episodes did not end within {cap} steps")
    return np.asarray(ret, np.float64), np.asarray(length, np.int64)


def uniform_policy(num_actions: int):
    def policy(key, state):
        del state
        return jax.random.randint(key, (), 0, num_actions, jnp.int32)

    return policy


def counting_policy(env):
    """HigherLower: 0 ("higher") when at least as many unseen cards rank above the current one as below."""

    def policy(key, state):
        del key
        t = state.step_count  # index of the card shown last
        ranks = _cards.card_field(state.cards, "ranks")  # [N]
        seen = jnp.arange(env.num_cards) <= t
        current = ranks[t]
        unseen = ~seen
        higher = jnp.sum(unseen & (ranks > current))
        lower = jnp.sum(unseen & (ranks < current))
        return jnp.where(higher >= lower, 0, 1).astype(jnp.int32)

    return policy


def stats(values: np.ndarray) -> tuple[float, float]:
    """(mean, standard error of the mean)."""
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(len(values)))


def _tree_distances(grid: np.ndarray, start: tuple[int, int]) -> dict:
    """Breadth-first distances from ``start`` over the non-wall cells of ``grid``."""
    dist = {start: 0}
    queue = collections.deque([start])
    height, width = grid.shape
    while queue:
        y, x = queue.popleft()
        for dy, dx in ((0, -1), (0, 1), (-1, 0), (1, 0)):
            ny, nx = y + dy, x + dx
            if 0 <= ny < height and 0 <= nx < width and grid[ny, nx] != OBSTACLE and (ny, nx) not in dist:
                dist[(ny, nx)] = dist[(y, x)] + 1
                queue.append((ny, nx))
    return dist


def labyrinth_clairvoyant(name: str, difficulty: str, key: jax.Array, episodes: int) -> np.ndarray:
    """Per-maze return of the clairvoyant (see the module docstring), ``[episodes]``."""
    env = make(name, difficulty)
    states, _ = jax.jit(jax.vmap(env.reset))(jax.random.split(key, episodes))
    grids = np.asarray(states.grid)
    starts = np.asarray(states.position)
    num_free = np.asarray(states.num_free)
    length_limit = env.max_episode_length
    returns = np.empty(episodes)
    for i in range(episodes):
        dist = _tree_distances(grids[i], (int(starts[i][0]), int(starts[i][1])))
        if name.endswith("escape"):
            goal = tuple(int(v) for v in np.argwhere(grids[i] == 3)[0])  # GOAL
            steps = dist[goal]
            returns[i] = 1.0 - steps / length_limit
        else:
            free = int(num_free[i])
            reachable = len(dist) - 1  # the start cell is not FREE
            if reachable != free:
                raise RuntimeError(f"maze {i}: {free} free cells but {reachable} reachable")
            depth = max(dist.values())
            steps = 2 * free - depth  # a tree of F edges: each walked twice but for the last branch
            if steps > length_limit - 1:
                raise RuntimeError(f"maze {i}: the tour ({steps} steps) exceeds the time limit")
            returns[i] = 1.0 - (free - depth) / length_limit
    return returns


USAGE = (
    "usage: python scripts/popgym_random_returns.py [episodes=N] [seed=S] [families=[...]] [difficulties=[...]] "
    "[oracles=true] [oracles_only=true]"
)
OPTIONS = {
    "episodes": 2000,
    "seed": 0,
    "families": [],
    "difficulties": list(DIFFICULTIES),
    "oracles": False,
    "oracles_only": False,
}


def main(argv: list[str]) -> int:
    args = SimpleNamespace(**cli.parse_args(argv, OPTIONS, usage=USAGE, doc=__doc__)[0])
    cli.at_least(vars(args), 1, "episodes")
    names = [f"popgym/{family}" for family in args.families] or list_envs()
    unknown = [name for name in names if name not in list_envs()]
    if unknown:
        raise cli.UsageError(
            f"families: {unknown[0].split('/')[1]}; valid: {', '.join(name.split('/')[1] for name in list_envs())}"
        )
    difficulties = args.difficulties
    for difficulty in difficulties:
        if difficulty not in DIFFICULTIES:
            raise cli.UsageError(f"difficulties: {difficulty}; valid: {', '.join(DIFFICULTIES)}")
    print(
        f"jax {jax.__version__}, backend {jax.default_backend()}, seed {args.seed}, {args.episodes} episodes per task"
    )

    if not args.oracles_only:
        print("\nrandom policy (uniform actions): name | difficulty | mean | stderr | episodes | mean length | seconds")
        for name in names:
            for difficulty in difficulties:
                env = make(name, difficulty)
                started = time.perf_counter()
                policy = uniform_policy(env.action_spec.num_values)
                returns, lengths = play(env, policy, _task_key(args.seed, name, difficulty), args.episodes)
                mean, stderr = stats(returns)
                print(
                    f"{name} | {difficulty} | {mean:.4f} | {stderr:.4f} | {len(returns)} | {lengths.mean():.1f} "
                    f"| {time.perf_counter() - started:.1f}",
                    flush=True,
                )

    if args.oracles or args.oracles_only:
        print("\noracles: name | difficulty | policy | mean | stderr | episodes")
        for difficulty in difficulties:
            name = "popgym/higher_lower"
            env = make(name, difficulty)
            key = jax.random.fold_in(_task_key(args.seed, name, difficulty), 1)
            returns, _ = play(env, counting_policy(env), key, args.episodes)
            mean, stderr = stats(returns)
            print(f"{name} | {difficulty} | card counting | {mean:.4f} | {stderr:.4f} | {len(returns)}", flush=True)
        for name in ("popgym/labyrinth_escape", "popgym/labyrinth_explore"):
            for difficulty in difficulties:
                key = jax.random.fold_in(_task_key(args.seed, name, difficulty), 1)
                returns = labyrinth_clairvoyant(name, difficulty, key, args.episodes)
                mean, stderr = stats(returns)
                print(f"{name} | {difficulty} | clairvoyant | {mean:.4f} | {stderr:.4f} | {len(returns)}", flush=True)
    return 0


if __name__ == "__main__":
    cli.run(main)
