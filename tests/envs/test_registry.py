"""Tests of ``rmuzero.envs.registry``: every registered name builds at every
difficulty, observations are float32 of the spec's shape, and jumanji's own
AutoResetWrapper / VmapWrapper run on each environment."""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import popgym
import pytest
from jumanji import specs
from jumanji.wrappers import AutoResetWrapper, VmapWrapper
from test_popgym_control_grid import ALL_FAMILIES

from rmuzero.envs import DIFFICULTIES, list_envs, make

NAMES = list_envs()
WRAPPED_IN_THE_GRID_TESTS = set(ALL_FAMILIES)


def test_names_are_the_reference_families():
    """Second source: the reference package's module files, one per family."""
    reference_dir = pathlib.Path(popgym.__file__).parent / "envs"
    families = sorted(p.stem for p in reference_dir.glob("*.py") if p.stem != "__init__")
    assert NAMES == sorted(NAMES)
    assert NAMES == ["popgym/" + family for family in families]
    assert DIFFICULTIES == ("easy", "medium", "hard")


def test_unknown_name_lists_valid_choices():
    with pytest.raises(ValueError) as info:
        make("popgym/repeat_previos")
    message = str(info.value)
    assert "'popgym/repeat_previos'" in message
    assert all(name in message for name in NAMES)
    with pytest.raises(ValueError, match="valid names"):
        make("repeat_previous")  # the prefix is part of the name


def test_unknown_difficulty_lists_valid_choices():
    with pytest.raises(ValueError, match=r"unknown difficulty 'Easy' .*valid: easy, medium, hard"):
        make("popgym/repeat_previous", difficulty="Easy")


@pytest.mark.parametrize("name", NAMES)
def test_builds_at_every_difficulty_with_float32_observations(name):
    for difficulty in DIFFICULTIES:
        env = make(name, difficulty)
        spec = env.observation_spec
        assert isinstance(env.action_spec, specs.DiscreteArray), (name, difficulty)
        assert len(spec.shape) == 1 and spec.dtype == jnp.float32, (name, difficulty, spec)
        state, timestep = jax.eval_shape(env.reset, jax.random.PRNGKey(0))
        assert timestep.observation.shape == spec.shape, (name, difficulty)
        assert timestep.observation.dtype == jnp.float32, (name, difficulty)
        action = jax.ShapeDtypeStruct((), env.action_spec.dtype)
        _, next_timestep = jax.eval_shape(env.step, state, action)
        assert next_timestep.observation.shape == spec.shape, (name, difficulty)
        assert next_timestep.observation.dtype == jnp.float32, (name, difficulty)
        assert next_timestep.reward.shape == () and next_timestep.discount.shape == ()


@pytest.mark.parametrize("name", [n for n in NAMES if n.split("/")[1] not in WRAPPED_IN_THE_GRID_TESTS])
@pytest.mark.slow
def test_jumanji_auto_reset_and_vmap_wrappers_run(name):
    """The families tests/envs/test_popgym_control_grid.py does not wrap (it checks the same, and
    the auto-reset, for the control and grid families)."""
    env = make(name, "easy")
    batched = VmapWrapper(AutoResetWrapper(env))
    num_envs, num_steps = 2, 4
    num_actions = int(env.action_spec.num_values)

    def rollout(key):
        reset_key, action_key = jax.random.split(key)
        state, timestep = batched.reset(jax.random.split(reset_key, num_envs))
        actions = jax.random.randint(action_key, (num_steps, num_envs), 0, num_actions)

        def body(state, action):
            state, timestep = batched.step(state, action)
            return state, (timestep.observation, timestep.reward, timestep.discount)

        _, (obs, reward, discount) = jax.lax.scan(body, state, actions)
        return timestep.observation, obs, reward, discount

    key = jax.random.PRNGKey(0)
    # This test checks behaviour, not speed: XLA's backend optimisations are
    # switched off, which halves the compile time of each family on CPU.
    compiled = jax.jit(rollout).lower(key).compile({"xla_backend_optimization_level": 0})
    first_obs, obs, reward, discount = jax.device_get(compiled(key))
    size = env.observation_spec.shape[0]
    assert first_obs.shape == (num_envs, size) and first_obs.dtype == np.float32
    assert obs.shape == (num_steps, num_envs, size) and obs.dtype == np.float32
    assert reward.shape == discount.shape == (num_steps, num_envs)
    assert np.isfinite(obs).all() and np.isfinite(reward).all()
    assert ((discount == 0) | (discount == 1)).all()
    # Every return lies in about [-1, 1] (docs/design.md section 5): per step, too.
    assert (np.abs(reward) <= 1.0 + 1e-6).all(), reward
