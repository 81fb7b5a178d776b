"""Append-only metrics log: one JSON object per line in `metrics.jsonl`.

Dimensions: none; every logged value is a scalar (0-d array or Python scalar).

Each `MetricsLogger.log` call writes one line and flushes it, so a run killed
at any moment leaves every earlier line readable. Values are written as plain
JSON: jax and numpy scalars become Python bool/int/float, and non-finite
floats (NaN, +inf, -inf) are written as `null`, because strict JSON has no
NaN (a reader sees `None`; the logger does not raise, so one diverged loss does
not kill a run). Nested mappings are allowed; arrays with more than one
element are rejected.

`path` in both functions may be the file itself or a directory, which means
`<directory>/metrics.jsonl`.

`RunLog` is what a training run writes through it (rmuzero.agent.train): per seed, a
training line every `log_every` env steps (`env_steps`, `episode_return`, the means of
`LOSS_NAMES` over the window's updates, throughput) and an evaluation line every
`eval_every` (`evaluation_summary`: `eval_return` and its companions), each carrying the
run's layout (`num_devices`, `num_processes`); optionally the same numbers as TensorBoard
scalars.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from rmuzero.plain_json import plain_json

__all__ = ["LOSS_NAMES", "METRICS_FILE", "MetricsLogger", "RunLog", "evaluation_summary", "read_metrics"]

METRICS_FILE = "metrics.jsonl"


def _resolve(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    return p / METRICS_FILE if p.is_dir() else p


class MetricsLogger:
    """Appends JSON lines to a metrics file; use as a context manager or call `close`.

    An existing file is appended to (old lines are kept). Parent directories
    are created.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = _resolve(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a+", encoding="utf-8")
        # A run killed mid-line leaves a partial last line: start on a fresh line
        # so new records are not glued to it.
        if self._file.tell() > 0:
            self._file.seek(self._file.tell() - 1)
            last = self._file.read(1)
            if last != "\n":
                self._file.write("\n")
                self._file.flush()

    def log(self, record: Mapping[str, Any]) -> None:
        """Writes `record` (str keys, scalar or nested-mapping values) as one line."""
        if self._file.closed:
            raise ValueError(f"MetricsLogger for {self.path} is closed")
        if not isinstance(record, Mapping):
            raise TypeError(f"record must be a mapping of str to scalars, got {type(record).__name__}")
        line = json.dumps(plain_json(record, "record", keys="metric names"), allow_nan=False)
        self._file.write(line + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Returns the records of a metrics file in order (blank lines skipped).

    Raises:
      FileNotFoundError: no metrics file at `path`.
      ValueError: a line is not a JSON object (the message names file and line).
    """
    p = _resolve(path)
    if not p.is_file():
        raise FileNotFoundError(f"no metrics file at {p}")
    records = []
    with open(p, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{p}:{number} is not valid JSON ({e.msg})") from None
            if not isinstance(record, dict):
                raise ValueError(f"{p}:{number} holds a {type(record).__name__}, expected a JSON object")
            records.append(record)
    return records


LOSS_NAMES = (
    "loss",
    "value_loss",
    "reward_loss",
    "policy_loss",
    "consistency_loss",
    "grad_norm",
    "targets_outside_support",
)  # IterationMetrics fields logged (means over the updates)


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


class _NoLogger:
    """What a process other than process 0 writes: nothing."""

    def log(self, record) -> None:
        pass

    def close(self) -> None:
        pass


class RunLog:
    """One seed's metrics.jsonl and the training window being summed into its next line.

    ``past_evaluations``: the evaluation lines a resumed run kept (oldest first); the last is
    the summary until the next evaluation, all count for early stopping (``evaluations``).
    """

    def __init__(
        self,
        run_dir: Path,
        begin: float,
        support_bound: float,
        layout: dict[str, int],
        *,
        write: bool = True,
        tensorboard: bool = False,
        past_evaluations: Sequence[dict[str, Any]] = (),
    ):
        self.run_dir = run_dir
        self.support_bound = support_bound
        self.layout = layout  # num_devices, num_processes: carried by every line
        self.warned = False
        self.logger = MetricsLogger(run_dir / METRICS_FILE) if write else _NoLogger()
        self.tensorboard = None
        if write and tensorboard:
            from tensorboardX import SummaryWriter

            self.tensorboard = SummaryWriter(str(run_dir))
        self.begin = begin  # perf_counter() at the run's start: wall_time counts from it
        self.summary: dict = dict(past_evaluations[-1]) if past_evaluations else {}  # the last evaluation line
        # (env_steps, eval_return) of every evaluation, for early stopping
        self.evaluations: list[tuple[int, float | None]] = [
            (e["env_steps"], e["eval_return"]) for e in past_evaluations
        ]
        self.reset()

    def reset(self) -> None:
        self.window = {
            "return": 0.0,
            "length": 0.0,
            "episodes": 0.0,
            "losses": [],
            "start": time.perf_counter(),
            "steps": 0,
            "updates": 0,
        }

    def add(self, metrics, steps: int) -> None:
        """Sums one call's metrics (IterationMetrics, fields [k]) into the window; warns once
        when value / reward targets fall outside the supports."""
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
            from rmuzero.networks.transforms import h_inv

            self.warned = True
            print(
                f"warning: {100 * float(outside.max()):.2g}% of the value / reward targets of an update lie "
                f"outside the supports (|x| <= {float(h_inv(self.support_bound)):.3g}, "
                f"network.support_bound={self.support_bound} after h) and are clipped; set "
                "network.support_bound higher for this task's returns",
                file=sys.stderr,
            )

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
        """``evaluation``: (returns, lengths, finished), each [E] over the evaluation episodes."""
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
