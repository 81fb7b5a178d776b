"""Sequence replay of per-step records: a thin layer over flashbax's trajectory buffer.

Dimensions:
  B  number of parallel environments (rows of the buffer), `num_envs`
  T  steps added per call (time-ordered, continuing the previous call)
  S  windows per sample, `sample_batch_size`
  L  window length, `window_length`
  F  observation features
  A  actions

Each environment owns one row; `add` appends records [B, T, ...] along time,
overwriting the oldest once `max_length_per_env` steps are held. `sample`
draws S windows, each L consecutive steps of one row (never across the write
position). Episode boundaries inside a window are marked by `start`; the
stored `carry` lets the learner begin a window mid-episode.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Callable, Optional

import chex
import flashbax
import jax
import jax.numpy as jnp
from flashbax.buffers.trajectory_buffer import TrajectoryBufferState
from flax import struct


@struct.dataclass
class StepRecord:
    """What the actor stores for step t (shapes of one unbatched record).

    Rewards and discounts are those of the transition taken from `obs` with
    `action` (DESIGN.md section 2).
    """

    obs: chex.Array  # [F] observation o_t (float32)
    start: chex.Array  # [] bool: o_t begins an episode (memory cleared before consuming it)
    action: chex.Array  # [] int32: action a_t taken from o_t
    reward: chex.Array  # [] float32: reward r_t of the transition from o_t
    discount: chex.Array  # [] float32: discount d_t of that transition (0 on termination)
    search_policy: chex.Array  # [A] float32: search policy at o_t
    search_value: chex.Array  # [] float32: search value at o_t (acting time, may be stale)
    carry: chex.ArrayTree  # encoder memory carry before consuming o_t (leaves unbatched)
    action_mask: Optional[chex.Array] = None  # [A] bool: legal actions at o_t, or None


ReplayState = TrajectoryBufferState  # TrajectoryBufferState[StepRecord]; experience [B, max_len, ...]

InitFn = Callable[[StepRecord], ReplayState]
AddFn = Callable[[ReplayState, StepRecord], ReplayState]
SampleFn = Callable[[ReplayState, chex.PRNGKey], StepRecord]
CanSampleFn = Callable[[ReplayState], chex.Array]


@dataclasses.dataclass(frozen=True)
class Replay:
    """Pure functions of the replay (all jittable).

    init(example_record) -> state        example_record: one unbatched StepRecord
    add(state, records) -> state         records: StepRecord of [B, T, ...], T <= max_length_per_env
    sample(state, key) -> windows        windows: StepRecord of [S, L, ...]; only when can_sample
    can_sample(state) -> [] bool         at least min_length_per_env steps per env held
    """

    init: InitFn
    add: AddFn
    sample: SampleFn
    can_sample: CanSampleFn


def _check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")


def _describe(tree, drop: int = 0) -> str:
    """Shapes and dtypes of a record's fields on one line (leading `drop` axes left out)."""
    return str(jax.tree.map(lambda x: f"{tuple(jnp.shape(x))[drop:]} {jnp.result_type(x)}", tree))


def _check_example(record: StepRecord) -> None:
    """One-line ValueError unless `record` is one unbatched, well-typed StepRecord."""
    if not isinstance(record, StepRecord):
        raise ValueError(f"init expects a StepRecord, got {type(record).__name__}")
    problems = []
    if jnp.ndim(record.obs) != 1:
        problems.append(f"obs must be [F], got shape {jnp.shape(record.obs)}")
    for name, dtype in (("start", jnp.bool_), ("action", jnp.int32), ("reward", None),
                        ("discount", None), ("search_value", None)):
        value = getattr(record, name)
        if jnp.shape(value) != ():
            problems.append(f"{name} must be a scalar [], got shape {jnp.shape(value)}")
        elif dtype is not None and jnp.result_type(value) != dtype:
            problems.append(f"{name} must be {jnp.dtype(dtype).name}, got {jnp.result_type(value)}")
    if jnp.ndim(record.search_policy) != 1:
        problems.append(f"search_policy must be [A], got shape {jnp.shape(record.search_policy)}")
    elif record.action_mask is not None and (
            jnp.shape(record.action_mask) != jnp.shape(record.search_policy)):
        problems.append(f"action_mask must be [A] = {jnp.shape(record.search_policy)}, "
                        f"got shape {jnp.shape(record.action_mask)}")
    if problems:
        raise ValueError("bad example StepRecord: " + "; ".join(problems))


def make_replay(
    *,
    num_envs: int,
    window_length: int,
    max_length_per_env: int,
    min_length_per_env: int,
    sample_batch_size: int,
    period: int = 1,
) -> Replay:
    """Builds the replay of per-step records.

    Args:
      num_envs: B, rows of the buffer; `add` takes records [B, T, ...].
      window_length: L, steps per sampled window.
      max_length_per_env: steps kept per env (older ones are overwritten).
      min_length_per_env: steps per env before `can_sample` is true; >= L.
      sample_batch_size: S, windows per `sample`.
      period: windows start at multiples of `period` steps after the oldest
        step held; 1 <= period <= L (1: every start possible).

    Raises:
      ValueError: one line naming the bad size and what is valid.
    """
    for name, value in (("num_envs", num_envs), ("window_length", window_length),
                        ("max_length_per_env", max_length_per_env),
                        ("min_length_per_env", min_length_per_env),
                        ("sample_batch_size", sample_batch_size), ("period", period)):
        _check_positive_int(name, value)
    if not window_length <= min_length_per_env <= max_length_per_env:
        raise ValueError(
            "need window_length <= min_length_per_env <= max_length_per_env, got "
            f"{window_length}, {min_length_per_env}, {max_length_per_env}")
    if period > window_length:
        raise ValueError(
            f"period must be <= window_length={window_length} (steps would never be sampled), "
            f"got {period}")

    buffer = flashbax.make_trajectory_buffer(
        add_batch_size=num_envs,
        sample_batch_size=sample_batch_size,
        sample_sequence_length=window_length,
        period=period,
        min_length_time_axis=min_length_per_env,
        max_length_time_axis=max_length_per_env,
    )

    def init(example_record: StepRecord) -> ReplayState:
        _check_example(example_record)
        return buffer.init(example_record)

    def add(state: ReplayState, records: StepRecord) -> ReplayState:
        if not isinstance(records, StepRecord) or (
                jax.tree.structure(records) != jax.tree.structure(state.experience)):
            raise ValueError("add expects a StepRecord with the structure given to init; "
                             f"expected {_describe(state.experience, drop=2)}, "
                             f"got {_describe(records)}")
        records = jax.tree.map(jnp.asarray, records)
        given = [(x.shape, x.dtype) for x in jax.tree.leaves(records)]
        steps = given[0][0][1] if len(given[0][0]) >= 2 else 0
        wanted = [((num_envs, steps) + x.shape[2:], x.dtype)
                  for x in jax.tree.leaves(state.experience)]
        if not 1 <= steps <= max_length_per_env or given != wanted:
            raise ValueError(
                f"add expects records [B={num_envs}, T, ...] with 1 <= T <= "
                f"{max_length_per_env} and per-step shapes/dtypes "
                f"{_describe(state.experience, drop=2)}; got {_describe(records)}")
        return buffer.add(state, records)

    def sample(state: ReplayState, key: chex.PRNGKey) -> StepRecord:
        return buffer.sample(state, key).experience

    return Replay(init=init, add=add, sample=sample, can_sample=buffer.can_sample)
