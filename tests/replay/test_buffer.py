"""Tests of rmuzero/replay/buffer.py: sequences begin at episode starts (or segment boundaries).

Every record is a function of (env, global step), so a sampled step says where
it came from. Env 0 restarts every 4 steps (episodes shorter than a sequence),
env 1 every 10 (longer than a sequence: split in segments). With L = 4 and
burn_in = 1 the segment stride is L - burn_in = 3.

After three chunks of 5 steps into rows of N = 12, global steps 0..2 are
overwritten and 3..14 are held; a sequence must end by step 14, so its first
step is at most 11. By hand:

  env 0 (starts 0, 4, 8, 12): 4 and 8 are eligible; step 3 ends the episode
    whose start (0) was overwritten, so that episode is never sampled; 12 does
    not fit before the write position.
  env 1 (starts 0, 10): 10 is eligible; 3 and 6 are the segment boundaries
    (episode steps 3 and 6) of the episode whose start was overwritten, still
    sampled from their stored carries; 9 (episode step 9) is not, the episode
    ends one step later, inside the burn-in.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rmuzero.replay.buffer import StepRecord, make_replay

NUM_ENVS, SEQUENCE, BURN_IN, MAX_LEN, CHUNK, NUM_CHUNKS, SAMPLES, A = 2, 4, 1, 12, 5, 3, 64, 3
EPISODE_LENGTH = (4, 10)
ELIGIBLE = {0: {4, 8}, 1: {3, 6, 10}}  # global first steps, by hand (module docstring)


def _record(env, step):
    """The record env `env` stores at its global step `step`, everything derived from (env, step)."""
    env = jnp.asarray(env, jnp.int32)
    step = jnp.asarray(step, jnp.int32)
    length = jnp.where(env == 0, EPISODE_LENGTH[0], EPISODE_LENGTH[1])
    return StepRecord(
        obs=jnp.stack([env, step]).astype(jnp.float32),
        start=step % length == 0,
        action=(step + env) % A,
        reward=0.5 * step.astype(jnp.float32) + env,
        discount=jnp.where((step + 1) % length == 0, 0.0, 1.0),
        search_policy=jax.nn.one_hot(step % A, A),
        search_value=-step.astype(jnp.float32),
        carry={"h": jnp.stack([step, 100 * env]).astype(jnp.float32), "count": step % length + 1000 * env},
        episode_step=step % length,
        action_mask=jnp.arange(A) <= step % A,
    )


def _chunk(first_step):
    """Records [NUM_ENVS, CHUNK] for global steps first_step .. first_step + CHUNK - 1."""
    env = jnp.arange(NUM_ENVS)[:, None] * jnp.ones((1, CHUNK), jnp.int32)
    step = first_step + jnp.arange(CHUNK)[None, :] * jnp.ones((NUM_ENVS, 1), jnp.int32)
    return jax.vmap(jax.vmap(_record))(env, step)


REPLAY = make_replay(
    num_envs=NUM_ENVS, sequence_length=SEQUENCE, max_length_per_env=MAX_LEN, sample_batch_size=SAMPLES, burn_in=BURN_IN
)
ADD = jax.jit(REPLAY.add)
SAMPLE = jax.jit(REPLAY.sample)


def _eligible_global_steps(state) -> dict[int, set[int]]:
    """The eligible slots of `state`, named by the global step stored there."""
    eligible = np.asarray(REPLAY.eligible(state))
    steps = np.asarray(state.experience.obs[..., 1]).astype(int)
    return {env: set(steps[env][eligible[env]].tolist()) for env in range(NUM_ENVS)}


@pytest.fixture(scope="module")
def filled():
    state = REPLAY.init(_record(0, 0))
    history = [state]
    for i in range(NUM_CHUNKS):
        state = ADD(state, _chunk(i * CHUNK))
        history.append(state)
    sequences = [SAMPLE(state, key) for key in jax.random.split(jax.random.PRNGKey(0), 3)]
    sequences = jax.tree.map(lambda *xs: np.concatenate(xs), *sequences)
    return history, sequences


def test_eligible_first_steps_by_hand(filled):
    history, _ = filled
    state = history[-1]
    assert bool(state.is_full) and int(state.current_index) == (NUM_CHUNKS * CHUNK) % MAX_LEN
    assert _eligible_global_steps(state) == ELIGIBLE
    # Before the buffer wrapped: steps 0..9 held, first steps up to 6; env 1's boundaries
    # at episode steps 3 and 6 are eligible, and so are the episode starts that fit.
    assert _eligible_global_steps(history[2]) == {0: {0, 4}, 1: {0, 3, 6}}
    assert [bool(REPLAY.can_sample(s)) for s in history] == [False, True, True, True]


def test_sequences_are_contiguous_slices_from_eligible_steps(filled):
    _, sequences = filled
    steps = sequences.steps
    assert steps.obs.shape == (3 * SAMPLES, SEQUENCE, 2)
    env, step = steps.obs[..., 0].astype(int), steps.obs[..., 1].astype(int)
    np.testing.assert_array_equal(env, env[:, :1] * np.ones((1, SEQUENCE), int))
    np.testing.assert_array_equal(np.diff(step, axis=1), 1)
    assert step.max() <= NUM_CHUNKS * CHUNK - 1  # never across the write position
    firsts = {e: set(step[env[:, 0] == e, 0].tolist()) for e in range(NUM_ENVS)}
    assert firsts == ELIGIBLE  # only eligible first steps, and all of them (192 draws of 5)
    # A sequence begins at a start flag unless it is a segment of env 1's long episode.
    starts_mid = ~steps.start[:, 0]
    assert set(zip(env[starts_mid, 0], step[starts_mid, 0])) <= {(1, 3), (1, 6)}


def test_every_field_stays_aligned_with_its_observation(filled):
    _, sequences = filled
    steps = sequences.steps
    env = steps.obs[..., 0].astype(np.int32)
    step = steps.obs[..., 1].astype(np.int32)
    expected = jax.vmap(jax.vmap(_record))(env, step)
    for name in (
        "start",
        "action",
        "reward",
        "discount",
        "search_policy",
        "search_value",
        "episode_step",
        "action_mask",
    ):
        np.testing.assert_array_equal(getattr(steps, name), getattr(expected, name), err_msg=name)
    assert steps.carry is None  # only the carry before the first step travels
    first = jax.vmap(_record)(env[:, 0], step[:, 0])
    np.testing.assert_array_equal(sequences.carry["h"], first.carry["h"])
    np.testing.assert_array_equal(sequences.carry["count"], first.carry["count"])


@pytest.mark.slow
def test_segments_tile_a_long_episode():
    """An episode of 10 steps with L = 4, burn_in = 1: sequences at episode steps 0, 3, 6 whose
    loss positions ([0, 4), then [e + 1, e + 4)) cover steps 0..9 exactly once; none at 9."""
    replay = make_replay(
        num_envs=NUM_ENVS, sequence_length=SEQUENCE, max_length_per_env=24, sample_batch_size=8, burn_in=BURN_IN
    )
    state = replay.add(replay.init(_record(0, 0)), jax.tree.map(lambda x: x[:, :4], _chunk(0)))
    state = replay.add(
        state,
        jax.vmap(jax.vmap(_record))(
            jnp.arange(NUM_ENVS)[:, None] * jnp.ones((1, 16), jnp.int32),
            4 + jnp.arange(16)[None, :] * jnp.ones((NUM_ENVS, 1), jnp.int32),
        ),
    )  # steps 0..19 held
    eligible = np.asarray(replay.eligible(state))
    assert set(np.flatnonzero(eligible[1]).tolist()) == {0, 3, 6, 10, 13, 16}
    covered = []
    for first in (0, 3, 6):
        lo = 0 if first == 0 else BURN_IN
        covered.extend(range(first + lo, first + SEQUENCE))
    assert sorted(covered) == list(range(10))


def test_bad_sizes_raise():
    good = dict(num_envs=2, sequence_length=4, max_length_per_env=12, sample_batch_size=8, burn_in=1)
    for change, message in [
        (dict(num_envs=0), "num_envs must be an int >= 1"),
        (dict(sequence_length=2.0), "sequence_length must be an int"),
        (dict(sequence_length=13), "sequence_length=13 must be <= max_length_per_env=12"),
        (dict(burn_in=4), r"burn_in must be an int in \[0, sequence_length=4\)"),
    ]:
        with pytest.raises(ValueError, match=message):
            make_replay(**{**good, **change})


def test_bad_records_raise():
    example = _record(0, 0)
    with pytest.raises(ValueError, match=r"obs must be \[F\]"):
        REPLAY.init(example.replace(obs=jnp.zeros((2, 2))))
    with pytest.raises(ValueError, match="start must be bool"):
        REPLAY.init(example.replace(start=jnp.array(1.0)))
    with pytest.raises(ValueError, match="episode_step must be int32"):
        REPLAY.init(example.replace(episode_step=jnp.array(1.0)))
    with pytest.raises(ValueError, match=r"action_mask must be \[A\]"):
        REPLAY.init(example.replace(action_mask=jnp.ones(A + 1, bool)))
    state = REPLAY.init(example)
    chunk = _chunk(0)
    with pytest.raises(ValueError, match=r"records \[B=2, T, \.\.\.\].*obs='\(1, 5, 2\)"):
        REPLAY.add(state, jax.tree.map(lambda x: x[:1], chunk))
    with pytest.raises(ValueError, match="1 <= T <= 12"):
        REPLAY.add(state, jax.tree.map(lambda x: jnp.concatenate([x, x, x], axis=1), chunk))
    with pytest.raises(ValueError, match="structure given to init"):
        REPLAY.add(state, chunk.replace(action_mask=None))


def test_without_carries_sequences_begin_at_start_flags_and_the_rest_is_kept():
    """`store_carries=False` (every episode fits a sequence): the same adds hold the same records
    but no carry bytes; only start flags are eligible (env 1's boundaries 3 and 6 would need
    their carries), and a sequence's carry is zeros of the stored carry's shape and dtype."""
    replay = make_replay(
        num_envs=NUM_ENVS,
        sequence_length=SEQUENCE,
        max_length_per_env=MAX_LEN,
        sample_batch_size=SAMPLES,
        burn_in=BURN_IN,
        store_carries=False,
    )
    state = replay.init(_record(0, 0))
    with_carries = REPLAY.init(_record(0, 0))
    for i in range(NUM_CHUNKS):
        state = jax.jit(replay.add)(state, _chunk(i * CHUNK))
        with_carries = ADD(with_carries, _chunk(i * CHUNK))
    assert sum(x.nbytes for x in jax.tree.leaves(state.experience.carry)) == 0
    for name in (
        "obs",
        "start",
        "action",
        "reward",
        "discount",
        "search_policy",
        "search_value",
        "episode_step",
        "action_mask",
    ):
        np.testing.assert_array_equal(getattr(state.experience, name), getattr(with_carries.experience, name))
    eligible = np.asarray(replay.eligible(state))
    steps_held = np.asarray(state.experience.obs[..., 1]).astype(int)
    assert {env: set(steps_held[env][eligible[env]].tolist()) for env in range(NUM_ENVS)} == {0: {4, 8}, 1: {10}}

    sequences = jax.jit(replay.sample)(state, jax.random.PRNGKey(0))
    env, step = (np.asarray(sequences.steps.obs[..., i]).astype(int) for i in (0, 1))
    assert set(zip(env[:, 0].tolist(), step[:, 0].tolist())) == {(0, 4), (0, 8), (1, 10)}
    assert bool(np.all(sequences.steps.start[:, 0]))
    expected = jax.vmap(jax.vmap(_record))(env, step)
    np.testing.assert_array_equal(sequences.steps.reward, expected.reward)
    stored = SAMPLE(with_carries, jax.random.PRNGKey(0)).carry
    for leaf, like in zip(jax.tree.leaves(sequences.carry), jax.tree.leaves(stored)):
        assert leaf.shape == like.shape and leaf.dtype == like.dtype
        np.testing.assert_array_equal(leaf, 0)
    with pytest.raises(ValueError, match="per-step shapes/dtypes"):  # a wrong carry is still refused
        replay.add(
            state,
            _chunk(0).replace(
                carry={"h": jnp.zeros((NUM_ENVS, CHUNK, 3)), "count": jnp.zeros((NUM_ENVS, CHUNK), jnp.int32)}
            ),
        )


def test_the_state_keeps_its_types_through_adds(filled):
    """No leaf of the replay state is weakly typed (flashbax's init makes the write position
    one), and adds keep every leaf's dtype: train() compiles the training step from the state's
    shapes on a thread, and a weak leaf made the real call compile it a second time
    (tests/agent/test_reliability.py counts the compilations)."""
    history, _ = filled

    def types(state):
        return [(x.dtype, x.weak_type) for x in jax.tree.leaves(state)]

    assert not any(weak for _, weak in types(history[0]))
    assert all(types(state) == types(history[0]) for state in history[1:])
