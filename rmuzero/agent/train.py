"""The training run: Python only for the outer loop, logging, evaluation, checkpoints.

``train(config, run_dir)`` jits the agent's iteration once and calls it until
``config.total_env_steps``; it writes ``run_dir/metrics.jsonl`` (one JSON object
per log line: training lines carry ``env_steps`` and ``episode_return``,
evaluation lines ``eval_return``) and ``run_dir/checkpoints/<env_steps>/``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rmuzero.agent.agent import Agent, TrainState, make_agent
from rmuzero.agent.config import AgentConfig, config_to_dict
from rmuzero.agent.parallel import (DATA_AXIS, abstract_state, default_num_devices, initialize_distributed, make_mesh,
                                    shard_functions, to_host)
from rmuzero.checkpoint import CheckpointError, latest_checkpoint, load_config, restore_checkpoint, save_checkpoint
from rmuzero.compilation_cache import (COMPILATION_CACHE_VARIABLE, DEFAULT_COMPILATION_CACHE,  # noqa: F401 (the scripts import them from here)
                                       compilation_cache_dir, enable_compilation_cache)
from rmuzero.metrics import MetricsLogger
from rmuzero.networks.transforms import h_inv


LOSS_NAMES = ("loss", "value_loss", "reward_loss", "policy_loss", "consistency_loss", "grad_norm",
              "targets_outside_support")  # IterationMetrics fields logged (means over the updates)

class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss or parameter); the message says where."""


def _all_finite(tree) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


SCRIPT_OPTIONS = ("progress", "compilation_cache", "resume", "cpu_devices")  # configs/config.yaml keys for scripts/train.py, not the agent

def checkpoint_payload(state: TrainState) -> dict[str, Any]:
    """What a checkpoint holds: the whole training state (weights, target weights, optimizer,
    actor with its environments and memory carries, replay, PRNG key, counters), so that a
    resumed run continues exactly where the checkpoint was taken."""
    return state._asdict()


RESUMABLE_CHANGES = ("total_env_steps", "early_stop_return", "early_stop_env_steps", "log_every", "eval_every", "checkpoint_every", "keep_checkpoints", "logger.tensorboard",
                     "num_devices", "distributed.coordinator_address", "distributed.num_processes",
                     "distributed.process_id")  # may differ on resume (the state is global, the layout is not)


def _config_differences(saved: Any, wanted: Any, prefix: str = "") -> list[str]:
    if isinstance(saved, dict) and isinstance(wanted, dict):
        out = []
        for key in sorted(set(saved) | set(wanted)):
            out += _config_differences(saved.get(key), wanted.get(key), f"{prefix}{key}.")
        return out
    return [] if saved == wanted else [prefix.rstrip(".")]


def _kept_metrics(path: Path, step: int) -> list[str]:
    """The lines of a killed run's metrics file up to its checkpoint at ``step`` (a partial or
    later line is dropped: it was written after the checkpoint the run resumes from)."""
    kept = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and record.get("env_steps", step + 1) <= step:
                kept.append(line)
    return kept


def evaluation_summary(returns: np.ndarray, lengths: np.ndarray, finished: np.ndarray) -> dict[str, Any]:
    """Mean / std over the finished episodes; ``eval_unfinished`` counts those cut by the step limit."""
    finished = np.asarray(finished, bool)
    returns = np.asarray(returns, np.float64)[finished]
    lengths = np.asarray(lengths, np.float64)[finished]
    return {
        "eval_return": float(returns.mean()) if returns.size else None,
        "eval_return_std": float(returns.std()) if returns.size else None,
        "eval_length": float(lengths.mean()) if lengths.size else None,
        "eval_episodes": int(returns.size),
        "eval_unfinished": int((~finished).sum()),
    }


EARLY_STOP_TOLERANCE = 1e-4  # an evaluation within this of early_stop_return counts as reaching it (float32 sums)


def held_for(evaluations: list[tuple[int, float | None]], threshold: float) -> int:
    """Env steps over which the latest evaluations have all been >= ``threshold`` (within
    ``EARLY_STOP_TOLERANCE``): the newest evaluation's step minus that of the first one of
    the unbroken run that ends with it; -1 when the newest is below (or has no finished episode).

    ``evaluations``: ``(env_steps, eval_return)`` in the order they were taken."""
    start = None
    for steps, value in reversed(evaluations):
        if value is None or value < threshold - EARLY_STOP_TOLERANCE:
            break
        start = steps
    return -1 if start is None else evaluations[-1][0] - start


class _NoLogger:
    """What a process other than process 0 writes: nothing."""

    def log(self, record) -> None:
        pass

    def close(self) -> None:
        pass


class _RunLog:
    """One seed's metrics.jsonl and the training window being summed into its next line."""

    def __init__(self, run_dir: Path, begin: float, support_bound: float, layout: dict[str, int],
                 write: bool = True, tensorboard: bool = False):
        self.run_dir = run_dir
        self.support_bound = support_bound
        self.layout = layout  # num_devices, num_processes: carried by every line
        self.warned = False
        self.checkpoints = run_dir / "checkpoints"
        self.logger = MetricsLogger(run_dir / "metrics.jsonl") if write else _NoLogger()
        self.tensorboard = None
        if write and tensorboard:
            from tensorboardX import SummaryWriter

            self.tensorboard = SummaryWriter(str(run_dir))
        self.begin = begin
        self.summary: dict = {}
        self.evaluations: list[tuple[int, float | None]] = []  # (env_steps, eval_return), for early stopping
        self.reset()

    def reset(self) -> None:
        self.window = {"return": 0.0, "length": 0.0, "episodes": 0.0, "losses": [],
                       "start": time.perf_counter(), "steps": 0, "updates": 0}

    def add(self, metrics, steps: int) -> None:
        """Sums one call's metrics (fields [k]) into the window; stops on a non-finite loss."""
        window = self.window
        window["return"] += float(metrics.episode_return_sum.sum())
        window["length"] += float(metrics.episode_length_sum.sum())
        window["episodes"] += float(metrics.episodes.sum())
        window["steps"] += steps
        window["updates"] += int(metrics.updates.sum())
        learnt = metrics.updates > 0
        losses = np.stack([getattr(metrics, name)[learnt] for name in LOSS_NAMES], axis=1)
        window["losses"].extend(losses.tolist())
        outside = metrics.targets_outside_support[learnt]
        if not self.warned and outside.size and float(outside.max()) > 0:
            self.warned = True
            print(f"warning: {100 * float(outside.max()):.2g}% of the value / reward targets of an update lie "
                  f"outside the supports (|x| <= {float(h_inv(self.support_bound)):.3g}, "
                  f"network.support_bound={self.support_bound} after h) and are clipped; set "
                  "network.support_bound higher for this task's returns", file=sys.stderr)

    def check_finite(self, metrics, params_finite: bool, env_steps: int, updates: int) -> None:
        learnt = metrics.updates > 0
        broken = [name for name in LOSS_NAMES if not np.all(np.isfinite(getattr(metrics, name)[learnt]))]
        if not broken and not params_finite:
            broken = ["parameters"]
        if broken:
            kept = latest_checkpoint_or_none(self.checkpoints)
            raise TrainingError(
                f"non-finite {broken[0]} by env_steps={env_steps} (update {updates}); "
                f"stopped, nothing saved; last good checkpoint: {kept or 'none yet'}")

    def log_training(self, env_steps: int, updates: int) -> dict:
        window = self.window
        elapsed = max(time.perf_counter() - window["start"], 1e-9)
        episodes = window["episodes"]
        line = {
            "env_steps": env_steps,
            "updates": updates,
            "episode_return": window["return"] / episodes if episodes else None,
            "episode_length": window["length"] / episodes if episodes else None,
            "episodes": int(episodes),
            "env_steps_per_second": window["steps"] / elapsed,
            "updates_per_second": window["updates"] / elapsed,
            "wall_time": time.perf_counter() - self.begin,
            **self.layout,
        }
        if window["losses"]:
            line.update(dict(zip(LOSS_NAMES, np.mean(window["losses"], axis=0).tolist())))
        self.logger.log(line)
        self._scalars("train", line)
        self.reset()
        return line

    def log_evaluation(self, env_steps: int, evaluation) -> dict:
        self.summary = {
            "env_steps": env_steps,
            **evaluation_summary(*evaluation),
            "wall_time": time.perf_counter() - self.begin,
            **self.layout,
        }
        self.evaluations.append((env_steps, self.summary["eval_return"]))
        self.logger.log(self.summary)
        self._scalars("eval", self.summary)
        return self.summary

    def _scalars(self, group: str, line: dict) -> None:
        """The line's numbers as TensorBoard scalars ``<group>/<key>`` at step env_steps."""
        if self.tensorboard is None:
            return
        for key, value in line.items():
            if key != "env_steps" and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.tensorboard.add_scalar(f"{group}/{key}", value, global_step=line["env_steps"])
        self.tensorboard.flush()

    def close(self) -> None:
        self.logger.close()
        if self.tensorboard is not None:
            self.tensorboard.close()


def _refuse_existing_checkpoints(checkpoints: Path) -> None:
    if checkpoints.exists() and any(checkpoints.iterdir()):
        raise CheckpointError(
            f"{checkpoints} already holds checkpoints; choose another hydra.run.dir=, or add resume=true to "
            "continue that run (nothing was overwritten)"
        )


def seed_dirs(config: AgentConfig, run_dir: str | Path) -> list[Path]:
    """Where each seed's metrics.jsonl and checkpoints/ go: the run directory itself for one
    seed, ``seed_<s>/`` inside it for ``num_seeds > 1``."""
    run_dir = Path(run_dir)
    if config.num_seeds == 1:
        return [run_dir]
    return [run_dir / f"seed_{config.seed + i}" for i in range(config.num_seeds)]


def train(config: AgentConfig, run_dir: str | Path, *, progress: bool = True, agent: Agent | None = None,
          resume: bool = False) -> dict:
    """Trains from scratch, or with ``resume`` continues the run in ``run_dir`` from its latest
    complete checkpoint; returns the last evaluation summary (plus ``env_steps``).

    A resumed run is the same run: the checkpoint holds the whole training state, so it ends
    with the metrics the run would have had uninterrupted (when checkpoints fall on log
    steps); metrics.jsonl keeps the lines up to the checkpoint and drops those the killed run
    wrote after it. Only ``RESUMABLE_CHANGES`` may differ from the saved config.

    With ``config.num_seeds = N > 1`` the seeds ``seed .. seed + N - 1`` train together, the
    whole training step vmapped over them (one program, one process), each writing its own
    ``seed_<s>/metrics.jsonl`` and ``seed_<s>/checkpoints/``; the summary then holds one
    summary per seed under ``"seeds"``.
    """
    begin = time.perf_counter()  # wall_time counts from here: building, initialising, compiling included
    initialize_distributed(config.distributed)
    run_dir = Path(run_dir)
    dirs = seed_dirs(config, run_dir)
    writer = jax.process_index() == 0  # process 0 alone writes metrics and checkpoints
    if resume:
        resumed_from = [_resumable_checkpoint(directory, config) for directory in dirs]
    else:
        for directory in dirs:
            _refuse_existing_checkpoints(directory / "checkpoints")
    if writer:
        for directory in dirs:
            directory.mkdir(parents=True, exist_ok=True)
    many = config.num_seeds > 1
    seeds = [config.seed + i for i in range(config.num_seeds)]
    batched = jax.vmap if many else (lambda f: f)
    keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds]) if many else jax.random.PRNGKey(config.seed)
    num_devices = config.num_devices or default_num_devices(
        config.system.num_envs, config.system.batch_size, jax.device_count(), jax.process_count())
    if num_devices == 1 and jax.process_count() == 1:
        agent = agent or make_agent(config)
        # Every leaf its own buffer (init shares params with target_params): the state is donated.
        init = lambda keys: jax.tree.map(jnp.copy, batched(agent.init)(keys))  # noqa: E731
        shardings = None  # one device: the state's arrays are uncommitted
        # One call: config.iterations_per_call iterations, the training state donated (updated in place).
        train_iterations = jax.jit(batched(agent.train_iterations), donate_argnums=0)
    else:  # data parallel over the mesh (rmuzero.agent.parallel)
        mesh = make_mesh(num_devices)
        num_devices = mesh.size
        if agent is not None:
            raise ValueError("train(agent=...) is for one device; leave it out to train on several")
        agent = make_agent(config, num_devices=num_devices, data_axis=DATA_AXIS)
        sharded = shard_functions(agent, mesh, num_seeds=config.num_seeds)
        init, shardings, train_iterations = sharded.init, sharded.shardings, sharded.train_iterations
    # The training call's program compiles on a thread from the state's shapes while this one
    # makes the state (compiles and runs init, reads a checkpoint): XLA releases the GIL, so
    # the two compilations can share a host's cores (on 2 cores no gain was measurable:
    # benchmarks/2026-12-04-cpu-compile-ahead/). The first call waits for it (compiling_training).
    compiling_training = _compile_in_background(
        [(train_iterations, (abstract_state(jax.eval_shape(init, keys), shardings),))])
    state = init(keys)
    if resume and shardings is None:
        state = jax.tree.map(jnp.copy, _restore_state(agent, state, resumed_from, many))
    elif resume:
        state = sharded.place(_restore_state(agent, to_host(state), resumed_from, many, host=True))
    layout = {"num_devices": num_devices, "num_processes": jax.process_count()}
    evaluate = jax.jit(batched(agent.evaluate))
    all_finite = jax.jit(batched(_all_finite))
    eval_keys = [jax.random.PRNGKey(s + 1_000_003) for s in seeds]
    eval_key = jnp.stack(eval_keys) if many else eval_keys[0]
    steps_per_call = config.env_steps_per_iteration * config.iterations_per_call

    def per_seed(tree, i: int):
        return jax.tree.map(lambda x: x[i], tree) if many else tree

    bar = None
    if progress and writer:
        from tqdm import tqdm

        bar = tqdm(total=config.total_env_steps, unit="step", dynamic_ncols=True)

    env_steps = int(per_seed(to_host(state.env_steps), 0))
    if resume and writer:  # metrics.jsonl reads as one run: drop what the killed run wrote after its checkpoint
        last_evals, past_evals = [], []
        for directory in dirs:
            kept = _kept_metrics(directory / "metrics.jsonl", env_steps)
            tmp = directory / ".metrics.jsonl.resume"
            tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
            os.replace(tmp, directory / "metrics.jsonl")
            evals = [json.loads(line) for line in kept if "eval_return" in json.loads(line)]
            last_evals.append(evals[-1] if evals else {})
            past_evals.append([(e["env_steps"], e["eval_return"]) for e in evals])
    logs = [_RunLog(directory, begin, config.network.support_bound, layout, write=writer,
                    tensorboard=config.logger.tensorboard) for directory in dirs]
    if resume and writer:
        for log, last, past in zip(logs, last_evals, past_evals):
            log.summary, log.evaluations = last, past
        if bar is not None:
            bar.update(env_steps)

    # Evaluation's programs compile on a thread while the first training call compiles its
    # own (XLA releases the GIL; two compilations, two cores): the first evaluation finds them
    # in jit's cache instead of compiling then.
    compiling = _compile_in_background([(evaluate, (state.params, eval_key)), (all_finite, (state.params,))])

    def run_eval(state) -> None:
        compiling.join()
        evaluation = to_host(evaluate(state.params, eval_key))
        for i, log in enumerate(logs):
            log.log_evaluation(env_steps, per_seed(evaluation, i))

    saved = [env_steps if resume else None]  # the step of the last checkpoint (every process knows it)

    def save(state) -> None:
        host = to_host(state)  # every process takes part in gathering the sharded leaves
        saved[0] = env_steps
        if not writer:
            return
        for i, log in enumerate(logs):
            save_checkpoint(log.checkpoints, env_steps, checkpoint_payload(per_seed(host, i)),
                            config_to_dict(config), keep=config.keep_checkpoints)

    # The next multiple of each period after the steps already taken (0 for a fresh run).
    next_log, next_eval, next_checkpoint = (
        (env_steps // every + 1) * every for every in (config.log_every, config.eval_every, config.checkpoint_every))
    def stop_early() -> bool:  # every seed's evaluations have held early_stop_return long enough
        return config.early_stop_return is not None and all(
            held_for(log.evaluations, config.early_stop_return) >= config.early_stop_env_steps for log in logs)

    stopped_early = False
    compiling_training.join()
    try:
        while env_steps < config.total_env_steps and not (stopped_early := stop_early()):
            state, metrics = train_iterations(state)
            metrics = to_host(metrics)  # fields [k] ([N, k] for N seeds), one transfer
            finite = np.atleast_1d(to_host(all_finite(state.params)))
            env_steps = int(per_seed(to_host(state.env_steps), 0))
            updates = int(per_seed(to_host(state.updates), 0))
            for i, log in enumerate(logs):
                log.check_finite(per_seed(metrics, i), bool(finite[i]), env_steps, updates)
            for i, log in enumerate(logs):
                log.add(per_seed(metrics, i), steps_per_call)
            if bar is not None:
                bar.update(steps_per_call)

            if env_steps >= next_log:
                lines = [log.log_training(env_steps, updates) for log in logs]
                returns = [line["episode_return"] for line in lines if line["episode_return"] is not None]
                if bar is not None and returns:
                    bar.set_postfix(ret=f"{np.mean(returns):.3f}", refresh=False)
                next_log += config.log_every * max(1, math.ceil((env_steps - next_log + 1) / config.log_every))
            if env_steps >= next_eval:
                run_eval(state)
                if bar is not None:
                    values = " ".join("-" if log.summary["eval_return"] is None else
                                      f"{log.summary['eval_return']:.3f}" for log in logs)
                    bar.write(f"env_steps={env_steps} eval_return={values}")
                next_eval += config.eval_every * max(1, math.ceil((env_steps - next_eval + 1) / config.eval_every))
            if env_steps >= next_checkpoint:
                save(state)
                next_checkpoint += config.checkpoint_every * max(
                    1, math.ceil((env_steps - next_checkpoint + 1) / config.checkpoint_every)
                )
        if logs[0].summary.get("env_steps") != env_steps:
            run_eval(state)
        if saved[0] != env_steps:  # not the file system: process 0 may still be writing
            save(state)
    finally:
        for log in logs:
            log.close()
        if bar is not None:
            bar.close()
    if stopped_early:
        message = (f"stopped early at env_steps={env_steps}: every evaluation since "
                   f"{env_steps - config.early_stop_env_steps} was >= early_stop_return={config.early_stop_return}")
        print(message, flush=True)
    if many:
        return {"env_steps": env_steps, "stopped_early": stopped_early,
                "seeds": [{"seed": s, **log.summary, "stopped_early": stopped_early} for s, log in zip(seeds, logs)]}
    return {**logs[0].summary, "stopped_early": stopped_early}


def _compile_in_background(calls: list[tuple[Any, tuple]]) -> threading.Thread:
    """Starts a thread that compiles each jitted function for its arguments' shapes and
    shardings (``jit(f).lower(...).compile()`` fills the cache that ``jit(f)(...)`` reads). The
    arguments are read here, before the caller may donate them; an uncommitted array (one jit
    may move, like a fresh key) keeps no sharding. A failure is left to the first call, which
    compiles again and raises there."""
    def spec(x):
        if isinstance(x, jax.ShapeDtypeStruct):  # already a spec (rmuzero.agent.parallel.abstract_state)
            return x
        return jax.ShapeDtypeStruct(x.shape, x.dtype, weak_type=x.weak_type,
                                    sharding=x.sharding if x.committed else None)

    specs = [(jitted, jax.tree.map(spec, args)) for jitted, args in calls]

    def compile_all() -> None:
        for jitted, args in specs:
            try:
                jitted.lower(*args).compile()
            except Exception:  # noqa: BLE001 (the real call compiles again and reports it)
                pass

    thread = threading.Thread(target=compile_all, name="rmuzero-compile", daemon=True)
    thread.start()
    return thread


def _resumable_checkpoint(directory: Path, config: AgentConfig) -> Path:
    """The latest complete checkpoint of the run in ``directory``, checked against ``config``."""
    checkpoints = directory / "checkpoints"
    if not checkpoints.is_dir() or not any(checkpoints.iterdir()):
        raise CheckpointError(f"resume=true but {checkpoints} holds no checkpoint to resume from")
    step_dir = latest_checkpoint(checkpoints)
    from rmuzero.agent.config import saved_config_from_dict

    # Through the config class: options added since the run was saved take the value that
    # reproduces it (``saved_config_from_dict``).
    saved = config_to_dict(saved_config_from_dict(load_config(step_dir)))
    differing = [key for key in _config_differences(saved, config_to_dict(config))
                 if key not in RESUMABLE_CHANGES]
    if differing:
        raise CheckpointError(
            f"cannot resume {directory}: the run was trained with other {', '.join(differing)} "
            f"(only {', '.join(RESUMABLE_CHANGES)} may change on resume)")
    return step_dir


def _restore_state(agent: Agent, like: TrainState, step_dirs: list[Path], many: bool,
                   host: bool = False) -> TrainState:
    """The training state saved in ``step_dirs`` (one per seed; stacked for several); with
    ``host``, numpy arrays to be placed on a mesh."""
    one = jax.tree.map(lambda x: x[0], like) if many else like
    target = checkpoint_payload(jax.tree.map(lambda x: np.zeros(x.shape, x.dtype), one))
    states = [TrainState(**restore_checkpoint(step_dir, target)) for step_dir in step_dirs]
    stack = np.stack if host else jnp.stack
    if host:
        states = [jax.tree.map(np.asarray, state) for state in states]
    if many:
        return jax.tree.map(lambda *xs: stack(xs), *states)
    return states[0]


def latest_checkpoint_or_none(checkpoints: Path) -> Path | None:
    try:
        return latest_checkpoint(checkpoints)
    except (CheckpointError, FileNotFoundError):
        return None


def load_trained(path: str | Path, *, eval_envs: int | None = None):
    """Restores ``(agent, params, step_dir)`` from a run or checkpoint directory.

    The agent is rebuilt from the config saved with the weights.
    """
    from rmuzero.agent.config import saved_config_from_dict

    step_dir = latest_checkpoint(path)
    config = saved_config_from_dict(load_config(step_dir))
    agent = make_agent(config, eval_envs=eval_envs)
    target = checkpoint_payload(jax.eval_shape(agent.init, jax.random.PRNGKey(0)))
    target = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), target)  # the whole training state
    restored = restore_checkpoint(step_dir, target)
    return agent, restored["params"], step_dir
