"""Run by tests/agent/test_parallel.py in a fresh process with 4 virtual CPU devices
(XLA_FLAGS=--xla_force_host_platform_device_count=4 must be set before jax starts).

    python tests/agent/multidevice_checks.py all RUN_DIR   # prints one JSON object
    python tests/agent/multidevice_checks.py process RUN_DIR PORT PROCESS_ID   # one of 2 processes

``all`` runs these in one process (one start-up, and seed 5's run alone reuses the programs
train()'s memo kept from the resumed run, the same layout), each under its own key:

``update``: one learner update of a fixed global batch on 1 device and on 4 (each device
a quarter of the batch, gradients averaged): parameters, optimizer state and losses.
``train``: a short run on every device (4), then resumed on 2 devices.
``seeds``: seeds 4 and 5 vmapped on 2 devices, and seed 5 alone on 2 devices.
``gru_seeds``: the sharded initial state of a GRU agent with seeds 4 and 5 on 2 devices, and
each seed's parameters initialised on one device.

``process``: one of two processes (one CPU device each, gloo collectives) training one run.
"""

from __future__ import annotations

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
from compile_log import by_program, compilations
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from rmuzero.distributed import DistributedConfig, initialize

SMALL = {
    "system": {
        "num_envs": 4,
        "batch_size": 8,
        "rollout_length": 13,
        "replay_length_per_env": 64,
        "updates_per_iteration": 2,
        "num_unroll_steps": 2,
        "td_steps": 2,
        "roots_per_sequence": 3,
        "reanalyse_fraction": 0.5,
    },
    "network": {"features": 16, "latent_size": 16, "head_sizes": [16], "value_bins": 21, "reward_bins": 21},
    "search": {"num_simulations": 4, "max_num_considered_actions": 4},
    "eval_episodes": 4,
}


# The runs (train, seeds, process): 8 environments, no reanalysis (the update check keeps it), one
# layout on 2 devices for the resumed run and seed 5 alone, which finds its programs in train()'s
# memo. (The two processes compile their own: a multi-process program has another cache key.)
RUNS = {**SMALL, "system": {**SMALL["system"], "num_envs": 8, "reanalyse_fraction": 0.0}}


def _use_compilation_cache() -> None:
    """The test run's compilation cache ($RMUZERO_COMPILATION_CACHE, set by tests/conftest.py), or none."""
    from rmuzero.agent.train import compilation_cache_dir, enable_compilation_cache

    enable_compilation_cache(compilation_cache_dir())


def check_update() -> dict:
    from rmuzero.agent.agent import make_agent
    from rmuzero.agent.config import config_from_dict

    config = config_from_dict(SMALL)
    one = make_agent(config)
    state = jax.jit(one.init)(jax.random.PRNGKey(0))
    collect = jax.jit(one.collect)
    while not bool(one.replay.can_sample(state.replay)):
        state, _ = collect(state)
    batch = jax.jit(one.sample_batch)(state, jax.random.PRNGKey(1))  # the global batch, 8 sequences
    single, (parts1, norm1, _) = jax.jit(one.learn)(state, batch)

    four = make_agent(config, num_devices=4, data_axis="data")
    mesh = Mesh(np.asarray(jax.devices()[:4]), ("data",))
    sharded = jax.jit(
        jax.shard_map(four.learn, mesh=mesh, in_specs=(P(), P("data")), out_specs=(P(), P()), check_vma=False)
    )
    parallel, (parts4, norm4, _) = sharded(state, batch)

    def max_difference(a, b):
        return max(float(jnp.max(jnp.abs(x - y))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))

    moved = max_difference(single.params, state.params)
    return {
        "devices": jax.device_count(),
        "params": max_difference(single.params, parallel.params),
        "opt_state": max_difference(single.opt_state, parallel.opt_state),
        "loss": abs(float(parts1.total) - float(parts4.total)),
        "grad_norm": abs(float(norm1) - float(norm4)),
        "moved": moved,
        "loss_value": float(parts1.total),
    }


def check_train(run_dir: str) -> dict:
    from rmuzero.agent.config import config_from_dict
    from rmuzero.agent.train import train
    from rmuzero.metrics import read_metrics

    values = {
        **RUNS,
        "total_env_steps": 832,
        "log_every": 208,
        "eval_every": 416,
        "checkpoint_every": 416,
    }
    with compilations() as fresh:
        train(config_from_dict(values), run_dir, progress=False)
    first = read_metrics(f"{run_dir}/metrics.jsonl")
    with compilations() as again:
        train(
            config_from_dict({**values, "total_env_steps": 1248, "num_devices": 2}),
            run_dir,
            progress=False,
            resume=True,
        )
    return {
        "devices": jax.device_count(),
        "first": first,
        "resumed": read_metrics(f"{run_dir}/metrics.jsonl"),
        "compiled": [by_program(counts, "jit(train_iterations)") for counts in (fresh, again)],
    }


def check_seeds(run_dir: str) -> dict:
    from rmuzero.agent.config import config_from_dict
    from rmuzero.agent.train import train
    from rmuzero.metrics import read_metrics

    values = {
        **RUNS,
        "total_env_steps": 520,
        "log_every": 104,
        "eval_every": 520,
        "checkpoint_every": 520,
        "num_devices": 2,
        "seed": 4,
    }
    with compilations() as both:
        train(config_from_dict({**values, "num_seeds": 2}), f"{run_dir}/both", progress=False)
    with compilations() as alone:  # the layout of check_train's resumed run, another seed and schedule
        train(config_from_dict({**values, "seed": 5}), f"{run_dir}/alone_5", progress=False)
    return {
        "compiled": by_program(both, "jit(train_iterations)"),
        "compiled_alone": by_program(alone, "jit(train_iterations)"),
        "together": read_metrics(f"{run_dir}/both/seed_5/metrics.jsonl"),
        "alone": read_metrics(f"{run_dir}/alone_5/metrics.jsonl"),
    }


def check_gru_seeds() -> dict:
    from rmuzero.agent.agent import make_agent
    from rmuzero.agent.config import config_from_dict
    from rmuzero.agent.parallel import DATA_AXIS, make_mesh, shard_functions

    # Width 128, the default: with 16 the QR ran (it hung at 128).
    config = config_from_dict(
        {**SMALL, "network": {**SMALL["network"], "memory": "gru", "features": 128}, "num_seeds": 2}
    )
    agent = make_agent(config, num_devices=2, data_axis=DATA_AXIS)
    keys = jnp.stack([jax.random.PRNGKey(4), jax.random.PRNGKey(5)])
    state = shard_functions(agent, make_mesh(2), num_seeds=2).init(keys)
    alone = [jax.jit(make_agent(config).init)(key).params for key in keys]
    differences = [
        max(float(jnp.max(jnp.abs(a[i] - b))) for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(alone[i])))
        for i in range(2)
    ]
    between = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(*map(jax.tree.leaves, alone)))
    return {
        "mesh": len(jax.tree.leaves(state.params)[0].sharding.device_set),
        "env_steps": np.asarray(state.env_steps).tolist(),
        "differences": differences,
        "between_seeds": between,
    }


TWO_PROCESSES = {**RUNS, "total_env_steps": 624, "log_every": 208, "eval_every": 312, "checkpoint_every": 312}


def check_process(run_dir: str, port: str, process_id: str) -> dict:
    distributed = {"coordinator_address": f"localhost:{port}", "num_processes": 2, "process_id": int(process_id)}
    initialize(DistributedConfig(**distributed))  # before jumanji's import starts JAX
    _use_compilation_cache()
    from rmuzero.agent.config import config_from_dict
    from rmuzero.agent.train import train

    values = {**TWO_PROCESSES, "distributed": distributed}
    summary = train(config_from_dict(values), run_dir, progress=False)
    return {"devices": jax.device_count(), "processes": jax.process_count(), "summary": summary}


if __name__ == "__main__":
    if sys.argv[1] != "process":  # a process of a distributed run turns the cache on after joining
        _use_compilation_cache()
    if sys.argv[1] == "all":
        run_dir = sys.argv[2]
        out = {"devices": jax.device_count(), "update": check_update(), "train": check_train(f"{run_dir}/train")}
        out.update(seeds=check_seeds(f"{run_dir}/seeds"), gru_seeds=check_gru_seeds())
        print(json.dumps(out))
    else:
        print(json.dumps(check_process(*sys.argv[2:5])))
