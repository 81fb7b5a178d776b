"""Tests of rmuzero/replay/buffer.py: windows are contiguous slices of one env's steps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rmuzero.replay.buffer import StepRecord, make_replay

NUM_ENVS, WINDOW, MAX_LEN, CHUNK, NUM_CHUNKS, SAMPLES, A = 2, 4, 12, 5, 3, 64, 3
EPISODE_LENGTH = (3, 4)  # env 0 restarts every 3 steps, env 1 every 4


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
        carry={"h": jnp.stack([step, 100 * env]).astype(jnp.float32),
               "count": step % length + 1000 * env},
        action_mask=jnp.arange(A) <= step % A,
    )


def _chunk(first_step):
    """Records [NUM_ENVS, CHUNK] for global steps first_step .. first_step + CHUNK - 1."""
    env = jnp.arange(NUM_ENVS)[:, None] * jnp.ones((1, CHUNK), jnp.int32)
    step = first_step + jnp.arange(CHUNK)[None, :] * jnp.ones((NUM_ENVS, 1), jnp.int32)
    return jax.vmap(jax.vmap(_record))(env, step)


REPLAY = make_replay(num_envs=NUM_ENVS, window_length=WINDOW, max_length_per_env=MAX_LEN,
                     min_length_per_env=CHUNK + 1, sample_batch_size=SAMPLES)
ADD = jax.jit(REPLAY.add)
SAMPLE = jax.jit(REPLAY.sample)


@pytest.fixture(scope="module")
def filled():
    """Three chunks of 5 steps into rows of 12: steps 0..2 are overwritten, 3..14 held."""
    state = REPLAY.init(_record(0, 0))
    can_sample = [bool(REPLAY.can_sample(state))]
    for i in range(NUM_CHUNKS):
        state = ADD(state, _chunk(i * CHUNK))
        can_sample.append(bool(REPLAY.can_sample(state)))
    windows = [SAMPLE(state, key) for key in jax.random.split(jax.random.PRNGKey(0), 3)]
    windows = jax.tree.map(lambda *xs: np.concatenate(xs), *windows)
    return can_sample, windows


def test_can_sample_after_min_length(filled):
    can_sample, _ = filled
    assert can_sample == [False, False, True, True]  # min 6 steps: after 0, 5, 10, 15 added


def test_windows_are_contiguous_slices_of_one_env(filled):
    _, windows = filled
    assert windows.obs.shape == (3 * SAMPLES, WINDOW, 2)
    env, step = windows.obs[..., 0], windows.obs[..., 1]
    np.testing.assert_array_equal(env, env[:, :1] * np.ones((1, WINDOW)))
    np.testing.assert_array_equal(np.diff(step, axis=1), 1.0)
    last_step = NUM_CHUNKS * CHUNK - 1
    assert step.min() >= last_step - MAX_LEN + 1 and step.max() <= last_step
    # Sampling reaches both envs and the oldest and newest held windows (192 draws of 18).
    assert set(env[:, 0].astype(int)) == {0, 1}
    assert {last_step - MAX_LEN + 1, last_step - WINDOW + 1} <= set(step[:, 0].astype(int))


def test_every_field_stays_aligned_with_its_observation(filled):
    _, windows = filled
    env = windows.obs[..., 0].astype(np.int32)
    step = windows.obs[..., 1].astype(np.int32)
    expected = jax.vmap(jax.vmap(_record))(env, step)
    for name in ("start", "action", "reward", "discount", "search_policy", "search_value",
                 "action_mask"):
        np.testing.assert_array_equal(getattr(windows, name), getattr(expected, name), err_msg=name)
    np.testing.assert_array_equal(windows.carry["h"], expected.carry["h"])
    np.testing.assert_array_equal(windows.carry["count"], expected.carry["count"])
    # Hand check of the start flags: env 0 restarts at steps divisible by 3, env 1 by 4.
    length = np.where(env == 0, 3, 4)
    np.testing.assert_array_equal(windows.start, step % length == 0)
    assert windows.start.any() and not windows.start.all()


def test_bad_sizes_raise():
    good = dict(num_envs=2, window_length=4, max_length_per_env=12, min_length_per_env=4,
                sample_batch_size=8)
    for change, message in [
        (dict(num_envs=0), "num_envs must be an int >= 1"),
        (dict(window_length=2.0), "window_length must be an int"),
        (dict(min_length_per_env=3), "window_length <= min_length_per_env"),
        (dict(min_length_per_env=13), "min_length_per_env <= max_length_per_env"),
        (dict(period=5), "period must be <= window_length=4"),
    ]:
        with pytest.raises(ValueError, match=message):
            make_replay(**{**good, **change})


def test_bad_records_raise():
    example = _record(0, 0)
    with pytest.raises(ValueError, match=r"obs must be \[F\]"):
        REPLAY.init(example.replace(obs=jnp.zeros((2, 2))))
    with pytest.raises(ValueError, match="start must be bool"):
        REPLAY.init(example.replace(start=jnp.array(1.0)))
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
