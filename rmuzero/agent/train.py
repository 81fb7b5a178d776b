"""The training run: Python only for the outer loop, logging, evaluation, checkpoints.

``train(config, run_dir)`` jits the agent's iteration once and calls it until
``config.total_env_steps``; it writes ``run_dir/metrics.jsonl`` (one JSON object
per log line: training lines carry ``env_steps`` and ``episode_return``,
evaluation lines ``eval_return``) and ``run_dir/checkpoints/<env_steps>/``.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rmuzero.agent.agent import Agent, TrainState, make_agent
from rmuzero.agent.config import AgentConfig, config_to_dict
from rmuzero.checkpoint import CheckpointError, latest_checkpoint, load_config, restore_checkpoint, save_checkpoint
from rmuzero.metrics import MetricsLogger


LOSS_NAMES = ("loss", "value_loss", "reward_loss", "policy_loss", "grad_norm")  # IterationMetrics fields logged

class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss or parameter); the message says where."""


def _all_finite(tree) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


COMPILATION_CACHE_VARIABLE = "RMUZERO_COMPILATION_CACHE"
DEFAULT_COMPILATION_CACHE = "~/.cache/rmuzero/jax"


def compilation_cache_dir(value: str | None = None) -> Path | None:
    """Where the scripts keep JAX's persistent compilation cache: ``value`` if given, else
    ``$RMUZERO_COMPILATION_CACHE``, else ``~/.cache/rmuzero/jax``; None for "" / "off" / "none"."""
    if value is None:
        value = os.environ.get(COMPILATION_CACHE_VARIABLE, DEFAULT_COMPILATION_CACHE)
    if str(value).strip().lower() in ("", "off", "none", "null", "false"):
        return None
    return Path(os.path.expanduser(str(value)))


def enable_compilation_cache(directory: Path | None) -> None:
    """Turns on JAX's persistent compilation cache in ``directory`` (no-op for None): a second
    run with the same shapes loads its programs instead of compiling them."""
    if directory is None:
        return
    directory.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def checkpoint_payload(state: TrainState) -> dict[str, Any]:
    """What a checkpoint holds: the weights and the learner's counters."""
    return {
        "params": state.params,
        "target_params": state.target_params,
        "opt_state": state.opt_state,
        "env_steps": state.env_steps,
        "updates": state.updates,
    }


def evaluation_summary(returns: np.ndarray, lengths: np.ndarray) -> dict[str, float]:
    returns = np.asarray(returns, np.float64)
    return {
        "eval_return": float(returns.mean()),
        "eval_return_std": float(returns.std()),
        "eval_length": float(np.asarray(lengths).mean()),
        "eval_episodes": int(returns.size),
    }


def train(config: AgentConfig, run_dir: str | Path, *, progress: bool = True, agent: Agent | None = None) -> dict:
    """Trains from scratch; returns the last evaluation summary (plus ``env_steps``)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoints = run_dir / "checkpoints"
    if checkpoints.exists() and any(checkpoints.iterdir()):
        raise CheckpointError(
            f"{checkpoints} already holds checkpoints; choose another hydra.run.dir= (nothing was overwritten)"
        )
    agent = agent or make_agent(config)
    # Every leaf its own buffer (init shares params with target_params): the state is donated.
    state = jax.tree.map(jnp.copy, agent.init(jax.random.PRNGKey(config.seed)))
    # One call: config.iterations_per_call iterations, the training state donated (updated in place).
    train_iterations = jax.jit(agent.train_iterations, donate_argnums=0)
    evaluate = jax.jit(agent.evaluate)
    all_finite = jax.jit(_all_finite)
    eval_key = jax.random.PRNGKey(config.seed + 1_000_003)
    steps_per_call = config.env_steps_per_iteration * config.iterations_per_call

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=config.total_env_steps, unit="step", dynamic_ncols=True)

    def run_eval(state, logger) -> dict:
        returns, lengths = evaluate(state.params, eval_key)
        summary = {
            "env_steps": int(state.env_steps),
            **evaluation_summary(np.asarray(returns), np.asarray(lengths)),
            "wall_time": time.perf_counter() - begin,
        }
        logger.log(summary)
        return summary

    begin = time.perf_counter()
    window = {"return": 0.0, "length": 0.0, "episodes": 0.0, "losses": [], "start": begin, "steps": 0, "updates": 0}
    next_log, next_eval, next_checkpoint = config.log_every, config.eval_every, config.checkpoint_every
    summary: dict = {}
    with MetricsLogger(run_dir / "metrics.jsonl") as logger:
        while int(state.env_steps) < config.total_env_steps:
            state, metrics = train_iterations(state)
            metrics = jax.tree.map(np.asarray, metrics)  # [k] per field, one transfer per call
            env_steps = int(state.env_steps)
            window["return"] += float(metrics.episode_return_sum.sum())
            window["length"] += float(metrics.episode_length_sum.sum())
            window["episodes"] += float(metrics.episodes.sum())
            window["steps"] += steps_per_call
            window["updates"] += int(metrics.updates.sum())
            learnt = metrics.updates > 0
            losses = np.stack([getattr(metrics, name)[learnt] for name in LOSS_NAMES], axis=1)
            broken = [name for name, ok in zip(LOSS_NAMES, np.isfinite(losses).all(axis=0)) if not ok]
            if not broken and not bool(all_finite(state.params)):
                broken = ["parameters"]
            if broken:
                kept = latest_checkpoint_or_none(checkpoints)
                raise TrainingError(
                    f"non-finite {broken[0]} by env_steps={env_steps} (update {int(state.updates)}); "
                    f"stopped, nothing saved; last good checkpoint: {kept or 'none yet'}")
            window["losses"].extend(losses.tolist())
            if bar is not None:
                bar.update(steps_per_call)

            if env_steps >= next_log:
                elapsed = max(time.perf_counter() - window["start"], 1e-9)
                episodes = window["episodes"]
                line = {
                    "env_steps": env_steps,
                    "updates": int(state.updates),
                    "episode_return": window["return"] / episodes if episodes else None,
                    "episode_length": window["length"] / episodes if episodes else None,
                    "episodes": int(episodes),
                    "env_steps_per_second": window["steps"] / elapsed,
                    "updates_per_second": window["updates"] / elapsed,
                    "wall_time": time.perf_counter() - begin,
                }
                if window["losses"]:
                    line.update(dict(zip(LOSS_NAMES, np.mean(window["losses"], axis=0).tolist())))
                logger.log(line)
                if bar is not None and line["episode_return"] is not None:
                    bar.set_postfix(ret=f"{line['episode_return']:.3f}", refresh=False)
                window = {"return": 0.0, "length": 0.0, "episodes": 0.0, "losses": [],
                          "start": time.perf_counter(), "steps": 0, "updates": 0}
                next_log += config.log_every * max(1, math.ceil((env_steps - next_log + 1) / config.log_every))
            if env_steps >= next_eval:
                summary = run_eval(state, logger)
                if bar is not None:
                    bar.write(f"env_steps={env_steps} eval_return={summary['eval_return']:.3f}")
                next_eval += config.eval_every * max(1, math.ceil((env_steps - next_eval + 1) / config.eval_every))
            if env_steps >= next_checkpoint:
                save_checkpoint(checkpoints, env_steps, checkpoint_payload(state), config_to_dict(config))
                next_checkpoint += config.checkpoint_every * max(
                    1, math.ceil((env_steps - next_checkpoint + 1) / config.checkpoint_every)
                )
        if not summary or summary.get("env_steps") != int(state.env_steps):
            summary = run_eval(state, logger)
        final_dir = checkpoints / str(int(state.env_steps))
        if not final_dir.exists():
            save_checkpoint(checkpoints, int(state.env_steps), checkpoint_payload(state), config_to_dict(config))
    if bar is not None:
        bar.close()
    return summary


def latest_checkpoint_or_none(checkpoints: Path) -> Path | None:
    try:
        return latest_checkpoint(checkpoints)
    except (CheckpointError, FileNotFoundError):
        return None


def load_trained(path: str | Path, *, eval_envs: int | None = None):
    """Restores ``(agent, params, step_dir)`` from a run or checkpoint directory.

    The agent is rebuilt from the config saved with the weights.
    """
    from rmuzero.agent.config import config_from_dict

    step_dir = latest_checkpoint(path)
    config = config_from_dict(load_config(step_dir))
    agent = make_agent(config, eval_envs=eval_envs)
    target = checkpoint_payload(jax.eval_shape(agent.init, jax.random.PRNGKey(0)))
    target = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), target)
    restored = restore_checkpoint(step_dir, target)
    return agent, restored["params"], step_dir
