"""The training run: Python only for the outer loop, logging, evaluation, checkpoints.

``train(config, run_dir)`` jits the agent's iteration once and calls it until
``config.total_env_steps``; it writes ``run_dir/metrics.jsonl`` (one JSON object
per log line: training lines carry ``env_steps`` and ``episode_return``,
evaluation lines ``eval_return``) and ``run_dir/checkpoints/<env_steps>/``.

Where the rest lives: the run directory (seed directories, resume checks, restore, saving,
metrics cut back on resume) in :mod:`rmuzero.agent.run_dir`; the metrics lines in
:class:`rmuzero.metrics.RunLog`; the mesh in :mod:`rmuzero.agent.parallel`. Here: the
layout's functions (:func:`training_functions`), the schedule of logs, evaluations and
checkpoints (:class:`Period`), early stopping (:func:`held_for`) and the loop.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from rmuzero.agent.agent import Agent, IterationMetrics, TrainState, make_agent
from rmuzero.agent.config import AgentConfig, config_to_dict
from rmuzero.agent.parallel import (
    DATA_AXIS,
    abstract_state,
    default_num_devices,
    initialize_distributed,
    make_mesh,
    shard_functions,
    to_host,
)
from rmuzero.agent.run_dir import (
    RESUMABLE_CHANGES,
    RunDirectory,
    checkpoint_payload,
    latest_checkpoint_or_none,
    load_trained,
    restore_state,
    seed_dirs,
)
from rmuzero.compilation_cache import (
    COMPILATION_CACHE_VARIABLE,
    DEFAULT_COMPILATION_CACHE,
    compilation_cache_dir,
    enable_compilation_cache,
)
from rmuzero.metrics import LOSS_NAMES, RunLog, evaluation_summary

# What scripts and tests import from here, those defined elsewhere included (they moved to
# rmuzero.agent.run_dir, rmuzero.metrics and rmuzero.compilation_cache).
__all__ = [
    "COMPILATION_CACHE_VARIABLE",
    "DEFAULT_COMPILATION_CACHE",
    "EARLY_STOP_TOLERANCE",
    "EVAL_SEED_OFFSET",
    "LOSS_NAMES",
    "Period",
    "RESUMABLE_CHANGES",
    "SCRIPT_OPTIONS",
    "TrainingError",
    "TrainingFunctions",
    "checkpoint_payload",
    "compilation_cache_dir",
    "enable_compilation_cache",
    "evaluation_summary",
    "held_for",
    "latest_checkpoint_or_none",
    "load_trained",
    "seed_dirs",
    "train",
    "training_functions",
]

SCRIPT_OPTIONS = (
    "progress",
    "compilation_cache",
    "resume",
    "cpu_devices",
)  # configs/config.yaml keys for scripts/train.py, not the agent
EVAL_SEED_OFFSET = 1_000_003  # seed s evaluates with PRNGKey(s + EVAL_SEED_OFFSET)
EARLY_STOP_TOLERANCE = 1e-4  # an evaluation within this of early_stop_return counts as reaching it (float32 sums)


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss or parameter); the message says where."""


def train(
    config: AgentConfig,
    run_dir: str | Path,
    *,
    progress: bool = True,
    agent: Agent | None = None,
    resume: bool = False,
    environment: Any = None,
) -> dict:
    """Trains from scratch, or with ``resume`` continues the run in ``run_dir`` from its latest
    complete checkpoint; returns the last evaluation summary (plus ``env_steps``, and
    ``stopped_early``: whether ``early_stop_return`` held for ``early_stop_env_steps``).

    A resumed run is the same run: the checkpoint holds the whole training state, so it ends
    with the metrics the run would have had uninterrupted (when checkpoints fall on log
    steps); metrics.jsonl keeps the lines up to the checkpoint and drops those the killed run
    wrote after it. Only ``RESUMABLE_CHANGES`` may differ from the saved config.

    With ``config.num_seeds = N > 1`` the seeds ``seed .. seed + N - 1`` train together, the
    whole training step vmapped over them (one program, one process), each writing its own
    ``seed_<s>/metrics.jsonl`` and ``seed_<s>/checkpoints/``; the summary then holds one
    summary per seed under ``"seeds"``.

    ``environment``: your own environment instead of ``config.env``'s (a jumanji environment
    or a gymnax ``(env, params)`` pair, ``rmuzero.envs.sources.as_environment``); a run
    trained on one is evaluated and resumed from Python with the same environment.
    """
    begin = time.perf_counter()  # wall_time counts from here: building, initialising, compiling included
    initialize_distributed(config.distributed)
    writer = jax.process_index() == 0  # process 0 alone writes metrics and checkpoints
    run = RunDirectory.open(config, run_dir, resume=resume, create=writer)
    fns = training_functions(config, agent, environment)
    keys, eval_key = _seed_keys(config), _seed_keys(config, offset=EVAL_SEED_OFFSET)
    # The training call compiles on a thread from the state's shapes while this one makes the
    # state (XLA releases the GIL; on 2 cores no gain measurable: benchmarks/2026-12-04-cpu-compile-ahead/).
    shapes = jax.eval_shape(fns.init, keys)
    compiling_training = _compile_in_background([(fns.train_iterations, (abstract_state(shapes, fns.shardings),))])
    if writer:
        print(replay_size(shapes.replay, config), file=sys.stderr, flush=True)
    state = fns.init(keys)
    if resume:
        state = fns.restore(state, run.resume_from)
    env_steps = _seed_0(state.env_steps)
    past = run.cut_metrics(env_steps) if resume and writer else [[]] * config.num_seeds  # evaluations kept
    layout = {"num_devices": fns.num_devices, "num_processes": jax.process_count()}
    logs = [
        RunLog(
            directory,
            begin,
            config.network.support_bound,
            layout,
            write=writer,
            tensorboard=config.logger.tensorboard,
            past_evaluations=evaluations,
        )
        for directory, evaluations in zip(run.seeds, past)
    ]
    bar = _ProgressBar(config.total_env_steps, env_steps, enabled=progress and writer)
    # Evaluation compiles on a thread while the first training call compiles: then it is in jit's cache.
    compiling = _compile_in_background([(fns.evaluate, (state.params, eval_key)), (fns.all_finite, (state.params,))])

    def evaluate(state: TrainState, env_steps: int) -> None:
        compiling.join()
        evaluations = _per_seed(to_host(fns.evaluate(state.params, eval_key)), config.num_seeds)
        for log, evaluation in zip(logs, evaluations):
            log.log_evaluation(env_steps, evaluation)

    def save(state: TrainState, env_steps: int) -> int:
        host = to_host(state)  # every process takes part in gathering the sharded leaves
        if writer:
            run.save(env_steps, _per_seed(host, config.num_seeds))
        return env_steps  # the step of the last checkpoint (every process knows it)

    logs_due, evaluations_due, checkpoints_due = (
        Period(every, after=env_steps) for every in (config.log_every, config.eval_every, config.checkpoint_every)
    )
    saved, stopped_early = env_steps if resume else None, False
    compiling_training.join()
    try:
        while env_steps < config.total_env_steps and not (stopped_early := _should_stop(config, logs)):
            state, metrics = fns.train_iterations(state)
            env_steps, updates = _account(state, metrics, logs, fns, config)
            bar.update(config.env_steps_per_iteration * config.iterations_per_call)
            if logs_due(env_steps):
                bar.show_returns([log.log_training(env_steps, updates) for log in logs])
            if evaluations_due(env_steps):
                evaluate(state, env_steps)
                bar.show_evaluation(env_steps, logs)
            if checkpoints_due(env_steps):
                saved = save(state, env_steps)
        if logs[0].summary.get("env_steps") != env_steps:
            evaluate(state, env_steps)
        if saved != env_steps:  # not the file system: process 0 may still be writing
            save(state, env_steps)
    finally:
        for log in logs:
            log.close()
        bar.close()
    return _summary(config, logs, env_steps, stopped_early)


class Period:
    """When something that recurs every ``every`` env steps is next due: the first multiple of
    ``every`` after the steps already taken (``after``; 0 for a fresh run). Calling it with
    the steps reached answers whether that multiple has been reached, and if so moves on to
    the first multiple after them: a call that jumps over several multiples is due once.

    >>> due = Period(5000, after=0)
    >>> due.next
    5000
    >>> due(4900), due(10_100), due.next
    (False, True, 15000)
    """

    def __init__(self, every: int, *, after: int = 0):
        if every <= 0:
            raise ValueError(f"a period must be positive, got every={every}")
        self.every = every
        self.next = self._after(after)

    def _after(self, env_steps: int) -> int:
        return (env_steps // self.every + 1) * self.every

    def __call__(self, env_steps: int) -> bool:
        if env_steps < self.next:
            return False
        self.next = self._after(env_steps)
        return True


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


def _should_stop(config: AgentConfig, logs: list[RunLog]) -> bool:
    """Every seed's evaluations have held ``early_stop_return`` for ``early_stop_env_steps``."""
    return config.early_stop_return is not None and all(
        held_for(log.evaluations, config.early_stop_return) >= config.early_stop_env_steps for log in logs
    )


@dataclasses.dataclass(frozen=True)
class TrainingFunctions:
    """The jitted functions of one run's layout (:func:`training_functions`). With
    ``num_seeds = N > 1`` each takes and returns a leading seed axis [N]; without, none."""

    agent: Agent  # built for one device's share of the batch on a mesh
    init: Callable[[jax.Array], TrainState]  # keys [N, 2] -> state, every leaf its own buffer
    train_iterations: Callable[[TrainState], tuple[TrainState, IterationMetrics]]  # state (donated) -> metrics [N, k]
    evaluate: Callable  # (params, keys [N, 2]) -> (returns, lengths, finished) [N, E]
    all_finite: Callable[[Any], jax.Array]  # params -> [N] bool: every parameter finite
    restore: Callable[[TrainState, list[Path]], TrainState]  # (init's state, [N] step dirs) -> saved state, alike
    shardings: Any  # the state's shardings on a mesh; None on one device (uncommitted arrays)
    num_devices: int  # devices the batch is split over


# Config fields no program depends on: a run differing from an earlier one of this process only
# in these reuses that run's jitted functions (training_functions' memo), compiled already.
PROGRAM_FREE_FIELDS = (
    "seed",
    "total_env_steps",
    "eval_every",
    "log_every",
    "checkpoint_every",
    "keep_checkpoints",
    "early_stop_return",
    "early_stop_env_steps",
    "logger",
)
_MEMO_SIZE = 4  # layouts kept in memory, the most recently used (each holds its compiled programs)
_memo: collections.OrderedDict[str, tuple[Any, Any, TrainingFunctions]] = collections.OrderedDict()


def training_functions(config: AgentConfig, agent: Agent | None = None, environment: Any = None) -> TrainingFunctions:
    """The training functions for ``config``'s layout: one device (``agent`` may be given,
    else it is built), the seeds vmapped on it, or data parallel over a mesh of
    ``config.num_devices`` devices (by default as many as the batch divides over) in one or
    several processes (:mod:`rmuzero.agent.parallel`).

    In one process, a second call for a config that differs only in ``PROGRAM_FREE_FIELDS``
    (another seed, budget or schedule), with the same ``agent`` and ``environment`` objects (or
    none), returns the functions of the first: jit traced and compiled them once (a sweep over
    seeds in a notebook compiles once). The last ``_MEMO_SIZE`` layouts are kept."""
    if jax.process_count() > 1:  # a distributed run builds its own (the mesh spans processes)
        return _training_functions(config, agent, environment)
    program = {k: v for k, v in config_to_dict(config).items() if k not in PROGRAM_FREE_FIELDS}
    key = json.dumps([program, id(agent), id(environment), jax.device_count()], sort_keys=True, default=repr)
    if key in _memo:
        _memo.move_to_end(key)
        return _memo[key][2]
    fns = _training_functions(config, agent, environment)
    _memo[key] = (agent, environment, fns)  # the objects whose ids are in the key stay alive with it
    while len(_memo) > _MEMO_SIZE:
        _memo.popitem(last=False)
    return fns


def _training_functions(config: AgentConfig, agent: Agent | None, environment: Any) -> TrainingFunctions:
    many = config.num_seeds > 1
    batched = jax.vmap if many else (lambda f: f)
    num_devices = config.num_devices or default_num_devices(
        config.system.num_envs, config.system.batch_size, jax.device_count(), jax.process_count()
    )
    if num_devices == 1 and jax.process_count() == 1:
        agent = agent or make_agent(config, environment=environment)

        def init(keys):  # every leaf its own buffer (init shares params with target_params): the state is donated
            return jax.tree.map(jnp.copy, batched(agent.init)(keys))

        def restore(like, step_dirs):
            return jax.tree.map(jnp.copy, restore_state(like, step_dirs, many=many))

        # One call: config.iterations_per_call iterations, the training state donated (updated in place).
        train_iterations, shardings = jax.jit(batched(agent.train_iterations), donate_argnums=0), None
    else:
        mesh = make_mesh(num_devices)
        num_devices = mesh.size
        if agent is not None:
            raise ValueError("train(agent=...) is for one device; leave it out to train on several")
        agent = make_agent(config, num_devices=num_devices, data_axis=DATA_AXIS, environment=environment)
        sharded = shard_functions(agent, mesh, num_seeds=config.num_seeds)
        init, shardings, train_iterations = sharded.init, sharded.shardings, sharded.train_iterations

        def restore(like, step_dirs):
            return sharded.place(restore_state(to_host(like), step_dirs, many=many, host=True))

    return TrainingFunctions(
        agent=agent,
        init=init,
        train_iterations=train_iterations,
        evaluate=jax.jit(batched(agent.evaluate)),
        all_finite=jax.jit(batched(_all_finite)),
        restore=restore,
        shardings=shardings,
        num_devices=num_devices,
    )


def _all_finite(tree) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def _seed_keys(config: AgentConfig, offset: int = 0) -> jax.Array:
    """``PRNGKey(s + offset)`` for each seed s: [N, 2] for ``num_seeds = N > 1``, [2] for one."""
    keys = [jax.random.PRNGKey(config.seed + i + offset) for i in range(config.num_seeds)]
    return jnp.stack(keys) if config.num_seeds > 1 else keys[0]


def _per_seed(tree: Any, num_seeds: int) -> list:
    """``tree`` split along its leading seed axis [N] (``num_seeds = N > 1``), or ``[tree]``."""
    if num_seeds == 1:
        return [tree]
    return [jax.tree.map(lambda x, i=i: x[i], tree) for i in range(num_seeds)]


def _seed_0(counter: jax.Array) -> int:
    """A counter of the state ([] or [N]; every seed's is the same) as a Python int."""
    return int(np.ravel(to_host(counter))[0])


def _account(
    state: TrainState, metrics: IterationMetrics, logs: list[RunLog], fns: TrainingFunctions, config: AgentConfig
) -> tuple[int, int]:
    """After one call: stops the run on a non-finite loss or parameter, else sums the call's
    metrics into each seed's log; returns ``(env_steps, updates)``."""
    metrics = _per_seed(to_host(metrics), config.num_seeds)  # fields [k] per seed, one transfer
    finite = np.atleast_1d(to_host(fns.all_finite(state.params)))
    env_steps, updates = _seed_0(state.env_steps), _seed_0(state.updates)
    for log, seed_metrics, params_finite in zip(logs, metrics, finite):
        learnt = seed_metrics.updates > 0
        broken = [name for name in LOSS_NAMES if not np.all(np.isfinite(getattr(seed_metrics, name)[learnt]))]
        if not broken and not params_finite:
            broken = ["parameters"]
        if broken:
            kept = latest_checkpoint_or_none(log.run_dir / "checkpoints")
            raise TrainingError(
                f"non-finite {broken[0]} by env_steps={env_steps} (update {updates}); "
                f"stopped, nothing saved; last good checkpoint: {kept or 'none yet'}"
            )
    for log, seed_metrics in zip(logs, metrics):
        log.add(seed_metrics, config.env_steps_per_iteration * config.iterations_per_call)
    return env_steps, updates


def _summary(config: AgentConfig, logs: list[RunLog], env_steps: int, stopped_early: bool) -> dict:
    if stopped_early:
        print(
            f"stopped early at env_steps={env_steps}: every evaluation since "
            f"{env_steps - config.early_stop_env_steps} was >= early_stop_return={config.early_stop_return}",
            flush=True,
        )
    if config.num_seeds > 1:
        return {
            "env_steps": env_steps,
            "stopped_early": stopped_early,
            "seeds": [
                {"seed": config.seed + i, **log.summary, "stopped_early": stopped_early} for i, log in enumerate(logs)
            ],
        }
    return {**logs[0].summary, "stopped_early": stopped_early}


class _ProgressBar:
    """tqdm's bar over the env steps, or nothing (``enabled=False``: progress=false, or not process 0)."""

    def __init__(self, total: int, done: int, *, enabled: bool):
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="step", dynamic_ncols=True)
            if done:
                self.bar.update(done)

    def update(self, steps: int) -> None:
        if self.bar is not None:
            self.bar.update(steps)

    def show_returns(self, lines: list[dict]) -> None:
        returns = [line["episode_return"] for line in lines if line["episode_return"] is not None]
        if self.bar is not None and returns:
            self.bar.set_postfix(ret=f"{np.mean(returns):.3f}", refresh=False)

    def show_evaluation(self, env_steps: int, logs: list[RunLog]) -> None:
        if self.bar is not None:
            values = " ".join(
                "-" if log.summary["eval_return"] is None else f"{log.summary['eval_return']:.3f}" for log in logs
            )
            self.bar.write(f"env_steps={env_steps} eval_return={values}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def replay_size(replay: Any, config: AgentConfig) -> str:
    """One line: the replay's bytes (every seed together) and how its observations are stored."""
    total = sum(x.size * jnp.dtype(x.dtype).itemsize for x in jax.tree.leaves(replay))
    observation = sum(x.size * jnp.dtype(x.dtype).itemsize for x in jax.tree.leaves(replay.experience.obs))
    dtypes = sorted({str(jnp.dtype(x.dtype)) for x in jax.tree.leaves(replay.experience.obs)})
    return (
        f"replay: {total:,} bytes ({total / 2**30:.2f} GiB; observations {observation:,} bytes as "
        f"{'/'.join(dtypes)}) for {config.num_seeds} x {config.system.num_envs} environments x "
        f"{config.system.replay_length_per_env} steps"
    )


def _compile_in_background(calls: list[tuple[Any, tuple]]) -> threading.Thread:
    """Starts a thread that compiles each jitted function for its arguments' shapes and
    shardings (``jit(f).lower(...).compile()`` fills the cache that ``jit(f)(...)`` reads). The
    arguments are read here, before the caller may donate them; an uncommitted array (one jit
    may move, like a fresh key) keeps no sharding. A failure is left to the first call, which
    compiles again and raises there."""

    def spec(x):
        if isinstance(x, jax.ShapeDtypeStruct):  # already a spec (rmuzero.agent.parallel.abstract_state)
            return x
        return jax.ShapeDtypeStruct(
            x.shape, x.dtype, weak_type=x.weak_type, sharding=x.sharding if x.committed else None
        )

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
