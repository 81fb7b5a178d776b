"""Other suites' environments as jumanji environments without auto-reset.

Every environment the agent trains on goes through one wrapper stack
(:func:`rmuzero.envs.wrappers.wrap_env`: auto-reset, start flags, previous
action / reward features); this module turns what other suites give into the
environment that stack takes:

- :class:`GymnaxEnvironment`: a gymnax ``(env, params)`` pair (gymnax's own
  environments, POPGym Arcade's, bsuite's and MinAtar's through gymnax). Its
  ``step`` is gymnax's ``Environment.step`` without the auto-reset: the same
  key split, ``step_env`` on the first half; the second half is the key of the
  reset that follows an episode's end (:meth:`GymnaxEnvironment.auto_reset`),
  so a batch of these steps exactly as gymnax's own ``step`` does, reset
  included. Termination ends with discount 0; the time limit
  (``state.time >= params.max_steps_in_episode``) with discount 1, so the
  value target bootstraps there (``rmuzero.replay.targets``). Both gymnax
  flavours are read the same way: gymnax 1.0 (whose ``step`` reports
  ``truncated``) and stable-gymnax 0.0.1 (POPGym Arcade's, whose ``done`` and
  ``discount`` count the time limit as a termination): ``step_env`` runs with
  the limit lifted, so its ``done`` is the task's own end, and the limit is
  checked on the new state's ``time``. POPGym Arcade's environments keep their
  limit outside the parameters and report ``info["truncated"]``.
- :class:`JumanjiAdapter`: a jumanji environment whose actions are discrete
  or multi-discrete, or whose observation is a named tuple. Multi-discrete
  actions become one integer (row-major over ``num_values``), a mask with the
  action's shape becomes a flat ``[A]`` mask inside a
  :class:`~rmuzero.envs.wrappers.MaskedObservation`, and a named-tuple
  observation becomes a dict of its fields (the mask left out).

Dimensions: A actions (the flattened count).
"""

from __future__ import annotations

import math
from typing import Any

import chex
import jax
import jax.numpy as jnp
import jumanji
import numpy as np
from flax import struct
from jumanji import specs
from jumanji.types import TimeStep, restart, termination, transition, truncation

from rmuzero.envs.wrappers import MaskedObservation

__all__ = ["EnvError", "GymnaxEnvironment", "GymnaxState", "JumanjiAdapter", "observation_spec_of"]


class EnvError(ValueError):
    """An environment cannot be built or used by this agent; the message says why and what is valid."""


@struct.dataclass
class GymnaxState:
    """The gymnax state with the keys the jumanji interface carries in the state."""

    env_state: Any  # the gymnax environment's own state
    key: chex.PRNGKey  # source of the next step's key
    reset_key: chex.PRNGKey  # the key of the reset after this step, if the episode ended (gymnax's rule)


def _space_to_spec(space: Any, name: str) -> specs.Spec:
    """A gymnax space (Box, Discrete, Dict, Tuple) as a jumanji spec of the same shape and dtype."""
    kind = type(space).__name__
    if kind == "Discrete":
        return specs.DiscreteArray(int(space.n), dtype=jnp.int32, name=name)
    if kind == "Box":
        return specs.Array(tuple(space.shape), jnp.dtype(space.dtype), name=name)
    if kind == "Dict":
        return {key: _space_to_spec(value, key) for key, value in space.spaces.items()}
    if kind == "Tuple":
        return tuple(_space_to_spec(value, f"{name}_{i}") for i, value in enumerate(space.spaces))
    raise EnvError(f"gymnax space {kind} of {name} is not supported; valid: Discrete, Box, Dict, Tuple")


_NO_LIMIT = 2**31 - 1  # max_steps_in_episode while stepping: the time limit is checked apart


class GymnaxEnvironment(jumanji.Environment):
    """A gymnax ``(env, params)`` as a jumanji environment (no auto-reset).

    ``reset(key)``: ``state_key, k = split(key)``, then ``env.reset_env(k, params)``.
    ``step(state, a)``: ``k, key = split(state.key)`` then exactly gymnax's
    ``step(k, ...)`` up to its auto-reset: ``key_step, key_reset = split(k)``,
    ``step_env(key_step, ...)``, ``truncated = is_truncated(...)`` (False for
    environments whose state has no ``time``: POPGym Arcade ends its episodes
    itself, by termination); ``key_reset`` is kept for the auto-reset.
    """

    def __init__(self, env: Any, params: Any, *, name: str = ""):
        self.env = env
        self.params = params
        self.name = name or type(env).__name__
        action_space = env.action_space(params)
        if type(action_space).__name__ != "Discrete":
            raise EnvError(
                f"{self.name} has a {type(action_space).__name__} action space; this agent plans over discrete "
                "actions (a gymnax Discrete space)"
            )
        self.num_actions = int(action_space.n)
        self._observation_spec = _space_to_spec(env.observation_space(params), "observation")
        _, state = jax.eval_shape(env.reset_env, jax.random.PRNGKey(0), params)
        # The time limit is checked here when the parameters hold it and the state counts time.
        self._limit_in_params = hasattr(state, "time") and hasattr(params, "max_steps_in_episode")
        self._lifted = params.replace(max_steps_in_episode=_NO_LIMIT) if self._limit_in_params else params
        limit = next(
            (
                value
                for value in (
                    getattr(env, "max_episode_length", None),
                    getattr(env, "max_steps_in_episode", None),
                    getattr(params, "max_steps_in_episode", None),
                )
                if isinstance(value, (int, np.integer)) and value > 1
            ),
            None,
        )
        self.max_episode_length = None if limit is None else int(limit)
        super().__init__()

    def __repr__(self) -> str:
        return f"GymnaxEnvironment({self.name})"

    def reset(self, key: chex.PRNGKey) -> tuple[GymnaxState, TimeStep]:
        state_key, reset_key = jax.random.split(key)
        obs, env_state = self.env.reset_env(reset_key, self.params)
        return GymnaxState(env_state, state_key, state_key), restart(obs, extras={})

    def auto_reset(self, state: GymnaxState) -> tuple[GymnaxState, TimeStep]:
        """The reset after an episode's end, as gymnax's ``step`` does it: ``reset_env`` with
        the step's ``key_reset``; the key chain goes on unbroken."""
        obs, env_state = self.env.reset_env(state.reset_key, self.params)
        return GymnaxState(env_state, state.key, state.key), restart(obs, extras={})

    def step(self, state: GymnaxState, action: chex.Array) -> tuple[GymnaxState, TimeStep]:
        key, k = jax.random.split(state.key)
        key_step, key_reset = jax.random.split(k)
        obs, env_state, reward, done, info = self.env.step_env(key_step, state.env_state, action, self._lifted)
        done = jnp.asarray(done, bool)
        if self._limit_in_params:
            truncated = (env_state.time >= self.params.max_steps_in_episode) & ~done
        elif isinstance(info, dict) and "truncated" in info:  # POPGym Arcade
            truncated = jnp.asarray(info["truncated"], bool) & done
        else:
            truncated = jnp.asarray(False)
        terminated = done & ~truncated
        reward = jnp.asarray(reward, jnp.float32)
        timestep = jax.lax.switch(
            jnp.where(terminated, 2, jnp.where(truncated, 1, 0)),
            [
                lambda: transition(reward, obs, extras={}),
                lambda: truncation(reward, obs, extras={}),
                lambda: termination(reward, obs, extras={}),
            ],
        )
        return GymnaxState(env_state, key, key_reset), timestep

    @property
    def observation_spec(self) -> specs.Spec:
        return self._observation_spec

    @property
    def action_spec(self) -> specs.DiscreteArray:
        return specs.DiscreteArray(self.num_actions, dtype=jnp.int32, name="action")


def _fields(observation: Any) -> dict[str, Any] | None:
    """A named tuple's (or dataclass's) fields as a dict; None for an array."""
    if hasattr(observation, "_asdict"):
        return dict(observation._asdict())
    if hasattr(observation, "__dataclass_fields__"):
        return {name: getattr(observation, name) for name in observation.__dataclass_fields__}
    return None


class JumanjiAdapter(jumanji.Environment):
    """A jumanji environment with multi-discrete actions flattened, its action mask
    moved into a :class:`MaskedObservation` and a named-tuple observation as a dict.

    A ``MultiDiscreteArray(num_values=[n_1, ..., n_k])`` action becomes one integer in
    ``[0, n_1 * ... * n_k)``, row-major (``jnp.unravel_index``); a mask of shape ``[A]`` or
    ``[n_1, ..., n_k]`` is flattened the same way. Other masks (one per action dimension)
    cannot say which joint actions are legal and are refused.
    """

    def __init__(self, env: jumanji.Environment, *, name: str = ""):
        self.env = env
        self.name = name or type(env).__name__
        action_spec = env.action_spec
        if isinstance(action_spec, specs.DiscreteArray):
            self.action_shape: tuple[int, ...] = ()
            self.num_actions = int(action_spec.num_values)
        elif isinstance(action_spec, specs.MultiDiscreteArray):
            self.action_shape = tuple(int(n) for n in np.asarray(action_spec.num_values).reshape(-1))
            if np.asarray(action_spec.num_values).ndim != 1:
                raise EnvError(
                    f"{self.name}: multi-discrete actions of num_values shape "
                    f"{np.shape(action_spec.num_values)}; valid: one axis of sizes"
                )
            self.num_actions = math.prod(self.action_shape)
        else:
            raise EnvError(
                f"{self.name} has a {type(action_spec).__name__} action spec; this agent plans over discrete "
                "actions (specs.DiscreteArray or specs.MultiDiscreteArray)"
            )
        self.max_episode_length = getattr(env, "max_episode_length", None) or getattr(env, "time_limit", None)
        _, timestep = jax.eval_shape(env.reset, jax.random.PRNGKey(0))
        fields = _fields(timestep.observation)
        self._mask_field = "action_mask" if fields is not None and "action_mask" in fields else None
        if self._mask_field is not None:
            shape = tuple(fields["action_mask"].shape)
            if shape not in ((self.num_actions,), self.action_shape or (self.num_actions,)):
                raise EnvError(
                    f"{self.name}: action_mask of shape {shape} does not match the actions "
                    f"{self.action_shape or (self.num_actions,)}; valid: a mask of every (joint) action"
                )
        converted = jax.eval_shape(lambda key: self._convert(env.reset(key)[1].observation), jax.random.PRNGKey(0))
        self._observation_spec = jax.tree.map(lambda x: specs.Array(tuple(x.shape), x.dtype), converted)
        super().__init__()

    def __repr__(self) -> str:
        return f"JumanjiAdapter({self.name})"

    def _convert(self, observation: Any) -> Any:
        fields = _fields(observation)
        if fields is None:
            return observation
        mask = fields.pop(self._mask_field) if self._mask_field else None
        features = fields if len(fields) != 1 else next(iter(fields.values()))
        if mask is None:
            return features
        return MaskedObservation(features, jnp.reshape(mask, (self.num_actions,)).astype(bool))

    def _timestep(self, timestep: TimeStep) -> TimeStep:
        return timestep.replace(
            observation=self._convert(timestep.observation),
            extras={},
            reward=jnp.asarray(timestep.reward, jnp.float32),
            discount=jnp.asarray(timestep.discount, jnp.float32),
        )

    def reset(self, key: chex.PRNGKey) -> tuple[Any, TimeStep]:
        state, timestep = self.env.reset(key)
        return state, self._timestep(timestep)

    def step(self, state: Any, action: chex.Array) -> tuple[Any, TimeStep]:
        if self.action_shape:
            action = jnp.stack(jnp.unravel_index(action, self.action_shape), axis=-1).astype(jnp.int32)
        state, timestep = self.env.step(state, action)
        return state, self._timestep(timestep)

    @property
    def observation_spec(self) -> specs.Spec:
        return self._observation_spec

    @property
    def action_spec(self) -> specs.DiscreteArray:
        return specs.DiscreteArray(self.num_actions, dtype=jnp.int32, name="action")


def observation_spec_of(env: jumanji.Environment) -> Any:
    """The observation an environment's ``reset`` returns, as ``jax.ShapeDtypeStruct`` leaves."""
    _, timestep = jax.eval_shape(env.reset, jax.random.PRNGKey(0))
    return timestep.observation
