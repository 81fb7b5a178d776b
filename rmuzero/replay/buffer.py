"""Sequence replay of per-step records: flashbax stores, sequences begin at episode starts.

Dimensions:
  B  number of parallel environments (rows of the buffer), `num_envs`
  N  steps kept per environment, `max_length_per_env`
  T  steps added per call (time-ordered, continuing the previous call)
  S  sequences per sample, `sample_batch_size`
  L  sequence length, `sequence_length`
  F  observation features
  A  actions

Each environment owns one row of flashbax's trajectory buffer; `add` appends
records [B, T, ...] along time, overwriting the oldest once N steps are held.

`sample` draws S sequences of L consecutive steps of one row, uniformly over
the *eligible first steps* (the memoroid paper's tape batching): a sequence
begins

  * at an episode's first step (`start` set): the learner encodes it from the
    identity with its current parameters, so every step of that episode in the
    sequence is reachable by the gradient; episodes shorter than L are followed
    by the next ones, start flags inside; or
  * for an episode longer than the sequence, at a *segment boundary*: episode
    step e = j (L - burn_in), j >= 1, when the episode still goes on burn_in
    steps later. Such a sequence starts from the actor's stored carry; its first
    burn_in steps only warm up the memory, and the segments' loss positions
    [e + burn_in, e + L) tile the episode after its first L steps.

A sequence never crosses the write position and never reads an unwritten step.
As the buffer wraps, an episode whose first step is overwritten can no longer
be sampled from its start: only its later segment boundaries (if it is longer
than L) remain eligible, with their stored carries.

Only a segment boundary reads its stored carry: a start flag clears the memory
before the first step. Where every episode fits a sequence (no boundary can
exist), `make_replay(store_carries=False)` keeps no carries: their leaves are
stored behind a zero-length axis (shape and dtype kept, no bytes), `sample`
returns zeros in their place, and only start flags are eligible.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple, Optional

import chex
import flashbax
import jax
import jax.numpy as jnp
from flashbax.buffers.trajectory_buffer import TrajectoryBufferState
from flax import struct

from rmuzero.validation import is_int


@struct.dataclass
class StepRecord:
    """What the actor stores for step t (shapes of one unbatched record).

    Rewards and discounts are those of the transition taken from `obs` with
    `action` (docs/design.md section 2).
    """

    obs: chex.Array  # [F] observation o_t (float32), or a tree of arrays in their own dtypes (pixels stay uint8)
    start: chex.Array  # [] bool: o_t begins an episode (memory cleared before consuming it)
    action: chex.Array  # [] int32: action a_t taken from o_t
    reward: chex.Array  # [] float32: reward r_t of the transition from o_t
    discount: chex.Array  # [] float32: discount d_t of that transition (0 on termination)
    search_policy: chex.Array  # [A] float32: search policy at o_t
    search_value: chex.Array  # [] float32: search value at o_t (acting time, may be stale)
    carry: chex.ArrayTree  # encoder memory carry before consuming o_t (leaves unbatched)
    episode_step: chex.Array  # [] int32: index of o_t in its episode (0 where start)
    action_mask: Optional[chex.Array] = None  # [A] bool: legal actions at o_t, or None


class Sequences(NamedTuple):
    """A sampled batch: S sequences of L steps and the memory carry before each."""

    steps: StepRecord  # fields [S, L, ...]; `carry` is None (only the first one is kept)
    carry: chex.ArrayTree  # leaves [S, ...]: the stored encoder carry before step 0


ReplayState = TrajectoryBufferState  # TrajectoryBufferState[StepRecord]; experience [B, max_len, ...]

InitFn = Callable[[StepRecord], ReplayState]
AddFn = Callable[[ReplayState, StepRecord], ReplayState]
SampleFn = Callable[[ReplayState, chex.PRNGKey], Sequences]
EligibleFn = Callable[[ReplayState], chex.Array]
CanSampleFn = Callable[[ReplayState], chex.Array]


@dataclasses.dataclass(frozen=True)
class Replay:
    """Pure functions of the replay (all jittable).

    init(example_record) -> state        example_record: one unbatched StepRecord
    add(state, records) -> state         records: StepRecord of [B, T, ...], T <= max_length_per_env
    sample(state, key) -> Sequences      S sequences of L steps; only when can_sample
    can_sample(state) -> [] bool         some first step is eligible
    eligible(state) -> [B, N] bool       the buffer slots a sequence may begin at
    """

    init: InitFn
    add: AddFn
    sample: SampleFn
    can_sample: CanSampleFn
    eligible: EligibleFn


def _describe(tree, drop: int = 0) -> str:
    """Shapes and dtypes of a record's fields on one line (leading `drop` axes left out)."""
    return str(jax.tree.map(lambda x: f"{tuple(jnp.shape(x))[drop:]} {jnp.result_type(x)}", tree))


def _check_example(record: StepRecord) -> None:
    """One-line ValueError unless `record` is one unbatched, well-typed StepRecord."""
    if not isinstance(record, StepRecord):
        raise ValueError(f"init expects a StepRecord, got {type(record).__name__}")
    problems = []
    if not jax.tree.leaves(record.obs) or (hasattr(record.obs, "ndim") and jnp.ndim(record.obs) != 1):
        problems.append(f"obs must be [F] or a tree of arrays, got {_describe(record.obs)}")
    for name, dtype in (
        ("start", jnp.bool_),
        ("action", jnp.int32),
        ("episode_step", jnp.int32),
        ("reward", None),
        ("discount", None),
        ("search_value", None),
    ):
        value = getattr(record, name)
        if jnp.shape(value) != ():
            problems.append(f"{name} must be a scalar [], got shape {jnp.shape(value)}")
        elif dtype is not None and jnp.result_type(value) != dtype:
            problems.append(f"{name} must be {jnp.dtype(dtype).name}, got {jnp.result_type(value)}")
    if jnp.ndim(record.search_policy) != 1:
        problems.append(f"search_policy must be [A], got shape {jnp.shape(record.search_policy)}")
    elif record.action_mask is not None and (jnp.shape(record.action_mask) != jnp.shape(record.search_policy)):
        problems.append(
            f"action_mask must be [A] = {jnp.shape(record.search_policy)}, got shape {jnp.shape(record.action_mask)}"
        )
    if problems:
        raise ValueError("bad example StepRecord: " + "; ".join(problems))


def make_replay(
    *,
    num_envs: int,
    sequence_length: int,
    max_length_per_env: int,
    sample_batch_size: int,
    burn_in: int = 0,
    store_carries: bool = True,
) -> Replay:
    """Builds the replay of per-step records.

    Args:
      num_envs: B, rows of the buffer; `add` takes records [B, T, ...].
      sequence_length: L, steps per sampled sequence.
      max_length_per_env: N, steps kept per env (older ones are overwritten); >= L.
      sample_batch_size: S, sequences per `sample`.
      burn_in: leading steps of a sequence that begins mid-episode (at a stored
        carry) which only warm up the memory; 0 <= burn_in < L. It sets the
        segment boundaries of episodes longer than L (module docstring).
      store_carries: keep each step's memory carry. False where no episode is
        longer than L: sequences then begin at start flags only (which clear
        the memory), and the carries, most of a record's bytes, are not kept.

    Raises:
      ValueError: one line naming the bad size and what is valid.
    """
    for name, value in (
        ("num_envs", num_envs),
        ("sequence_length", sequence_length),
        ("max_length_per_env", max_length_per_env),
        ("sample_batch_size", sample_batch_size),
    ):
        if not is_int(value) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    if not is_int(burn_in) or not 0 <= burn_in < sequence_length:
        raise ValueError(f"burn_in must be an int in [0, sequence_length={sequence_length}), got {burn_in!r}")
    if sequence_length > max_length_per_env:
        raise ValueError(f"sequence_length={sequence_length} must be <= max_length_per_env={max_length_per_env}")

    buffer = flashbax.make_trajectory_buffer(
        add_batch_size=num_envs,
        sample_batch_size=sample_batch_size,
        sample_sequence_length=sequence_length,
        period=1,
        min_length_time_axis=sequence_length,
        max_length_time_axis=max_length_per_env,
    )
    stride = sequence_length - burn_in  # episode steps between segment boundaries

    def kept(records: StepRecord, axis: int) -> StepRecord:
        """`records` as stored: without `store_carries`, each carry leaf [..., *shape] becomes
        an empty [..., 0, *shape] (the zero-length axis after the first `axis` axes)."""
        if store_carries:
            return records
        return records.replace(
            carry=jax.tree.map(
                lambda x: jnp.zeros(jnp.shape(x)[:axis] + (0,) + jnp.shape(x)[axis:], jnp.result_type(x)), records.carry
            )
        )

    def init(example_record: StepRecord) -> ReplayState:
        _check_example(example_record)
        # No weakly typed leaf (flashbax's write position is one, a record's may be): a jitted
        # step compiled from the state's shapes and called with the state must see one type.
        return jax.tree.map(lambda x: jnp.asarray(x, x.dtype), buffer.init(kept(example_record, 0)))

    def add(state: ReplayState, records: StepRecord) -> ReplayState:
        if not isinstance(records, StepRecord) or (jax.tree.structure(records) != jax.tree.structure(state.experience)):
            raise ValueError(
                "add expects a StepRecord with the structure given to init; "
                f"expected {_describe(state.experience, drop=2)}, "
                f"got {_describe(records)}"
            )
        records = kept(jax.tree.map(jnp.asarray, records), 2)
        given = [(x.shape, x.dtype) for x in jax.tree.leaves(records)]
        steps = given[0][0][1] if len(given[0][0]) >= 2 else 0
        wanted = [((num_envs, steps) + x.shape[2:], x.dtype) for x in jax.tree.leaves(state.experience)]
        if not 1 <= steps <= max_length_per_env or given != wanted:
            raise ValueError(
                f"add expects records [B={num_envs}, T, ...] with 1 <= T <= "
                f"{max_length_per_env} and per-step shapes/dtypes "
                f"{_describe(state.experience, drop=2)}; got {_describe(records)}"
            )
        return buffer.add(state, records)

    def eligible(state: ReplayState) -> chex.Array:
        slot = jnp.arange(max_length_per_env)  # [N] physical slot
        held = jnp.where(state.is_full, max_length_per_env, state.current_index)
        oldest = jnp.where(state.is_full, state.current_index, 0)
        age = (slot - oldest) % max_length_per_env  # [N] 0 for the oldest step held
        fits = age + sequence_length <= held  # written through its last step, behind the write position
        start = state.experience.start  # [B, N]
        episode_step = state.experience.episode_step  # [B, N]
        after = (slot[:, None] + jnp.arange(1, burn_in + 1)[None, :]) % max_length_per_env  # [N, burn_in]
        episode_goes_on = ~jnp.any(start[:, after], axis=-1)  # [B, N]: no start in the burn-in
        boundary = (episode_step > 0) & (episode_step % stride == 0) & episode_goes_on
        return fits[None, :] & (start | (boundary & store_carries))

    def sample(state: ReplayState, key: chex.PRNGKey) -> Sequences:
        count = jnp.cumsum(eligible(state).reshape(-1).astype(jnp.int32))  # [B * N]
        draw = jax.random.randint(key, (sample_batch_size,), 0, jnp.maximum(count[-1], 1))
        flat = jnp.searchsorted(count, draw, side="right")  # the (draw + 1)-th eligible slot
        row, first = flat // max_length_per_env, flat % max_length_per_env
        positions = (first[:, None] + jnp.arange(sequence_length)[None, :]) % max_length_per_env
        experience = state.experience
        steps = jax.tree.map(lambda x: x[row[:, None], positions], experience.replace(carry=None))
        if store_carries:
            carry = jax.tree.map(lambda x: x[row, first], experience.carry)
        else:  # every sequence begins at a start flag, which clears whatever carry comes in
            carry = jax.tree.map(lambda x: jnp.zeros((sample_batch_size,) + x.shape[3:], x.dtype), experience.carry)
        return Sequences(steps=steps, carry=carry)

    def can_sample(state: ReplayState) -> chex.Array:
        return jnp.any(eligible(state))

    return Replay(init=init, add=add, sample=sample, can_sample=can_sample, eligible=eligible)
