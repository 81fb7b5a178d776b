"""A tiny training run end to end: metrics.jsonl, checkpoints, evaluation in a fresh process,
refusal to train into a run directory that already holds checkpoints (docs/design.md section 6).

Setup: RepeatPrevious Easy (every episode is 51 steps, returns in [-1, 1]), 4 environments,
8 steps per iteration, 256 environment steps (64 per environment, so each environment ends
exactly one episode, at its 51st step), logs, evaluations and checkpoints every 128 steps,
3 evaluation episodes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rmuzero.agent.config import config_from_dict
from rmuzero.agent.train import train
from rmuzero.checkpoint import CheckpointError

pytestmark = pytest.mark.slow  # trains, and evaluates in fresh processes

REPO = Path(__file__).resolve().parents[2]
TOTAL = 256
EVERY = 128
EVAL_EPISODES = 3
EPISODE = 51
SEED = 0
# train() evaluates with PRNGKey(seed + 1_000_003) (rmuzero/agent/train.py); evaluate.py with
# PRNGKey(seed=): the same seed must give the same episodes from the restored weights.
TRAIN_EVAL_SEED = SEED + 1_000_003

CONFIG = {
    "env": {"name": "popgym/repeat_previous", "difficulty": "easy"},
    "network": {
        "memory": "ffm",
        "features": 16,
        "latent_size": 16,
        "head_sizes": [32],
        "value_bins": 11,
        "reward_bins": 11,
        "separate_reward_trunk": False,
    },  # the network of runs saved before the option existed
    "search": {"policy": "gumbel_muzero", "num_simulations": 4, "max_num_considered_actions": 4},
    "system": {
        "num_envs": 4,
        "rollout_length": 8,
        "batch_size": 4,
        "sequence_length": 8,
        "roots_per_sequence": 6,
        "burn_in": 2,
        "num_unroll_steps": 2,
        "td_steps": 2,
        "replay_length_per_env": 64,
        "updates_per_iteration": 1,
        "reanalyse_fraction": 0.0,
    },  # no reanalysis: a smaller compile
    "seed": SEED,
    "total_env_steps": TOTAL,
    "log_every": EVERY,
    "eval_every": EVERY,
    "checkpoint_every": EVERY,
    "eval_episodes": EVAL_EPISODES,
}


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    env["JAX_PLATFORMS"] = "cpu"
    return env


def _snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under root: (size, mtime_ns, bytes)."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            stat = path.stat()
            out[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns, path.read_bytes())
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    config = config_from_dict(CONFIG)
    summary = train(config, run_dir, progress=False)
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return config, run_dir, summary, lines


def test_metrics_lines(trained):
    _, _, summary, lines = trained
    training = [line for line in lines if "episode_return" in line]
    evaluations = [line for line in lines if "eval_return" in line]
    assert len(training) + len(evaluations) == len(lines)
    assert [line["env_steps"] for line in training] == [EVERY, 2 * EVERY]
    # 32 steps per environment by step 128: no episode has ended yet.
    assert training[0]["episode_return"] is None and training[0]["episodes"] == 0
    # By step 256 every environment has ended exactly one 51-step episode.
    last = training[-1]
    assert last["episodes"] == 4 and last["episode_length"] == EPISODE
    assert isinstance(last["episode_return"], float) and -1.0 <= last["episode_return"] <= 1.0
    assert all(isinstance(line["loss"], float) for line in training)
    for line in evaluations:
        assert line["env_steps"] in (EVERY, 2 * EVERY)
        assert line["eval_episodes"] == EVAL_EPISODES and line["eval_length"] == EPISODE
        assert -1.0 <= line["eval_return"] <= 1.0
    assert {line["env_steps"] for line in evaluations} == {EVERY, 2 * EVERY}
    assert summary["env_steps"] == TOTAL and summary["eval_return"] == evaluations[-1]["eval_return"]


def test_each_evaluation_logged_once(trained):
    """One evaluation line per evaluation step (the final one included)."""
    _, _, _, lines = trained
    steps = [line["env_steps"] for line in lines if "eval_return" in line]
    assert steps == [EVERY, 2 * EVERY], f"evaluation lines at env_steps {steps}"


def test_checkpoint_directories(trained):
    config, run_dir, _, _ = trained
    steps = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert steps == [str(EVERY), str(2 * EVERY)]
    for step in steps:
        step_dir = run_dir / "checkpoints" / step
        assert (step_dir / "config.json").is_file() and (step_dir / "state").is_dir()
        assert config_from_dict(json.loads((step_dir / "config.json").read_text())) == config


@pytest.fixture(scope="module")
def evaluated(trained, tmp_path_factory):
    """evaluate.py twice in new processes, alike, from the newest checkpoint with the seed train()
    used for its last evaluation, both with a compilation cache of their own (empty before the
    first): [(its JSON line, the cache's entries after it)] per process."""
    _, run_dir, _, _ = trained
    cache = tmp_path_factory.mktemp("cache")
    env = {**_env(), "RMUZERO_COMPILATION_CACHE": str(cache)}
    command = [
        sys.executable,
        "scripts/evaluate.py",
        f"checkpoint={run_dir}",
        f"episodes={EVAL_EPISODES}",
        f"seed={TRAIN_EVAL_SEED}",
    ]
    runs = []
    for _ in range(2):
        result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        entries = sorted((p.name, p.stat().st_mtime_ns) for p in cache.iterdir())
        runs.append((result.stdout.strip().splitlines()[-1], entries))
    return runs


def test_fresh_process_evaluation_reproduces_the_training_evaluation(trained, evaluated):
    """evaluate.py in a new process, from the newest checkpoint, with the seed train() used for
    its last evaluation, plays the same episodes: same mean and std of the 3 returns."""
    _, run_dir, _, lines = trained
    final = [line for line in lines if "eval_return" in line and line["env_steps"] == TOTAL][0]
    out = json.loads(evaluated[0][0])
    assert out["episodes"] == EVAL_EPISODES
    assert Path(out["checkpoint"]) == run_dir / "checkpoints" / str(TOTAL)
    assert out["mean_length"] == EPISODE
    assert out["mean_return"] == final["eval_return"]
    assert out["std_return"] == final["eval_return_std"]
    assert out["temperature"] == 0.0  # the run's own evaluation policy: greedy


def test_load_trained_takes_another_evaluation_temperature(trained):
    from rmuzero.agent.train import load_trained

    _, run_dir, _, _ = trained
    saved, _, _ = load_trained(run_dir)
    sampled, _, _ = load_trained(run_dir, eval_temperature=0.5)
    assert (saved.config.eval_temperature, sampled.config.eval_temperature) == (0.0, 0.5)
    assert dataclasses.replace(sampled.config, eval_temperature=0.0) == saved.config


def test_a_second_evaluation_loads_its_programs_from_the_compilation_cache(evaluated):
    """With RMUZERO_COMPILATION_CACHE set, the first evaluate.py writes compiled programs there;
    a second, identical run reads them all (no entry written or rewritten) and prints the same
    result."""
    (first, first_entries), (second, second_entries) = evaluated
    assert first_entries, "the first run cached nothing"
    assert second_entries == first_entries, "the second run compiled (and wrote) programs the first had cached"
    assert second == first


def test_a_checkpoint_saved_before_separate_reward_trunk_existed_loads_as_it_was_trained(trained, tmp_path):
    """Its config.json has no network.separate_reward_trunk: it loads with one shared trunk (the
    network it was trained with), not today's default, and restores the same weights."""
    import jax
    import numpy as np

    from rmuzero.agent.train import load_trained
    from rmuzero.checkpoint import load_config

    _, run_dir, _, _ = trained
    old = tmp_path / str(TOTAL)
    shutil.copytree(run_dir / "checkpoints" / str(TOTAL), old)
    saved = json.loads((old / "config.json").read_text())
    del saved["network"]["separate_reward_trunk"]
    (old / "config.json").write_text(json.dumps(saved))
    assert config_from_dict(load_config(old)).network.separate_reward_trunk  # today's default

    agent, params, _ = load_trained(old)
    assert agent.config.network.separate_reward_trunk is False
    _, expected, _ = load_trained(run_dir)
    assert "reward_trunk" not in params["params"]
    jax.tree.map(np.testing.assert_array_equal, params, expected)


def test_training_into_a_run_with_checkpoints_refuses(trained):
    config, run_dir, _, _ = trained
    before = _snapshot(run_dir)
    with pytest.raises(CheckpointError, match="already holds checkpoints"):
        train(config, run_dir, progress=False)
    assert _snapshot(run_dir) == before


def test_cli_training_into_a_run_with_checkpoints_overwrites_nothing(trained, tmp_path):
    """scripts/train.py hydra.run.dir=<a run directory as the CLI leaves it> exits with a
    one-line error and leaves every file there as it was, the run's .hydra record included."""
    _, run_dir, _, _ = trained
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / ".hydra").mkdir()
    (copy / ".hydra" / "config.yaml").write_text("# the original run's composed config\nseed: 0\n")
    (copy / ".hydra" / "overrides.yaml").write_text("- seed=0\n")
    before = _snapshot(copy)
    result = subprocess.run(
        [sys.executable, "scripts/train.py", f"hydra.run.dir={copy}", "progress=false", "seed=7"],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "already holds checkpoints" in result.stderr
    after = _snapshot(copy)
    changed = sorted(name for name, entry in before.items() if after.get(name) != entry)
    assert not changed, f"files changed by a refused run: {changed}"
