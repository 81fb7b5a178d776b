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
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

__all__ = ["METRICS_FILE", "MetricsLogger", "read_metrics"]

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
            raise TypeError(
                f"record must be a mapping of str to scalars, got {type(record).__name__}"
            )
        line = json.dumps(_plain(record, "record"), allow_nan=False)
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


def _plain(value: Any, where: str) -> Any:
    """`value` as plain JSON types (non-finite floats -> None), or a one-line error."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"metric names must be strings, got {k!r} in {where}")
            out[k] = _plain(v, f"{where}.{k}")
        return out
    if isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is None or dtype is None:
        raise TypeError(
            f"{where} has type {type(value).__name__}; valid: None, bool, int, float, str, "
            "a 0-d numpy/jax array or scalar, or a mapping of these"
        )
    if tuple(shape) != ():
        raise ValueError(f"{where} has shape {tuple(shape)}; log scalars (shape ()) only")
    item = np.asarray(value).item()
    if isinstance(item, complex):
        raise TypeError(
            f"{where} is complex ({np.dtype(dtype).name}); log its real/imag/abs instead"
        )
    return _plain(item, where)


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
                raise ValueError(
                    f"{p}:{number} holds a {type(record).__name__}, expected a JSON object"
                )
            records.append(record)
    return records
