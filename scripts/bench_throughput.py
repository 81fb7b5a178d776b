"""Training throughput: env steps/s, learner updates/s and sequences/s over a grid.

For each point of ``--num-envs`` x ``--batch-sizes`` x ``--simulations`` x
``--networks`` (everything else the default config, RepeatPrevious Easy unless
``--env`` / ``--difficulty`` / ``--set`` say otherwise) it builds the agent,
fills the replay until sequences can be sampled, then times

  * ``iteration``: one jitted ``train_iteration`` (act ``num_envs x
    rollout_length`` steps, then ``updates_per_iteration`` updates);
  * ``collect``: acting and storing alone, so learning = iteration - collect;

median of ``--repeats`` calls after one warm-up call. Compilation (first call)
is reported separately. Prints a table and writes JSON with the machine named.

    python scripts/bench_throughput.py --num-envs 16 64 --batch-sizes 32 128 --simulations 16
    python scripts/bench_throughput.py --devices 1 2 4     # data parallel over local devices

``--devices`` splits each point over that many devices as training does (global
``num_envs`` and batch). A CPU host runs as the largest of them (``split_cpu``, at most
its cores, as scripts/train.py's ``cpu_devices``; ``XLA_FLAGS=--xla_force_host_platform_device_count=N``
wins, e.g. to run 4 devices on 2 cores, which shows the sharded program runs, not a speed-up).
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import statistics
import time
from typing import Any, Callable, NamedTuple

import jax

from bench_learning import apply_override, default_config, split_cpu_or_exit

# rmuzero.agent is imported where it is used: importing it starts JAX, and split_cpu must come first.


def _timed(fn, state, repeats: int):
    """(compile + first call seconds, median seconds of `repeats` further calls, final state)."""
    begin = time.perf_counter()
    state, _ = fn(state)
    jax.block_until_ready(state)
    first = time.perf_counter() - begin
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        state, _ = fn(state)
        jax.block_until_ready(state)
        times.append(time.perf_counter() - begin)
    return first, statistics.median(times), state


class Timed(NamedTuple):
    """The functions a grid point times (jitted)."""

    agent: Any
    init: Callable  # key -> state
    collect: Callable  # state -> (state, metrics)
    iteration: Callable  # state -> (state, metrics)
    can_sample: Callable  # state -> bool


def _functions(config, num_devices: int) -> Timed:
    """On one device, or data parallel over ``num_devices`` (rmuzero.agent.parallel: the
    same shard_map training uses)."""
    from rmuzero.agent.agent import make_agent

    if num_devices == 1:
        agent = make_agent(config)
        ready = jax.jit(agent.ready)
        return Timed(agent, jax.jit(agent.init), jax.jit(agent.collect), jax.jit(agent.train_iteration),
                     lambda state: bool(ready(state)))
    from jax.sharding import PartitionSpec as P

    from rmuzero.agent.parallel import DATA_AXIS, STATE, make_mesh, shard_functions, shard_state_function, to_host

    mesh = make_mesh(num_devices)
    agent = make_agent(config, num_devices=num_devices, data_axis=DATA_AXIS)
    ready = shard_state_function(agent.ready, mesh, out_specs=P())
    return Timed(agent, shard_functions(agent, mesh).init,
                 shard_state_function(agent.collect, mesh, out_specs=(STATE, P())),
                 shard_state_function(agent.train_iteration, mesh, out_specs=(STATE, P())),
                 lambda state: bool(to_host(ready(state))))


def measure(values: dict, repeats: int, num_devices: int = 1) -> dict:
    from rmuzero.agent.config import config_from_dict

    config = config_from_dict(values)
    agent, init, collect, iteration, can_sample = _functions(config, num_devices)
    state = init(jax.random.PRNGKey(config.seed))
    collect_compile, collect_s, state = _timed(collect, state, 1)
    while not can_sample(state):
        state, _ = collect(state)
    _, collect_s, state = _timed(collect, state, repeats)
    first, iteration_s, state = _timed(iteration, state, repeats)
    system = config.system
    steps = config.env_steps_per_iteration
    learn_s = max(iteration_s - collect_s, 1e-9)
    return {
        "num_envs": system.num_envs,
        "batch_size": system.batch_size,
        "num_simulations": config.search.num_simulations,
        "network": config.network.memory,
        "num_devices": num_devices,
        "sequence_length": agent.sequence_length,
        "iteration_s": iteration_s,
        "collect_s": collect_s,
        "learn_s": learn_s,
        "compile_s": first - iteration_s + collect_compile - collect_s,
        "env_steps_per_second": steps / iteration_s,
        "acting_env_steps_per_second": steps / collect_s,
        "updates_per_second": system.updates_per_iteration / iteration_s,
        "sequences_per_second": system.updates_per_iteration * system.batch_size / iteration_s,
    }


# Config keys the grid sets at every point, and the option that sets them.
GRID_KEYS = {"system.num_envs": "--num-envs", "system.batch_size": "--batch-sizes",
             "search.num_simulations": "--simulations"}


def fill_grid_defaults(args: argparse.Namespace, values: dict) -> None:
    """Grid axes not given take the config's value (configs/), so the default point is the default run."""
    for key, option in GRID_KEYS.items():
        attribute = option.lstrip("-").replace("-", "_")
        if getattr(args, attribute) is None:
            group, field = key.split(".")
            setattr(args, attribute, [values[group][field]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="popgym/repeat_previous")
    parser.add_argument("--difficulty", default=None)
    parser.add_argument("--networks", nargs="+", default=["ffm"])
    parser.add_argument("--num-envs", nargs="+", type=int, default=None, help="default: the config's system.num_envs")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=None, help="default: the config's system.batch_size")
    parser.add_argument("--simulations", nargs="+", type=int, default=None,
                        help="default: the config's search.num_simulations")
    parser.add_argument("--pairs", action="store_true",
                        help="zip --num-envs with --batch-sizes (grow both together) instead of every pair")
    parser.add_argument("--devices", nargs="+", type=int, default=[1],
                        help="device counts to split each point over (data parallel, as training does)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--set", action="append", default=[], help="override, e.g. system.rollout_length=32")
    parser.add_argument("--out", default="bench_throughput.json")
    args = parser.parse_args()
    for assignment in args.set:
        key = assignment.partition("=")[0]
        if key in GRID_KEYS:
            parser.error(f"--set {assignment}: {key} is a grid axis here; valid: {GRID_KEYS[key]} (the grid would "
                         f"replace it)")
    fill_grid_defaults(args, default_config("ffm", args.env))
    split_cpu_or_exit(parser, max(args.devices), "--devices")

    machine = f"{platform.processor() or platform.machine()}, {jax.devices()[0].device_kind}, jax {jax.__version__}"
    print(f"# {machine}; {args.env} {args.difficulty or ''}; overrides {args.set}; median of {args.repeats}")
    header = (f"{'network':8s} {'dev':>3s} {'envs':>5s} {'batch':>5s} {'sims':>4s} {'L':>4s} {'iter s':>7s} {'act s':>6s} "
              f"{'learn s':>7s} {'env st/s':>9s} {'upd/s':>6s} {'seq/s':>7s} {'compile s':>9s}")
    print(header)
    rows = []
    if args.pairs and len(args.num_envs) != len(args.batch_sizes):
        parser.error(f"--pairs needs as many --num-envs ({len(args.num_envs)}) as --batch-sizes ({len(args.batch_sizes)})")
    widths = list(zip(args.num_envs, args.batch_sizes)) if args.pairs else list(itertools.product(args.num_envs, args.batch_sizes))
    for network, devices, (num_envs, batch), sims in itertools.product(
            args.networks, args.devices, widths, args.simulations):
        values = default_config(network, args.env)
        if args.difficulty is not None:
            values["env"]["difficulty"] = args.difficulty
        for assignment in args.set:
            apply_override(values, assignment)
        values["system"]["num_envs"] = num_envs
        values["system"]["batch_size"] = batch
        values["search"]["num_simulations"] = sims
        row = measure(values, args.repeats, devices)
        rows.append(row)
        print(f"{network:8s} {devices:3d} {num_envs:5d} {batch:5d} {sims:4d} {row['sequence_length']:4d} "
              f"{row['iteration_s']:7.3f} {row['collect_s']:6.3f} {row['learn_s']:7.3f} "
              f"{row['env_steps_per_second']:9.0f} {row['updates_per_second']:6.1f} "
              f"{row['sequences_per_second']:7.0f} {row['compile_s']:9.1f}", flush=True)
    with open(args.out, "w") as f:
        json.dump({"machine": machine, "platform": platform.platform(), "args": vars(args), "rows": rows}, f, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
