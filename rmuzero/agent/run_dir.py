"""A training run's directory: where each seed writes, what a resumed run continues from,
and the checkpoints saved and restored.

Layout (one seed; with ``num_seeds = N > 1`` each seed ``s`` has this under ``seed_<s>/``)::

    <run_dir>/metrics.jsonl             one JSON object per line (rmuzero.metrics.RunLog)
    <run_dir>/checkpoints/<env_steps>/  the whole training state and the config (rmuzero.checkpoint)

A fresh run refuses a directory that already holds checkpoints; a resumed one continues from
each seed's latest complete checkpoint, provided only ``RESUMABLE_CHANGES`` differ from the
config saved with it, and cuts metrics.jsonl back to the lines written up to that checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rmuzero.agent.agent import Agent, TrainState, make_agent
from rmuzero.agent.config import AgentConfig, config_to_dict, saved_config_from_dict
from rmuzero.checkpoint import CheckpointError, latest_checkpoint, load_config, restore_checkpoint, save_checkpoint
from rmuzero.metrics import METRICS_FILE

RESUMABLE_CHANGES = (
    "total_env_steps",
    "eval_temperature",
    "early_stop_return",
    "early_stop_env_steps",
    "log_every",
    "eval_every",
    "checkpoint_every",
    "keep_checkpoints",
    "logger.tensorboard",
    "num_devices",
    "distributed.coordinator_address",
    "distributed.num_processes",
    "distributed.process_id",
)  # may differ on resume (the state is global, the layout is not)


def checkpoint_payload(state: TrainState) -> dict[str, Any]:
    """What a checkpoint holds: the whole training state (weights, target weights, optimizer,
    actor with its environments and memory carries, replay, PRNG key, counters), so that a
    resumed run continues exactly where the checkpoint was taken."""
    return state._asdict()


def seed_dirs(config: AgentConfig, run_dir: str | Path) -> list[Path]:
    """Where each seed's metrics.jsonl and checkpoints/ go: the run directory itself for one
    seed, ``seed_<s>/`` inside it for ``num_seeds > 1``."""
    run_dir = Path(run_dir)
    if config.num_seeds == 1:
        return [run_dir]
    return [run_dir / f"seed_{config.seed + i}" for i in range(config.num_seeds)]


@dataclasses.dataclass(frozen=True)
class RunDirectory:
    """A run's seed directories, checked before anything is built (:meth:`open`)."""

    config: AgentConfig
    seeds: list[Path]  # [N] each seed's directory
    resume_from: list[Path] | None  # [N] each seed's latest complete checkpoint; None for a fresh run

    @classmethod
    def open(cls, config: AgentConfig, run_dir: str | Path, *, resume: bool, create: bool) -> RunDirectory:
        """With ``resume`` each seed's latest complete checkpoint, checked against ``config``;
        without, a refusal if any seed's directory holds checkpoints. ``create`` (process 0)
        makes the directories."""
        dirs = seed_dirs(config, run_dir)
        if resume:
            resume_from = [_resumable_checkpoint(directory, config) for directory in dirs]
        else:
            resume_from = None
            for directory in dirs:
                _refuse_existing_checkpoints(directory / "checkpoints")
        if create:
            for directory in dirs:
                directory.mkdir(parents=True, exist_ok=True)
        return cls(config, dirs, resume_from)

    def cut_metrics(self, env_steps: int) -> list[list[dict[str, Any]]]:
        """Cuts each seed's metrics.jsonl back to its lines up to the checkpoint at ``env_steps``
        (what a killed run wrote after it is dropped, so the file reads as one run; the file
        is replaced whole) and returns the evaluation lines kept, [N] lists oldest first."""
        evaluations = []
        for directory in self.seeds:
            kept = _kept_metrics(directory / METRICS_FILE, env_steps)
            tmp = directory / ".metrics.jsonl.resume"
            tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
            os.replace(tmp, directory / METRICS_FILE)
            evaluations.append([json.loads(line) for line in kept if "eval_return" in json.loads(line)])
        return evaluations

    def save(self, env_steps: int, states: list[TrainState]) -> None:
        """Each seed's host state ([N] states) as its checkpoint ``<env_steps>``."""
        for directory, state in zip(self.seeds, states, strict=True):
            save_checkpoint(
                directory / "checkpoints",
                env_steps,
                checkpoint_payload(state),
                config_to_dict(self.config),
                keep=self.config.keep_checkpoints,
            )


def restore_state(like: TrainState, step_dirs: list[Path], *, many: bool, host: bool = False) -> TrainState:
    """The training state saved in ``step_dirs`` (one per seed; stacked on a leading seed axis
    [N] when ``many``), shaped like ``like``; with ``host``, numpy arrays to be placed on a mesh."""
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


def load_trained(
    path: str | Path, *, eval_envs: int | None = None, eval_temperature: float | None = None
) -> tuple[Agent, Any, Path]:
    """Restores ``(agent, params, step_dir)`` from a run or checkpoint directory.

    The agent is rebuilt from the config saved with the weights; ``eval_temperature``, when
    given, replaces the saved one (how ``agent.evaluate`` chooses its actions).
    """
    step_dir = latest_checkpoint(path)
    config = saved_config_from_dict(load_config(step_dir))
    if eval_temperature is not None:
        config = dataclasses.replace(config, eval_temperature=eval_temperature)  # validated again
    agent = make_agent(config, eval_envs=eval_envs)
    target = checkpoint_payload(jax.eval_shape(agent.init, jax.random.PRNGKey(0)))
    target = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), target)  # the whole training state
    restored = restore_checkpoint(step_dir, target)
    return agent, restored["params"], step_dir


def _refuse_existing_checkpoints(checkpoints: Path) -> None:
    if checkpoints.exists() and any(checkpoints.iterdir()):
        raise CheckpointError(
            f"{checkpoints} already holds checkpoints; choose another hydra.run.dir=, or add resume=true to "
            "continue that run (nothing was overwritten)"
        )


def _resumable_checkpoint(directory: Path, config: AgentConfig) -> Path:
    """The latest complete checkpoint of the run in ``directory``, checked against ``config``."""
    checkpoints = directory / "checkpoints"
    if not checkpoints.is_dir() or not any(checkpoints.iterdir()):
        raise CheckpointError(f"resume=true but {checkpoints} holds no checkpoint to resume from")
    step_dir = latest_checkpoint(checkpoints)
    # Through the config class: options added since the run was saved take the value that
    # reproduces it (``saved_config_from_dict``).
    saved = config_to_dict(saved_config_from_dict(load_config(step_dir)))
    differing = [key for key in _config_differences(saved, config_to_dict(config)) if key not in RESUMABLE_CHANGES]
    if differing:
        raise CheckpointError(
            f"cannot resume {directory}: the run was trained with other {', '.join(differing)} "
            f"(only {', '.join(RESUMABLE_CHANGES)} may change on resume)"
        )
    return step_dir


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
