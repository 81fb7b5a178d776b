"""Data parallel training: 4 virtual CPU devices, and 2 processes on localhost (gloo).

The device count is fixed when JAX starts, so each check runs in a fresh process
(tests/agent/multidevice_checks.py) and reports JSON; the assertions are here.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import subprocess_env

from rmuzero.agent.agent import make_agent
from rmuzero.agent.config import ConfigError, config_from_dict

ROOT = Path(__file__).resolve().parents[2]
CHECKS = ROOT / "tests" / "agent" / "multidevice_checks.py"


@pytest.fixture(scope="module")
def checks(tmp_path_factory) -> dict:
    """The four single-process checks, run once in one fresh process with 4 CPU devices (one
    JAX start-up for all; the GRU check, which once hung, is one of them: the 600 s bound)."""
    env = subprocess_env(XLA_FLAGS="--xla_force_host_platform_device_count=4", PYTHONPATH=str(ROOT))
    run_dir = tmp_path_factory.mktemp("multidevice")
    done = subprocess.run(
        [sys.executable, str(CHECKS), "all", str(run_dir)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["devices"] == 4
    return {**out, "run_dir": run_dir}


@pytest.mark.slow
def test_one_update_on_four_devices_equals_the_update_on_one(checks):
    """The same global batch of 8 sequences: one device learns from all of it, four devices
    from 2 each with averaged gradients. Parameters after the Adam step agree to float
    rounding, far below how far the step moved them."""
    out = checks["update"]
    assert out["moved"] > 1e-4  # the step did something (Adam: ~learning rate per weight)
    assert out["params"] < 1e-6
    assert out["opt_state"] < 1e-6
    assert out["loss"] < 1e-5 * abs(out["loss_value"])
    assert out["grad_norm"] < 1e-5


@pytest.mark.slow
def test_training_on_four_devices_then_resumed_on_two(checks):
    """A short run over every device (4): global env steps per iteration (8 envs x 13 steps),
    each line naming the layout; resumed from its checkpoint on 2 devices, the metrics file
    keeps the 4-device lines and goes on."""
    out = checks["train"]
    first, resumed = out["first"], out["resumed"]
    assert out["devices"] == 4
    steps = [line["env_steps"] for line in first if "episode_return" in line]
    assert steps == [208, 416, 624, 832]  # log_every 208 = 2 iterations of 104 global steps
    assert all(line["num_devices"] == 4 and line["num_processes"] == 1 for line in first)
    assert any(line.get("updates", 0) > 0 for line in first)  # it learnt, not only collected
    assert [line["env_steps"] for line in first if "eval_return" in line] == [416, 832]
    assert resumed[: len(first)] == first
    later = resumed[len(first) :]
    assert [line["env_steps"] for line in later if "episode_return" in line] == [1040, 1248]
    assert all(line["num_devices"] == 2 for line in later)
    assert (checks["run_dir"] / "train" / "checkpoints" / "1248").is_dir()
    # The sharded training step compiled once per run, on train()'s thread from the state's
    # shapes and shardings (tests/agent/compile_log.py): the real state matched them.
    assert out["compiled"] == [{"rmuzero-compile": 1}, {"rmuzero-compile": 1}]


@pytest.mark.slow
def test_vmapped_seeds_on_two_devices_reproduce_a_seed_alone(checks):
    """num_seeds=2 on 2 devices (what scripts/suite.py runs on a 2-core CPU): seed 5's
    training lines equal those of seed 5 trained alone on 2 devices (timings aside, floats to
    1e-5), through its first update (at 520 env steps, the first iteration whose replay can be
    sampled). Only up to there: vmapped and plain matmuls round differently, and once the
    parameters differ in the last bit a near-tie in a later search may pick another action."""
    out = checks["seeds"]
    timing = {"wall_time", "env_steps_per_second", "updates_per_second"}
    together, alone = (
        [{k: v for k, v in line.items() if k not in timing} for line in out[name] if "episode_return" in line]
        for name in ("together", "alone")
    )
    assert [line["env_steps"] for line in together] == [104, 208, 312, 416, 520]
    assert all(line["num_devices"] == 2 for line in together)
    assert together[3]["episodes"] > 0 and together[4]["updates"] > 0  # episodes ended; it learnt
    assert out["compiled"] == {"rmuzero-compile": 1}  # the vmapped step, from the seeds' stacked shapes
    assert out["compiled_alone"] == {}  # train()'s memo: the resumed run above compiled this layout
    assert [sorted(line) for line in together] == [sorted(line) for line in alone]
    for a, b in zip(together, alone):
        for key in a:
            expected = pytest.approx(b[key], rel=1e-5, abs=1e-6) if isinstance(b[key], float) else b[key]
            assert a[key] == expected, (a["env_steps"], key)


@pytest.mark.slow
def test_gru_seeds_start_on_two_devices(checks):
    """num_seeds=2 with a GRU on 2 CPU devices (`train.py network=gru num_seeds=3` on a 2-core
    CPU) used to hang in its first call, the vmapped initialisation under shard_map (see
    rmuzero.agent.parallel._init_per_seed). The sharded initial state now arrives, and each
    seed's parameters are the ones that seed gets on one device."""
    out = checks["gru_seeds"]
    assert out["mesh"] == 2
    assert out["env_steps"] == [0, 0]
    assert out["between_seeds"] > 1e-3  # two seeds, two initialisations
    assert max(out["differences"]) < 1e-6


@pytest.mark.slow
def test_two_processes_train_one_run(tmp_path):
    """Two processes (one CPU device each) on localhost form one run: one metrics file,
    written by process 0, lines naming 2 devices and 2 processes, one checkpoint per period;
    both processes end with the same evaluation."""
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = str(s.getsockname()[1])
    env = subprocess_env(XLA_FLAGS="", PYTHONPATH=str(ROOT))  # one CPU device per process
    run = str(tmp_path / "run")
    procs = [
        subprocess.Popen(
            [sys.executable, str(CHECKS), "process", run, port, str(i)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in (0, 1)
    ]
    outs = []
    try:
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=600)
            assert proc.returncode == 0, stderr[-3000:]
            outs.append(json.loads(stdout.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            proc.kill()
    assert [(o["devices"], o["processes"]) for o in outs] == [(2, 2), (2, 2)]
    assert outs[0]["summary"] == {**outs[1]["summary"], "wall_time": outs[0]["summary"]["wall_time"]}
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [line["env_steps"] for line in lines if "episode_return" in line] == [208, 416, 624]
    assert all(line["num_devices"] == 2 and line["num_processes"] == 2 for line in lines)
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["312", "624"]


def test_sizes_that_do_not_divide_over_the_devices_name_both_numbers():
    config = config_from_dict({"system": {"num_envs": 10, "batch_size": 8}})
    with pytest.raises(
        ConfigError, match=r"^system.num_envs=10 does not divide over 4 devices; valid: a multiple of 4"
    ):
        make_agent(config, num_devices=4, data_axis="data")


@pytest.mark.parametrize(
    "distributed, message",
    [
        ({"num_processes": 2}, r"^distributed: coordinator_address, num_processes and process_id are set together"),
        (
            {"coordinator_address": "localhost", "num_processes": 2, "process_id": 0},
            r"^distributed: coordinator_address='localhost'; valid: host:port$",
        ),
        (
            {"coordinator_address": "h:1", "num_processes": 2, "process_id": 2},
            r"^distributed: process_id=2; valid: 0 \.\. 1 \(num_processes=2\)$",
        ),
    ],
)
def test_bad_distributed_settings_name_themselves(distributed, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"distributed": distributed})


def test_more_devices_than_visible_is_refused():
    from rmuzero.agent.parallel import make_mesh

    with pytest.raises(ConfigError, match=r"num_devices=64; valid: 1 \.\. 1"):
        make_mesh(64)


@pytest.mark.parametrize(
    "num_envs, batch_size, available, processes, expected",
    [
        (16, 32, 1, 1, 1),
        (16, 32, 2, 1, 2),
        (16, 32, 3, 1, 2),  # 3 divides neither 16 nor 32
        (16, 32, 8, 1, 8),
        (12, 32, 8, 1, 4),  # 8 and 6 do not divide both; 4 does
        (3, 32, 2, 1, 1),  # an odd number of environments stays on one device
        (16, 32, 8, 2, 8),  # several processes: every device, as the mesh requires
    ],
)
def test_num_devices_null_takes_the_most_devices_the_sizes_divide_over(
    num_envs, batch_size, available, processes, expected
):
    from rmuzero.agent.parallel import default_num_devices

    assert default_num_devices(num_envs, batch_size, available, processes) == expected


SPLIT = """
import json, sys
import jax
from rmuzero.distributed import available_cores, split_cpu
requested = int(sys.argv[1])
got = split_cpu(requested)
devices = jax.device_count()
try:
    split_cpu(requested + 1)  # after JAX started: refused unless it changes nothing
    again = "accepted"
except RuntimeError as error:
    again = str(error)
print(json.dumps(dict(got=got, devices=devices, cores=available_cores(), again=again)))
"""


@pytest.mark.parametrize("requested, xla_flags", [(1, None), (2, None), (64, None), (2, 3)])
@pytest.mark.slow
def test_split_cpu_makes_that_many_devices_capped_at_the_cores(requested, xla_flags):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
    if xla_flags:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={xla_flags}"
    done = subprocess.run(
        [sys.executable, "-c", SPLIT, str(requested)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    expected = xla_flags or min(requested, out["cores"])
    assert out["got"] == out["devices"] == expected
    if xla_flags or min(requested + 1, out["cores"]) == expected:
        assert out["again"] == "accepted"
    else:
        assert out["again"].startswith(f"cpu_devices={min(requested + 1, out['cores'])} but JAX has already started")


def test_split_cpu_refuses_a_count_below_one():
    from rmuzero.distributed import split_cpu

    with pytest.raises(ValueError, match=r"^cpu_devices=0; valid: an integer >= 1$"):
        split_cpu(0)
