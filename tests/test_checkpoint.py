"""Tests for rmuzero.checkpoint: round trips (same and fresh process), finding the
newest step, keep-last-k, and the one-line errors for missing, empty, damaged,
mismatched and already-existing checkpoints."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax.core import FrozenDict

from rmuzero.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    load_config,
    restore_checkpoint,
    save_checkpoint,
)

CONFIG = {"seed": 3, "network": {"name": "ffm", "memory": [16, 4]}, "lr": 3e-4, "tape": True}


class TrainState(NamedTuple):
    params: Any
    opt_count: jax.Array
    key: jax.Array
    step: int


def make_state(fill: bool) -> TrainState:
    """A training-state-like pytree; `fill=False` gives a zeroed target of the same structure."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(3, 4)) + 1j * rng.normal(size=(3, 4))
    params = FrozenDict(
        {
            "ffm": {
                "memory": jnp.asarray(z, jnp.complex64),
                "alpha": jnp.asarray(rng.normal(size=(4,)), jnp.float32),
            },
            "head": {
                "mask": jnp.asarray([True, False, True]),
                "ids": jnp.arange(5, dtype=jnp.int32) * 7,
            },
        }
    )
    state = TrainState(params=params, opt_count=jnp.int32(41), key=jax.random.key(1234), step=900)
    if fill:
        return state
    return TrainState(
        params=jax.tree.map(jnp.zeros_like, params),
        opt_count=jnp.int32(0),
        key=jax.random.key(0),
        step=0,
    )


def checksum(state: TrainState) -> str:
    """sha256 over each leaf's path, dtype, shape and bytes (key data for typed keys)."""
    h = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        if jax.dtypes.issubdtype(getattr(leaf, "dtype", np.float32), jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        arr = np.asarray(leaf)
        h.update(f"{jax.tree_util.keystr(path)}|{arr.dtype}|{arr.shape}|".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def assert_same_state(a: TrainState, b: TrainState) -> None:
    assert type(a) is type(b) and type(a.params) is type(b.params)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        assert type(x) is type(y)
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            assert x.dtype == y.dtype
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory) -> Path:
    """A run directory with checkpoints at steps 2, 10 and 9 (saved in that order)."""
    run = tmp_path_factory.mktemp("run")
    state = make_state(fill=True)
    save_checkpoint(run / "checkpoints", 2, state._replace(step=2), CONFIG)
    save_checkpoint(run / "checkpoints", 10, state, CONFIG)
    save_checkpoint(run / "checkpoints", 9, state._replace(step=9), {**CONFIG, "seed": 9})
    return run


def one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message, message
    return message


def test_round_trip_keeps_values_dtypes_and_containers(saved_run):
    step_dir = latest_checkpoint(saved_run)
    restored = restore_checkpoint(step_dir, make_state(fill=False))
    original = make_state(fill=True)
    assert_same_state(restored, original)
    assert restored.params["ffm"]["memory"].dtype == jnp.complex64
    assert np.iscomplexobj(np.asarray(restored.params["ffm"]["memory"]))
    # The restored key draws the same numbers as the saved one.
    np.testing.assert_array_equal(jax.random.uniform(restored.key, (3,)), jax.random.uniform(original.key, (3,)))
    assert load_config(step_dir) == {**CONFIG, "network": {"name": "ffm", "memory": [16, 4]}}


def test_restore_into_abstract_and_numpy_targets(saved_run):
    step_dir = saved_run / "checkpoints" / "10"
    target = make_state(fill=False)
    abstract = target._replace(params=jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), target.params))
    restored = restore_checkpoint(step_dir, abstract)
    assert checksum(restored) == checksum(make_state(fill=True))
    as_numpy = target._replace(params=jax.tree.map(np.asarray, target.params))
    restored = restore_checkpoint(step_dir, as_numpy)
    assert isinstance(restored.params["ffm"]["memory"], np.ndarray)
    assert checksum(restored) == checksum(make_state(fill=True))


@pytest.mark.slow
def test_restore_in_a_fresh_process(saved_run):
    child = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('ckpt_test', {str(Path(__file__))!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "from rmuzero.checkpoint import latest_checkpoint, restore_checkpoint, load_config\n"
        f"d = latest_checkpoint({str(saved_run)!r})\n"
        "s = restore_checkpoint(d, m.make_state(fill=False))\n"
        "print(d.name, load_config(d)['seed'], m.checksum(s))\n"
    )
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    step, seed, digest = out.stdout.split()
    assert (step, int(seed)) == ("10", CONFIG["seed"])
    assert digest == checksum(make_state(fill=True))


def test_latest_is_the_highest_step_from_run_checkpoints_or_step_dir(saved_run):
    checkpoints = saved_run / "checkpoints"
    assert latest_checkpoint(saved_run) == checkpoints / "10"  # numeric, not "9" > "10"
    assert latest_checkpoint(str(checkpoints)) == checkpoints / "10"
    assert latest_checkpoint(checkpoints / "9") == checkpoints / "9"
    assert load_config(checkpoints / "9")["seed"] == 9
    assert restore_checkpoint(checkpoints / "2", make_state(fill=False)).step == 2


def test_keep_deletes_the_oldest_steps_and_ignores_leftover_temp_dirs(tmp_path):
    state = make_state(fill=True)
    (tmp_path / ".tmp-99-deadbeef").mkdir()  # what a crash mid-save leaves behind
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, state, CONFIG, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".tmp-99-deadbeef", "2", "3"]
    assert latest_checkpoint(tmp_path) == tmp_path / "3"


def test_save_returns_complete_checkpoint_and_leaves_no_threads(tmp_path):
    before = set(threading.enumerate())
    step_dir = save_checkpoint(tmp_path, 0, make_state(fill=True), CONFIG)
    assert set(threading.enumerate()) == before
    names = {str(p.relative_to(step_dir)) for p in step_dir.rglob("*")}
    assert {"config.json", "tree.json", "state/_METADATA", "state/manifest.ocdbt"} <= names
    assert not any(p.name.startswith(".tmp-") for p in tmp_path.iterdir())
    tree = json.loads((step_dir / "tree.json").read_text())
    assert [e["path"] for e in tree][0] == ".params['ffm']['alpha']"
    assert {e["dtype"] for e in tree} >= {"complex64", "float32", "int32", "bool", "uint32"}


def test_existing_step_is_never_overwritten(tmp_path):
    first = save_checkpoint(tmp_path, 5, make_state(fill=True), CONFIG)
    snapshot = {p: p.read_bytes() for p in first.rglob("*") if p.is_file()}
    with pytest.raises(CheckpointError, match="already exists") as excinfo:
        save_checkpoint(tmp_path, 5, make_state(fill=False), {"other": 1})
    assert str(first) in one_line_error(excinfo)
    assert {p: p.read_bytes() for p in first.rglob("*") if p.is_file()} == snapshot
    assert sorted(p.name for p in tmp_path.iterdir()) == ["5"]  # no temp dir left


def test_missing_path_and_empty_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist") as excinfo:
        latest_checkpoint(tmp_path / "nope")
    one_line_error(excinfo)
    with pytest.raises(CheckpointError, match=r"checkpoints/<step>/") as excinfo:
        latest_checkpoint(tmp_path)
    one_line_error(excinfo)
    (tmp_path / "checkpoints").mkdir()
    with pytest.raises(CheckpointError, match="no checkpoint under"):
        latest_checkpoint(tmp_path)


@pytest.mark.parametrize("victim", ["config.json", "tree.json", "state/_METADATA", "state/manifest.ocdbt"])
def test_damaged_step_names_the_missing_file(tmp_path, victim):
    step_dir = save_checkpoint(tmp_path / "checkpoints", 4, make_state(fill=True), CONFIG)
    (step_dir / victim).unlink()
    for entry in (tmp_path, step_dir):
        with pytest.raises(CheckpointError, match="incomplete checkpoint") as excinfo:
            latest_checkpoint(entry)
        assert one_line_error(excinfo).endswith(str(step_dir / victim))
    with pytest.raises(CheckpointError, match=victim.split("/")[-1]):
        restore_checkpoint(step_dir, make_state(fill=False))


def test_missing_array_data_is_a_one_line_error(tmp_path):
    step_dir = save_checkpoint(tmp_path, 4, make_state(fill=True), CONFIG)
    for chunk in (step_dir / "state" / "d").iterdir():
        chunk.unlink()
    with pytest.raises(CheckpointError, match="could not read array data") as excinfo:
        restore_checkpoint(step_dir, make_state(fill=False))
    one_line_error(excinfo)


def test_mismatched_target_names_leaf_and_both_shapes(saved_run):
    step_dir = saved_run / "checkpoints" / "10"
    target = make_state(fill=False)
    wrong_shape = target._replace(
        params=target.params.copy({"head": {**target.params["head"], "ids": jnp.zeros((6,), jnp.int32)}})
    )
    with pytest.raises(CheckpointError) as excinfo:
        restore_checkpoint(step_dir, wrong_shape)
    assert one_line_error(excinfo) == ("shape mismatch at leaf .params['head']['ids']: checkpoint (5,), target (6,)")
    wrong_dtype = target._replace(opt_count=jnp.float32(0))
    message = r"dtype mismatch at leaf \.opt_count: checkpoint int32, target float32"
    with pytest.raises(CheckpointError, match=message):
        restore_checkpoint(step_dir, wrong_dtype)
    extra_leaf = target._replace(params=target.params.copy({"extra": jnp.zeros(2)}))
    with pytest.raises(CheckpointError, match=r"holds 7 leaves but the target has 8") as excinfo:
        restore_checkpoint(step_dir, extra_leaf)
    assert "checkpoint .params['ffm']['alpha'], target .params['extra']" in one_line_error(excinfo)
    renamed = target._replace(params=FrozenDict({"ffn": target.params["ffm"], "head": target.params["head"]}))
    message = r"structure mismatch at leaf 0: checkpoint \.params\['ffm'\]"
    with pytest.raises(CheckpointError, match=message):
        restore_checkpoint(step_dir, renamed)
    key_as_array = target._replace(key=jnp.zeros((2,), jnp.uint32))
    with pytest.raises(CheckpointError, match="holds a typed PRNG key, target has an array"):
        restore_checkpoint(step_dir, key_as_array)


def test_bad_arguments_write_nothing(tmp_path):
    state = make_state(fill=True)
    message = r"config\.net\.act has type object, which"
    with pytest.raises(CheckpointError, match=message) as excinfo:
        save_checkpoint(tmp_path, 1, state, {"net": {"act": object()}})
    one_line_error(excinfo)
    with pytest.raises(CheckpointError, match="step must be a non-negative integer, got -1"):
        save_checkpoint(tmp_path, -1, state, CONFIG)
    with pytest.raises(CheckpointError, match="keep must be None"):
        save_checkpoint(tmp_path, 1, state, CONFIG, keep=0)
    with pytest.raises(CheckpointError, match="state has no leaves"):
        save_checkpoint(tmp_path, 1, {}, CONFIG)
    assert list(tmp_path.iterdir()) == []


def test_bfloat16_and_python_scalars_round_trip(tmp_path):
    state = {"w": jnp.asarray([1.5, -2.0, 0.0078125], jnp.bfloat16), "lr": 0.001, "done": True}
    step_dir = save_checkpoint(tmp_path, 0, state, {})
    target = {"w": jnp.zeros(3, jnp.bfloat16), "lr": 0.0, "done": False}
    restored = restore_checkpoint(step_dir, target)
    assert restored["w"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(restored["w"], np.float32), [1.5, -2.0, 0.0078125])
    assert (type(restored["lr"]), restored["lr"]) == (float, 0.001)
    assert (type(restored["done"]), restored["done"]) == (bool, True)


def test_empty_arrays_round_trip_from_the_manifest_alone(tmp_path):
    """Orbax refuses zero-size arrays (replay without carries stores them): tree.json keeps their
    shape and dtype, and a target of another shape is still refused."""
    state = {
        "carry": jnp.zeros((2, 5, 0, 3), jnp.float32),
        "count": jnp.zeros((2, 5, 0), jnp.int32),
        "w": jnp.arange(4.0),
    }
    step_dir = save_checkpoint(tmp_path, 0, state, {})
    restored = restore_checkpoint(step_dir, jax.tree.map(jnp.ones_like, state))
    for name in state:
        assert (restored[name].shape, restored[name].dtype) == (state[name].shape, state[name].dtype)
    np.testing.assert_array_equal(restored["w"], [0.0, 1.0, 2.0, 3.0])
    with pytest.raises(CheckpointError, match=r"shape mismatch at leaf \['carry'\]: checkpoint \(2, 5, 0, 3\)"):
        restore_checkpoint(step_dir, {**state, "carry": jnp.zeros((2, 5, 3))})
