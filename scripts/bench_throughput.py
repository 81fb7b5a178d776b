"""Training throughput: env steps/s, learner updates/s and sequences/s over a grid.

For each point of ``num_envs`` x ``batch_sizes`` x ``simulations`` x ``networks`` (everything
else the default config, RepeatPrevious Easy unless overrides say otherwise) it builds the
agent, fills the replay until sequences can be sampled, then times

  * ``iteration``: one jitted ``train_iteration`` (act ``num_envs x
    rollout_length`` steps, then ``updates_per_iteration`` updates);
  * ``collect``: acting and storing alone, so learning = iteration - collect;

median of ``repeats`` calls after one warm-up call. Compilation (first call)
is reported separately. Prints a table and writes JSON with the machine named.

    python scripts/bench_throughput.py num_envs=[16,64] batch_sizes=[32,128] simulations=16
    python scripts/bench_throughput.py num_envs=[16,64,256] batch_sizes=[16,64,256] pairs=true repeats=3
    python scripts/bench_throughput.py devices=[1,2,4]     # data parallel over local devices

Options: ``networks=``, ``num_envs=``, ``batch_sizes=``, ``simulations=`` (the grid's axes; an
axis not given is the config's value), ``pairs=true`` (zip num_envs with batch_sizes instead of
every pair), ``devices=``, ``repeats=``, ``out=``. Any other ``key=value`` is a
``scripts/train.py`` override for every point (``env.difficulty=hard``,
``system.rollout_length=32`` ...), but not of a key the grid sets.

``devices`` splits each point over that many devices as training does (global
``num_envs`` and batch). A CPU host runs as the largest of them (``split_cpu``, at most
its cores, as scripts/train.py's ``cpu_devices``; ``XLA_FLAGS=--xla_force_host_platform_device_count=N``
wins, e.g. to run 4 devices on 2 cores, which shows the sharded program runs, not a speed-up).
"""

from __future__ import annotations

import itertools
import json
import platform
import statistics
import time
from typing import Any, Callable, NamedTuple

import jax

from rmuzero import cli

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
        return Timed(
            agent,
            jax.jit(agent.init),
            jax.jit(agent.collect),
            jax.jit(agent.train_iteration),
            lambda state: bool(ready(state)),
        )
    from jax.sharding import PartitionSpec as P

    from rmuzero.agent.parallel import DATA_AXIS, STATE, make_mesh, shard_functions, shard_state_function, to_host

    mesh = make_mesh(num_devices)
    agent = make_agent(config, num_devices=num_devices, data_axis=DATA_AXIS)
    ready = shard_state_function(agent.ready, mesh, out_specs=P())
    return Timed(
        agent,
        shard_functions(agent, mesh).init,
        shard_state_function(agent.collect, mesh, out_specs=(STATE, P())),
        shard_state_function(agent.train_iteration, mesh, out_specs=(STATE, P())),
        lambda state: bool(to_host(ready(state))),
    )


def measure(config, repeats: int, num_devices: int = 1) -> dict:
    """The timings of one grid point: ``config`` (an AgentConfig) on ``num_devices`` devices."""
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
GRID_KEYS = {
    "system.num_envs": "num_envs",
    "system.batch_size": "batch_sizes",
    "search.num_simulations": "simulations",
    "network": "networks",
}
USAGE = (
    "usage: python scripts/bench_throughput.py [networks=[...]] [num_envs=[...]] [batch_sizes=[...]] "
    "[simulations=[...]] [pairs=true] [devices=[...]] [repeats=N] [out=<file>] [train.py key=value ...]"
)
OPTIONS = {
    "networks": ["ffm"],
    "num_envs": [],
    "batch_sizes": [],
    "simulations": [],
    "pairs": False,
    "devices": [1],
    "repeats": 3,
    "out": "bench_throughput.json",
}  # an empty axis: the config's value
ALIASES = {"difficulty": "env.difficulty"}  # the old --difficulty


def fill_grid_defaults(args: dict, values: dict) -> None:
    """Grid axes not given take the config's value (configs/), so the default point is the default run."""
    for key, option in GRID_KEYS.items():
        if "." in key and not args[option]:
            group, field = key.split(".")
            args[option] = [values[group][field]]


def point_overrides(network: str, num_envs: int, batch: int, sims: int, overrides: list[str]) -> list[str]:
    return [
        f"network={network}",
        *overrides,
        f"system.num_envs={num_envs}",
        f"system.batch_size={batch}",
        f"search.num_simulations={sims}",
    ]


def task_label(env: dict) -> str:
    """``env``'s composed config in a few words: POPGym's family and difficulty, another suite's id."""
    return " ".join(str(env[key]) for key in ("name", "difficulty") if env.get(key))


def main(argv: list[str]) -> int:
    args, overrides = cli.parse_args(argv, OPTIONS, usage=USAGE, overrides=True, aliases=ALIASES, doc=__doc__)
    for token in overrides:
        key = token.partition("=")[0].lstrip("+~")
        if key in GRID_KEYS:
            raise cli.UsageError(
                f"{token}: {key} is a grid axis here; valid: {GRID_KEYS[key]}=[...] (the grid would replace it)"
            )
    cli.at_least(args, 1, "devices", "repeats")
    values = cli.compose(overrides)
    fill_grid_defaults(args, values)
    if args["pairs"] and len(args["num_envs"]) != len(args["batch_sizes"]):
        raise cli.UsageError(
            f"pairs=true needs as many num_envs ({len(args['num_envs'])}) as batch_sizes ({len(args['batch_sizes'])})"
        )
    try:
        cli.start_devices(max(args["devices"]))
    except cli.UsageError as error:
        raise cli.UsageError(str(error).replace("cpu_devices", "devices", 1)) from None

    machine = f"{platform.processor() or platform.machine()}, {jax.devices()[0].device_kind}, jax {jax.__version__}"
    print(f"# {machine}; {task_label(values['env'])}; overrides {overrides}; median of {args['repeats']}")
    header = (
        f"{'network':8s} {'dev':>3s} {'envs':>5s} {'batch':>5s} {'sims':>4s} {'L':>4s} {'iter s':>7s} {'act s':>6s} "
        f"{'learn s':>7s} {'env st/s':>9s} {'upd/s':>6s} {'seq/s':>7s} {'compile s':>9s}"
    )
    print(header)
    rows = []
    widths = (
        list(zip(args["num_envs"], args["batch_sizes"]))
        if args["pairs"]
        else list(itertools.product(args["num_envs"], args["batch_sizes"]))
    )
    for network, devices, (num_envs, batch), sims in itertools.product(
        args["networks"], args["devices"], widths, args["simulations"]
    ):
        config = cli.agent_config(cli.compose(point_overrides(network, num_envs, batch, sims, overrides)))
        row = measure(config, args["repeats"], devices)
        rows.append(row)
        print(
            f"{network:8s} {devices:3d} {num_envs:5d} {batch:5d} {sims:4d} {row['sequence_length']:4d} "
            f"{row['iteration_s']:7.3f} {row['collect_s']:6.3f} {row['learn_s']:7.3f} "
            f"{row['env_steps_per_second']:9.0f} {row['updates_per_second']:6.1f} "
            f"{row['sequences_per_second']:7.0f} {row['compile_s']:9.1f}",
            flush=True,
        )
    with open(args["out"], "w") as f:
        json.dump(
            {
                "machine": machine,
                "platform": platform.platform(),
                "commit": cli.git_commit(),
                "args": {**args, "overrides": overrides},
                "rows": rows,
            },
            f,
            indent=1,
        )
    print(f"wrote {args['out']}")
    return 0


if __name__ == "__main__":
    cli.run(main)
