"""Data parallel training over devices, and over processes (hosts) through jax.distributed.

One mesh axis, ``data``, over D devices (every device of every process). The
agent is built for one device's share (``make_agent(num_devices=D,
data_axis="data")``: ``num_envs / D`` environments and replay rows,
``batch_size / D`` sequences per update) and its functions run under
``jax.shard_map``:

    sharded along ``data``:  the actor (environments, memory carries) and the
                             replay's rows (leading axis: environments);
    replicated:              parameters, target parameters, optimizer state,
                             the PRNG key (each device folds in its index), the
                             counters, the replay's write position;
    reduced inside:          gradients, losses (``pmean``: each device's batch
                             weighs the same, so the update is the one-device
                             update on the global batch), episode sums (``psum``).

Why ``shard_map`` with explicit collectives rather than sharding annotations on
the one-device program: the replay samples per row and the search runs per
environment, so the per-device program is exactly the one-device program on a
slice, and the only communication is the gradient mean once per update. Nothing
for the compiler to guess, and the state layout is the one a checkpoint holds
(global arrays: the leading axis of a sharded leaf is the global ``num_envs``),
so a checkpoint restores on any device count that divides the global sizes.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flashbax.buffers.trajectory_buffer import TrajectoryBufferState
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from rmuzero.agent.acting import ActorState
from rmuzero.agent.agent import TrainState
from rmuzero.agent.config import ConfigError
from rmuzero.distributed import DistributedConfig, initialize

DATA_AXIS = "data"

__all__ = [
    "DATA_AXIS",
    "STATE",
    "ShardedTraining",
    "abstract_state",
    "shard_state_function",
    "initialize_distributed",
    "make_mesh",
    "shard_functions",
    "state_specs",
    "to_host",
]


def initialize_distributed(distributed: DistributedConfig) -> None:
    """Joins the multi-process run ``distributed`` describes (nothing for one process); the
    process count JAX reports must then be the configured one."""
    initialize(distributed)
    if distributed.enabled and jax.process_count() != distributed.num_processes:
        raise ConfigError(
            f"distributed.num_processes={distributed.num_processes} but JAX runs {jax.process_count()} processes"
        )


def default_num_devices(num_envs: int, batch_size: int, available: int, num_processes: int = 1) -> int:
    """What ``num_devices: null`` trains on: every device of a multi-process run; in one
    process the most of its ``available`` devices that ``num_envs`` and ``batch_size`` both
    divide over (16 envs and 32 sequences on 3 devices: 2)."""
    if num_processes > 1:
        return available
    return max(d for d in range(1, available + 1) if num_envs % d == 0 and batch_size % d == 0)


def make_mesh(num_devices: int | None) -> Mesh:
    """A one-axis mesh over ``num_devices`` devices (None: all of them, every process's)."""
    devices = jax.devices()
    count = len(devices) if num_devices is None else num_devices
    if count > len(devices):
        raise ConfigError(f"num_devices={count}; valid: 1 .. {len(devices)} (the devices visible), or null for all")
    if jax.process_count() > 1 and count != len(devices):
        raise ConfigError(
            f"num_devices={count} with {jax.process_count()} processes; valid: null (every device "
            f"of every process, {len(devices)})"
        )
    return Mesh(np.asarray(devices[:count]), (DATA_AXIS,))


def state_specs() -> TrainState:
    """The partition of a :class:`TrainState` (a pytree prefix): environments along ``data``."""
    shard, replicate = P(DATA_AXIS), P()
    return TrainState(
        params=replicate,
        target_params=replicate,
        opt_state=replicate,
        actor=ActorState(env_state=shard, step=shard, carry=shard),
        replay=TrajectoryBufferState(experience=shard, current_index=replicate, is_full=replicate),
        key=replicate,
        env_steps=replicate,
        updates=replicate,
    )


class ShardedTraining(NamedTuple):
    """An agent's training functions over the whole mesh (jitted)."""

    init: Callable[[Any], TrainState]  # key -> TrainState of global arrays
    train_iterations: Callable[[TrainState], tuple]  # state (donated) -> (state, metrics [k])
    place: Callable[[TrainState], TrainState]  # a host state (a restored checkpoint) onto the mesh
    shardings: Any  # the state's shardings (a TrainState prefix tree of NamedSharding)


STATE = object()  # in shard_state_function's out_specs: "partitioned like the training state"


def _seeded(spec_tree: Any, num_seeds: int) -> Any:
    """``spec_tree`` with a leading, unsharded seed axis for ``num_seeds > 1``."""
    if num_seeds == 1:
        return spec_tree
    return jax.tree.map(lambda spec: P(None, *spec), spec_tree, is_leaf=lambda x: isinstance(x, P))


def shard_state_function(
    fn: Callable, mesh: Mesh, *, out_specs: Any, num_seeds: int = 1, donate: bool = False
) -> Callable:
    """``fn(state) -> out`` of an agent built for one device's share, jitted over ``mesh``:
    the state partitioned by :func:`state_specs`, ``out_specs`` for the rest of the output
    (``STATE`` where it is a state); vmapped over a leading seed axis for ``num_seeds > 1``."""
    state_spec = _seeded(state_specs(), num_seeds)
    out_specs = jax.tree.map(
        lambda spec: state_spec if spec is STATE else spec, out_specs, is_leaf=lambda x: isinstance(x, P) or x is STATE
    )
    body = jax.vmap(fn) if num_seeds > 1 else fn
    sharded = jax.shard_map(body, mesh=mesh, in_specs=(state_spec,), out_specs=out_specs, check_vma=False)
    return jax.jit(sharded, donate_argnums=0 if donate else ())


def _init_per_seed(init: Callable, num_seeds: int) -> Callable:
    """``init`` over a leading seed axis of keys: one call per seed, stacked. Not ``jax.vmap``:
    on several CPU devices (jax 0.10.2) a vmapped GRU initialisation under ``shard_map`` never
    returns (width 128; tests/agent/test_parallel.py). Its only custom calls are the LAPACK QR
    of the orthogonal initialiser, yet that initialiser vmapped alone runs, so the trigger is
    not pinned down; one seed at a time runs. It runs once per run, so the copies cost only
    compile time."""
    if num_seeds == 1:
        return init

    def per_seed(keys):
        states = [init(keys[i]) for i in range(num_seeds)]
        return jax.tree.map(lambda *leaves: jnp.stack(leaves), *states)

    return per_seed


def shard_functions(agent, mesh: Mesh, *, num_seeds: int = 1) -> ShardedTraining:
    """The training functions of an agent built for one device's share, over ``mesh``.
    With ``num_seeds > 1`` every function runs over a leading seed axis, which stays
    unsharded: vmapped, except ``init``, one seed at a time (:func:`_init_per_seed`)."""
    state_spec = _seeded(state_specs(), num_seeds)
    init = jax.shard_map(
        _init_per_seed(agent.init, num_seeds), mesh=mesh, in_specs=P(), out_specs=state_spec, check_vma=False
    )
    iterations = shard_state_function(
        agent.train_iterations, mesh, out_specs=(STATE, P()), num_seeds=num_seeds, donate=True
    )
    shardings = _shardings(mesh, state_spec)

    def place(state: TrainState) -> TrainState:
        return jax.tree.map(
            lambda x, s: jax.make_array_from_callback(np.shape(x), s, lambda i: np.asarray(x)[i]),
            state,
            _leaf_shardings(shardings, state),
        )

    return ShardedTraining(jax.jit(init), iterations, place, shardings)


def abstract_state(shapes: Any, shardings: Any = None) -> Any:
    """``shapes`` (a ``jax.eval_shape`` of the state) as ``ShapeDtypeStruct`` leaves carrying the
    shardings the real state will have (a prefix tree, as :class:`ShardedTraining` holds), or
    none (``shardings=None``: one device, uncommitted arrays): what lowering a state function
    ahead of the state needs for jit's cache to serve the real call."""

    def spec(x, sharding=None):  # weak types kept: a weak-typed leaf lowers to another program
        return jax.ShapeDtypeStruct(x.shape, x.dtype, weak_type=x.weak_type, sharding=sharding)

    if shardings is None:
        return jax.tree.map(spec, shapes)
    return jax.tree.map(spec, shapes, _leaf_shardings(shardings, shapes))


def _leaf_shardings(shardings: Any, tree: Any) -> Any:
    """The prefix tree ``shardings`` as one sharding per leaf of ``tree``, an empty leaf (a
    replay without stored carries) replicated: jax returns it so whatever its spec, and a
    state placed otherwise would make jit compile the training step again."""
    return jax.tree.map(
        lambda x, s: NamedSharding(s.mesh, P()) if math.prod(np.shape(x)) == 0 else s, tree, _expand(shardings, tree)
    )


def _shardings(mesh: Mesh, spec_tree: Any) -> Any:
    return jax.tree.map(lambda spec: NamedSharding(mesh, spec), spec_tree, is_leaf=lambda x: isinstance(x, P))


def _expand(prefix: Any, tree: Any) -> Any:
    """The prefix tree ``prefix`` broadcast to the structure of ``tree``."""
    return jax.tree.map(
        lambda p, sub: jax.tree.map(lambda _: p, sub), prefix, tree, is_leaf=lambda x: isinstance(x, NamedSharding)
    )


def to_host(tree: Any) -> Any:
    """Host numpy copies of a pytree of (possibly multi-process) arrays: a replicated leaf is
    read from this process's first shard, a sharded one gathered from every process."""
    from jax.experimental import multihost_utils

    def one(x):
        if not isinstance(x, jax.Array) or x.is_fully_addressable:
            return np.asarray(x)
        if x.is_fully_replicated:
            return np.asarray(x.addressable_data(0))
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))

    return jax.tree.map(one, tree)
