"""Checkpoints of a training-state pytree together with the run's config (orbax).

Dimensions: none; every array leaf keeps its own shape. A "leaf path" is
`jax.tree_util.keystr` of the leaf's key path, e.g. `.params['encoder']['w']`.

Layout on disk, one directory per saved step:

    <directory>/<step>/config.json   the run's plain config, so evaluation can
                                     rebuild the agent without the YAML
    <directory>/<step>/tree.json     one entry per leaf, in flattening order:
                                     path, shape, dtype, kind ("array", "key",
                                     "scalar")
    <directory>/<step>/state/        orbax StandardCheckpointer data: a flat
                                     dict {"leaf_00000": array, ...} (an empty
                                     array is left out: tree.json says it all)

A step directory is written under a hidden temporary name in the same
directory and renamed into place only after orbax has finished and both JSON
files are on disk, so a directory named `<step>` is always complete (a crash
leaves a `.tmp-*` directory behind, which is ignored). An existing `<step>` is
never overwritten.

State is flattened to host numpy before saving (`jax.device_get`), so a save
writes from this process only: call it on one process (e.g. process 0) with a
fully addressable (replicated or single-device) state. Typed PRNG keys
(`jax.random.key`) are stored as their `jax.random.key_data` and rewrapped
with the target leaf's key implementation on restore. Python scalars are
stored as 0-d arrays and restored as the target's Python type.

Orbax itself restores a numpy leaf with the *saved* shape whatever the target
says (no error), so shapes, dtypes and structure are checked here against
`tree.json` before orbax is called.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from rmuzero.plain_json import plain_json
from rmuzero.validation import is_int

__all__ = [
    "CheckpointError",
    "latest_checkpoint",
    "load_config",
    "restore_checkpoint",
    "save_checkpoint",
]

PyTree = Any

CONFIG_FILE = "config.json"
TREE_FILE = "tree.json"
STATE_DIR = "state"
# Files orbax (0.12, OCDBT format) needs to restore; checked by name so that a
# damaged checkpoint is reported as such rather than as a tensorstore trace.
_ORBAX_REQUIRED = ("_METADATA", "manifest.ocdbt", "d")
_TMP_PREFIX = ".tmp-"
_KIND_WORDS = {"array": "an array", "key": "a typed PRNG key", "scalar": "a Python scalar"}


class CheckpointError(ValueError):
    """A checkpoint is missing, incomplete, or does not fit the restore target."""


# ----------------------------------------------------------------------------- saving


def save_checkpoint(
    directory: str | os.PathLike[str],
    step: int,
    state: PyTree,
    config: Mapping[str, Any],
    *,
    keep: int | None = None,
) -> Path:
    """Writes `state` and `config` to `directory/<step>/` and returns that path.

    Returns only once the checkpoint is complete on disk (orbax's asynchronous
    write is waited for and its threads closed).

    Args:
      directory: the checkpoints directory (e.g. `<run dir>/checkpoints`);
        created if missing.
      step: non-negative integer naming the step directory.
      state: pytree of arrays (jax or numpy, any dtype including complex64 and
        bool), typed PRNG keys, or Python scalars; dicts, FrozenDicts,
        NamedTuples and registered dataclasses are all fine.
      config: JSON-serialisable mapping (str keys; values None, bool, int,
        float, str, lists/tuples and nested mappings; numpy / jax scalars are
        converted, non-finite floats written as null: ``rmuzero.plain_json``).
      keep: if given (>= 1), after saving only the `keep` highest-numbered
        step directories are kept and older ones are deleted. Default: keep all.

    Raises:
      CheckpointError: `directory/<step>` already exists (it is left untouched),
        or a bad `step`, `keep`, `config` or `state`.
    """
    if not is_int(step) or step < 0:
        raise CheckpointError(f"step must be a non-negative integer, got {step!r}")
    step = int(step)
    if keep is not None and (not is_int(keep) or keep < 1):
        raise CheckpointError(f"keep must be None (keep all) or an integer >= 1, got {keep!r}")
    try:
        plain_config = plain_json(config, "config", lists=True, keys="config keys")
    except (TypeError, ValueError) as error:
        raise CheckpointError(str(error)) from None
    config_text = json.dumps(plain_config, indent=2, sort_keys=True)
    arrays, manifest = _flatten_for_saving(state)

    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / str(step)
    if final.exists():
        raise CheckpointError(
            f"checkpoint {final} already exists; refusing to overwrite it "
            "(save under another step or directory, or delete it yourself)"
        )
    tmp = directory / f"{_TMP_PREFIX}{step}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        checkpointer = _this_process_checkpointer()
        try:
            checkpointer.save(tmp / STATE_DIR, arrays)
            checkpointer.wait_until_finished()
        finally:
            checkpointer.close()
        _write_text(tmp / TREE_FILE, json.dumps(manifest, indent=1))
        _write_text(tmp / CONFIG_FILE, config_text)
        try:
            # Fails with ENOTEMPTY/EEXIST if a checkpoint appeared meanwhile: no clobbering.
            os.rename(tmp, final)
        except OSError as e:
            raise CheckpointError(
                f"checkpoint {final} appeared while saving; refusing to overwrite it ({e.strerror})"
            ) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if keep is not None:
        for old in _step_numbers(directory)[:-keep]:
            shutil.rmtree(directory / str(old))
    return final


def _this_process_checkpointer() -> ocp.StandardCheckpointer:
    """An orbax checkpointer for this process alone. States are saved as host numpy (gathered
    from every process first, by the caller) and written by one process; in a multi-process run
    the others must not be waited for at orbax's barriers (they save nothing)."""
    me = jax.process_index()
    return ocp.StandardCheckpointer(
        multiprocessing_options=ocp.options.MultiprocessingOptions(primary_host=me, active_processes={me})
    )


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _flatten_for_saving(state: PyTree) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """Flattens `state` into orbax's flat dict of host arrays plus the leaf manifest."""
    with_paths, _ = jax.tree_util.tree_flatten_with_path(state)
    if not with_paths:
        raise CheckpointError("state has no leaves; nothing to checkpoint")
    arrays: dict[str, np.ndarray] = {}
    manifest: list[dict[str, Any]] = []
    for i, (path, leaf) in enumerate(with_paths):
        kind = _kind(leaf)
        if kind == "key":
            data = np.asarray(jax.device_get(jax.random.key_data(leaf)))
            entry_extra = {"key_impl": _key_impl_name(leaf)}
        elif kind == "scalar":
            data = np.asarray(leaf)
            entry_extra = {"python_type": type(leaf).__name__}
        else:
            data = np.asarray(jax.device_get(leaf))
            entry_extra = {}
            if data.dtype == object:
                raise CheckpointError(
                    f"leaf {jax.tree_util.keystr(path)} is a {type(leaf).__name__}; "
                    "only arrays, typed PRNG keys and Python scalars can be checkpointed"
                )
        if data.size:  # orbax refuses empty arrays; tree.json alone holds their shape and dtype
            arrays[_leaf_name(i)] = data
        manifest.append(
            {
                "path": jax.tree_util.keystr(path),
                "shape": list(data.shape),
                "dtype": data.dtype.name,
                "kind": kind,
                **entry_extra,
            }
        )
    return arrays, manifest


def _kind(leaf: Any) -> str:
    if isinstance(leaf, (bool, int, float, complex)):
        return "scalar"
    dtype = getattr(leaf, "dtype", None)
    if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        return "key"
    return "array"


def _key_impl_name(key: Any) -> str | None:
    """Name of a key array's implementation; None for an abstract (ShapeDtypeStruct) key."""
    if isinstance(key, jax.ShapeDtypeStruct):
        return None
    return str(jax.random.key_impl(key))


def _leaf_name(i: int) -> str:
    return f"leaf_{i:05d}"


# ----------------------------------------------------------------------------- finding


def latest_checkpoint(path: str | os.PathLike[str]) -> Path:
    """Returns the newest step directory reachable from `path`.

    `path` may be a run directory (holding `checkpoints/`), a checkpoints
    directory (holding `<step>/` directories), or one step directory (returned
    as is). The chosen step directory is checked for the files a restore needs.

    Raises:
      FileNotFoundError: `path` does not exist.
      CheckpointError: no step directory was found, or the newest one lacks a
        file (the message names it). A damaged newest checkpoint is an error,
        never silently replaced by an older one.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(
            f"checkpoint path {p} does not exist; give a run directory, its checkpoints/ directory, "
            "or a checkpoints/<step>/ directory"
        )
    if not p.is_dir():
        raise CheckpointError(
            f"{p} is a file; expected a run directory, its checkpoints/ directory, or a step directory"
        )
    if (p / "checkpoints").is_dir():
        checkpoints = p / "checkpoints"
    elif _looks_like_step(p):
        _check_step(p)
        return p
    else:
        checkpoints = p
    steps = _step_numbers(checkpoints)
    if not steps:
        raise CheckpointError(
            f"no checkpoint under {p}: looked for {p}/checkpoints/<step>/ and {p}/<step>/ "
            f"(a <step> directory holds {CONFIG_FILE}, {TREE_FILE} and {STATE_DIR}/)"
        )
    newest = checkpoints / str(steps[-1])
    _check_step(newest)
    return newest


def _looks_like_step(p: Path) -> bool:
    if any((p / name).exists() for name in (CONFIG_FILE, TREE_FILE, STATE_DIR)):
        return True
    # A step directory emptied by damage: named by digits, no step directories inside.
    return p.name.isdigit() and not _step_numbers(p)


def _step_numbers(checkpoints: Path) -> list[int]:
    """Sorted step numbers of the `<digits>/` directories in `checkpoints`."""
    return sorted(int(c.name) for c in checkpoints.iterdir() if c.is_dir() and c.name.isdigit())


def _check_step(step_dir: Path) -> None:
    required = [step_dir / CONFIG_FILE, step_dir / TREE_FILE, step_dir / STATE_DIR]
    required += [step_dir / STATE_DIR / name for name in _ORBAX_REQUIRED]
    for f in required:
        if not f.exists():
            raise CheckpointError(f"incomplete checkpoint {step_dir}: missing {f}")


# ----------------------------------------------------------------------------- loading


def load_config(step_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Returns the config saved with the checkpoint in `step_dir` (a plain dict)."""
    step_dir = Path(step_dir)
    _check_step(step_dir)
    config = _read_json(step_dir / CONFIG_FILE)
    if not isinstance(config, dict):
        raise CheckpointError(f"{step_dir / CONFIG_FILE} holds a {type(config).__name__}, expected a JSON object")
    return config


def restore_checkpoint(step_dir: str | os.PathLike[str], target: PyTree) -> PyTree:
    """Restores the state saved in `step_dir` into the structure of `target`.

    `target` fixes the pytree structure, shapes, dtypes and leaf types (e.g.
    freshly initialised parameters; `jax.ShapeDtypeStruct` leaves work too).
    Restored leaves are jax arrays placed like the target leaf (its sharding)
    for jax-array and ShapeDtypeStruct targets, numpy arrays for numpy
    targets, Python scalars for Python-scalar targets, and typed PRNG keys
    for key targets (the saved key implementation must equal the target's;
    an abstract key target takes the saved one).

    Raises:
      CheckpointError: incomplete checkpoint (names the missing file), or
        `target` does not match the checkpoint (names the first mismatching
        leaf path and both shapes/dtypes/structures), or unreadable array data.
    """
    step_dir = Path(step_dir).resolve()
    _check_step(step_dir)
    manifest = _read_json(step_dir / TREE_FILE)
    with_paths, treedef = jax.tree_util.tree_flatten_with_path(target)
    if not isinstance(manifest, list) or len(manifest) != len(with_paths):
        saved = len(manifest) if isinstance(manifest, list) else "?"
        raise CheckpointError(
            f"checkpoint {step_dir} holds {saved} leaves but the target has {len(with_paths)}; "
            f"first differing path: {_first_path_difference(manifest, with_paths)}"
        )

    abstract: dict[str, jax.ShapeDtypeStruct] = {}
    for i, ((path, leaf), entry) in enumerate(zip(with_paths, manifest)):
        name = jax.tree_util.keystr(path)
        if entry["path"] != name:
            raise CheckpointError(f"structure mismatch at leaf {i}: checkpoint {entry['path']}, target {name}")
        kind = _kind(leaf)
        if kind != entry["kind"]:
            raise CheckpointError(
                f"leaf {name}: checkpoint holds {_KIND_WORDS.get(entry['kind'], entry['kind'])}, "
                f"target has {_KIND_WORDS[kind]}"
            )
        if kind == "key":
            impl = _key_impl_name(leaf)
            if impl is not None and impl != entry["key_impl"]:
                raise CheckpointError(f"leaf {name}: checkpoint key implementation {entry['key_impl']}, target {impl}")
            shape, dtype = jax.eval_shape(jax.random.key_data, leaf).shape, np.dtype(np.uint32)
        else:
            shape, dtype = (
                tuple(np.shape(leaf)),
                np.dtype(leaf.dtype if hasattr(leaf, "dtype") else np.asarray(leaf).dtype),
            )
        saved_shape, saved_dtype = tuple(entry["shape"]), np.dtype(entry["dtype"])
        if shape != saved_shape:
            raise CheckpointError(f"shape mismatch at leaf {name}: checkpoint {saved_shape}, target {shape}")
        if dtype != saved_dtype:
            raise CheckpointError(f"dtype mismatch at leaf {name}: checkpoint {saved_dtype.name}, target {dtype.name}")
        if np.prod(saved_shape, dtype=int):
            abstract[_leaf_name(i)] = jax.ShapeDtypeStruct(saved_shape, saved_dtype)

    checkpointer = _this_process_checkpointer()
    try:
        arrays = checkpointer.restore(step_dir / STATE_DIR, abstract)
    except Exception as e:  # orbax/tensorstore errors are long multi-line specs
        first_line = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"could not read array data of checkpoint {step_dir}: {first_line}") from e
    finally:
        checkpointer.close()

    leaves = []
    for i, ((_, leaf), entry) in enumerate(zip(with_paths, manifest)):
        name = _leaf_name(i)  # an empty array was never given to orbax (_flatten_for_saving)
        value = arrays[name] if name in abstract else np.zeros(tuple(entry["shape"]), np.dtype(entry["dtype"]))
        leaves.append(_as_target_leaf(value, leaf, entry))
    return jax.tree_util.tree_unflatten(treedef, leaves)


def _as_target_leaf(value: np.ndarray, leaf: Any, entry: Mapping[str, Any]) -> Any:
    value = np.asarray(value)
    kind = _kind(leaf)
    if kind == "scalar":
        return type(leaf)(value.item())
    if isinstance(leaf, np.ndarray):
        return value
    if isinstance(leaf, np.generic):
        return value[()]
    sharding = getattr(leaf, "sharding", None)
    data = jax.device_put(value, sharding) if sharding is not None else jax.numpy.asarray(value)
    if kind == "key":
        return jax.random.wrap_key_data(data, impl=entry["key_impl"])
    return data


def _first_path_difference(manifest: Any, with_paths: list) -> str:
    saved = [e.get("path") for e in manifest] if isinstance(manifest, list) else []
    wanted = [jax.tree_util.keystr(p) for p, _ in with_paths]
    for i in range(max(len(saved), len(wanted))):
        a = saved[i] if i < len(saved) else "<none>"
        b = wanted[i] if i < len(wanted) else "<none>"
        if a != b:
            return f"leaf {i}: checkpoint {a}, target {b}"
    return "none"


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"cannot read {path}: {e}") from None
