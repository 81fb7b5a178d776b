"""Tests for rmuzero.metrics: JSON-lines round trip, scalar conversion, NaN as null,
appending, per-line flushing, and one-line errors."""

from __future__ import annotations

import json
import math

import jax.numpy as jnp
import numpy as np
import pytest

from rmuzero.metrics import METRICS_FILE, MetricsLogger, read_metrics


def test_round_trip_and_exact_lines(tmp_path):
    records = [
        {"env_steps": 0, "episode_return": -0.5, "phase": "train"},
        {"env_steps": 128, "eval_return": 1.0, "losses": {"value": 0.25, "policy": 2.0}},
    ]
    with MetricsLogger(tmp_path) as logger:
        for r in records:
            logger.log(r)
    assert read_metrics(tmp_path) == records
    lines = (tmp_path / METRICS_FILE).read_text().splitlines()
    assert [json.loads(line) for line in lines] == records
    assert lines[0] == '{"env_steps": 0, "episode_return": -0.5, "phase": "train"}'


def test_numpy_and_jax_scalars_become_python_numbers(tmp_path):
    path = tmp_path / "m.jsonl"
    with MetricsLogger(path) as logger:
        logger.log(
            {
                "np_f32": np.float32(0.5),
                "np_i64": np.int64(7),
                "np_bool": np.bool_(True),
                "jax_f32": jnp.float32(0.25),
                "jax_i32": jnp.asarray(3, jnp.int32),
                "jax_bool": jnp.asarray(False),
                "jax_mean": jnp.mean(jnp.asarray([1.0, 2.0])),
                "zero_d": np.array(1.5),
            }
        )
    (record,) = read_metrics(path)
    assert record == {
        "np_f32": 0.5,
        "np_i64": 7,
        "np_bool": True,
        "jax_f32": 0.25,
        "jax_i32": 3,
        "jax_bool": False,
        "jax_mean": 1.5,
        "zero_d": 1.5,
    }
    assert [type(record[k]) for k in ("np_f32", "np_i64", "np_bool", "jax_i32", "jax_bool")] == [
        float,
        int,
        bool,
        int,
        bool,
    ]


def test_non_finite_floats_are_written_as_null(tmp_path):
    with MetricsLogger(tmp_path) as logger:
        logger.log(
            {
                "loss": float("nan"),
                "jax_nan": jnp.float32(jnp.nan),
                "inf": np.float64(-np.inf),
                "ok": 1.0,
            }
        )
    text = (tmp_path / METRICS_FILE).read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert read_metrics(tmp_path) == [{"loss": None, "jax_nan": None, "inf": None, "ok": 1.0}]


def test_appending_keeps_old_lines_and_each_line_is_flushed(tmp_path):
    with MetricsLogger(tmp_path) as logger:
        logger.log({"env_steps": 1})
    logger = MetricsLogger(tmp_path)
    logger.log({"env_steps": 2})
    # Readable before close: the line was flushed.
    assert read_metrics(tmp_path) == [{"env_steps": 1}, {"env_steps": 2}]
    logger.close()
    with pytest.raises(ValueError, match="is closed"):
        logger.log({"env_steps": 3})


def test_partial_last_line_from_a_killed_run_is_not_glued_to_new_lines(tmp_path):
    path = tmp_path / METRICS_FILE
    path.write_text('{"env_steps": 1}\n{"env_st')
    with MetricsLogger(path) as logger:
        logger.log({"env_steps": 2})
    assert path.read_text().splitlines() == ['{"env_steps": 1}', '{"env_st', '{"env_steps": 2}']
    with pytest.raises(ValueError, match=rf"{METRICS_FILE}:2 is not valid JSON"):
        read_metrics(path)


def test_bad_values_are_one_line_errors(tmp_path):
    with MetricsLogger(tmp_path) as logger:
        with pytest.raises(ValueError, match=r"record\.q has shape \(3,\); log scalars"):
            logger.log({"q": jnp.zeros(3)})
        with pytest.raises(TypeError, match=r"record\.a\.b has type list"):
            logger.log({"a": {"b": [1, 2]}})
        with pytest.raises(TypeError, match="metric names must be strings"):
            logger.log({1: 2.0})
        with pytest.raises(TypeError, match="complex"):
            logger.log({"z": np.complex64(1j)})
        logger.log({"fine": math.pi})
    assert read_metrics(tmp_path) == [{"fine": math.pi}]  # rejected records wrote nothing
    with pytest.raises(FileNotFoundError, match="no metrics file"):
        read_metrics(tmp_path / "missing")
