"""The agent-side environment stack: one place owns auto-reset, start flags,
previous action / reward features, episode metrics and batching.

Dimensions: B environments (``num_envs``), A actions, F agent features
(``obs_size`` = environment features + A if ``prev_action`` + 1 if
``prev_reward``).

Stack, innermost first: the jumanji environment (no auto-reset) -> a batched
auto-reset with exactly the semantics (and random keys) of
``jumanji.wrappers.VmapWrapper(jumanji.wrappers.AutoResetWrapper(env))``
(tested equal) -> this module (features, start flags, episode metrics). Why
not jumanji's stack itself: under ``vmap`` its per-environment ``lax.cond``
becomes a select, so every step of every environment also runs ``reset``; a
card deck shuffle then costs ~100x the step itself (RepeatPrevious, 1024 envs,
CPU: 0.12M vs 20M steps/s). Here one batch-level ``lax.cond`` runs the reset
only on steps where some environment finished (fixed-length tasks: once per
episode; with many environments of random lengths it runs on most steps,
costing what jumanji's stack costs).

Start flag (docs/design.md section 2), owned by :func:`start_flag`:
``start_t = timestep.first() | timestep.last()``. It marks the observation that
begins an episode: the first observation after ``reset`` and every auto-reset
timestep, whose observation is the *new* episode's first observation while its
reward / discount / ``last`` belong to the *old* episode's terminal transition.
The memory is cleared before consuming an observation with ``start`` set.

Which reward goes with which observation. ``step(state, a_t)`` returns the
reward ``r_t`` and discount ``d_t`` of the transition taken *from* ``o_t``
(the observation of the previous ``AgentStep``) together with the next
observation. Replay stores them with ``o_t``: the record at index ``t`` is
``(prev.obs, prev.start, a_t, new.reward, new.discount, new.last)`` where
``prev`` is the AgentStep that carried ``o_t`` and ``new`` the one returned by
``step(state, a_t)``. The seed's example (observation = step number, an episode
is ``0 -> 1 -> 2``, the terminal observation 2 is never shown):

=========== ============== ===== ===== ====== ======== ======================
call        returned obs   start last  reward discount episode_* (return/len)
=========== ============== ===== ===== ====== ======== ======================
reset       o=0 (ep 1)     True  False 0      1        0 / 0, done False
step(a0)    o=1            False False r0     1        0 / 0, done False
step(a1)    o=0 (ep 2)     True  True  r1     0        r0+r1 / 2, done True
step(a2)    o=1            False False r2     1        0 / 0, done False
step(a3)    o=0 (ep 3)     True  True  r3     0        r2+r3 / 2, done True
=========== ============== ===== ===== ====== ======== ======================

Replay then holds ``(o=0, start, a0, r0, d=1)``, ``(o=1, a1, r1, d=0, last)``,
``(o=0, start, a2, r2, d=1)``, ``(o=1, a3, r3, d=0, last)``: ``last`` on a
record means the transition from its observation ended the episode (``discount
== 0`` a termination, ``discount == 1`` a time-limit truncation), and the next
record's ``start`` is set, so sequence code masks everything from there on.

The terminal observation is never fed to the agent, so ``next_obs`` is not kept
in the jumanji extras (it would double the observation memory for nothing).

Previous action / reward features: the observation carried by an AgentStep is
``[env features, one_hot(a_{t-1}, A), r_{t-1}]`` (each part configurable). Both
parts are zero wherever ``start`` is set, including at an auto-reset timestep
(whose ``reward`` field is the old episode's terminal reward, not the new
episode's previous reward).

Action masks: POPGym has none, so ``action_mask`` is ``None`` for every
registered environment. An environment with a mask must return a
:class:`MaskedObservation`; the mask then travels inside the observation, which
the auto-reset replaces at an episode boundary (a mask in ``extras`` would
be the old episode's).

    >>> agent_env = make_agent_env("popgym/repeat_previous", num_envs=8)
    >>> state, ts = agent_env.reset(jax.random.key(0))      # ts.obs: [8, F]
    >>> state, ts = agent_env.step(state, jnp.zeros(8, jnp.int32))
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import chex
import jax
import jax.numpy as jnp
import jumanji
from jumanji import specs
from jumanji.types import TimeStep

from rmuzero.envs.registry import make

__all__ = [
    "AgentEnv",
    "AgentState",
    "AgentStep",
    "MaskedObservation",
    "ResetFn",
    "StepFn",
    "make_agent_env",
    "start_flag",
    "wrap_env",
]


class MaskedObservation(NamedTuple):
    """Observation of an environment with an action mask (none in POPGym)."""

    features: chex.Array  # [F_env] float32
    action_mask: chex.Array  # [A] bool, True where the action is legal


class AgentStep(NamedTuple):
    """What the agent sees after ``reset`` or ``step``; see the module docstring
    for which reward / discount goes with which observation."""

    obs: Any  # [B, F] float32: env features ++ one_hot(a_{t-1}) ++ r_{t-1} for a vector observation;
    #           else {"observation": the env's observation tree [B, ...] in its own dtypes,
    #                 "previous": [B, A + 1] float32 one_hot(a_{t-1}) ++ r_{t-1}} (see wrap_env)
    start: chex.Array  # [B] bool: obs begins an episode (clear memory before it)
    reward: chex.Array  # [B] float32: reward of the transition just taken (0 at reset)
    discount: chex.Array  # [B] float32: its discount (0 on termination, 1 at reset)
    last: chex.Array  # [B] bool: the transition just taken ended an episode
    episode_return: chex.Array  # [B] float32: return of the episode ended here, else 0
    episode_length: chex.Array  # [B] int32: its number of transitions, else 0
    episode_done: chex.Array  # [B] bool: an episode ended here (== last)
    action_mask: Optional[chex.Array]  # [B, A] bool, or None without a mask


class AgentState(NamedTuple):
    """Environment state of the whole batch plus the running episode sums."""

    env_state: Any  # jumanji state with a leading [B] axis
    return_so_far: chex.Array  # [B] float32: rewards of the current episode so far
    length_so_far: chex.Array  # [B] int32: transitions of the current episode so far


ResetFn = Callable[[chex.PRNGKey], tuple[AgentState, AgentStep]]
StepFn = Callable[[AgentState, chex.Array], tuple[AgentState, AgentStep]]


class AgentEnv(NamedTuple):
    """Frozen bundle of pure functions and sizes; jit the functions at the call site.

    ``reset(key)`` takes one PRNG key and resets all B environments;
    ``step(state, action)`` takes integer actions ``[B]``.
    """

    reset: ResetFn
    step: StepFn
    num_envs: int  # B
    obs_size: int | None  # F, including the appended previous action / reward; None for a structured observation
    num_actions: int  # A
    has_action_mask: bool  # whether AgentStep.action_mask is an array (else None)
    observation_spec: Any = None  # one environment's AgentStep.obs as jax.ShapeDtypeStruct leaves (no [B])


def start_flag(timestep: TimeStep) -> chex.Array:
    """``first() | last()``: the timestep's observation begins an episode.

    Valid for timesteps of an ``AutoResetWrapper`` (at ``last()`` the
    observation is already the next episode's first one). Shape: that of
    ``timestep.step_type`` ([B] when batched).
    """
    return timestep.first() | timestep.last()


def _batched_auto_reset(env: jumanji.Environment) -> tuple[Callable, Callable]:
    """``reset(keys [B])`` and ``step(state [B], action [B])`` of ``env`` batched,
    auto-resetting like ``VmapWrapper(AutoResetWrapper(env))``: a finished
    environment's state and observation become ``env.reset(split(state.key)[0])``'s
    while reward, discount, step type and extras stay the terminal transition's."""
    batched_step = jax.vmap(env.step)
    batched_reset = jax.vmap(env.reset)
    # The reset after an episode's end: the environment's own where it has one
    # (rmuzero.envs.adapters.GymnaxEnvironment: gymnax's), else jumanji's AutoResetWrapper's key rule.
    own_reset = getattr(env, "auto_reset", None)

    def auto_reset(state: Any) -> tuple[Any, TimeStep]:
        if own_reset is not None:
            return jax.vmap(own_reset)(state)
        return batched_reset(jax.vmap(lambda key: jax.random.split(key)[0])(state.key))

    def step(state: Any, action: chex.Array) -> tuple[Any, TimeStep]:
        state, timestep = batched_step(state, action)
        last = timestep.last()  # [B]

        def reset_finished(state: Any, timestep: TimeStep) -> tuple[Any, TimeStep]:
            reset_state, reset_timestep = auto_reset(state)

            def pick(new: chex.Array, old: chex.Array) -> chex.Array:
                return jnp.where(jnp.reshape(last, last.shape + (1,) * (old.ndim - 1)), new, old)

            state = jax.tree_util.tree_map(pick, reset_state, state)
            observation = jax.tree_util.tree_map(pick, reset_timestep.observation, timestep.observation)
            return state, timestep.replace(observation=observation)

        return jax.lax.cond(jnp.any(last), reset_finished, lambda s, t: (s, t), state, timestep)

    return batched_reset, step


def make_agent_env(
    name: str,
    *,
    difficulty: str = "easy",
    num_envs: int,
    prev_action: bool = True,
    prev_reward: bool = True,
) -> AgentEnv:
    """Builds registry environment ``name`` at ``difficulty`` and wraps it.

    Args:
      name: a name from ``rmuzero.envs.list_envs()``, e.g. ``"popgym/repeat_previous"``.
      difficulty: ``"easy"``, ``"medium"`` or ``"hard"``.
      num_envs: B, the number of environments stepped together.
      prev_action: append ``one_hot(a_{t-1}, A)`` to the observation.
      prev_reward: append ``r_{t-1}`` to the observation.

    Raises:
      ValueError: unknown name / difficulty (listing the valid ones) or
        ``num_envs < 1``.
    """
    return wrap_env(
        make(name, difficulty),
        num_envs=num_envs,
        prev_action=prev_action,
        prev_reward=prev_reward,
    )


def _observation_parts(observation: Any) -> tuple[chex.Array, Optional[chex.Array]]:
    if isinstance(observation, MaskedObservation):
        return observation.features, observation.action_mask
    return observation, None


def wrap_env(
    env: jumanji.Environment,
    *,
    num_envs: int,
    prev_action: bool = True,
    prev_reward: bool = True,
) -> AgentEnv:
    """Wraps a jumanji environment (without auto-reset) for the agent.

    The environment must have a ``specs.DiscreteArray`` action spec (other suites'
    environments reach it through :mod:`rmuzero.envs.adapters`). Its observation
    (or a :class:`MaskedObservation`'s features) is either one vector ``[F_env]``,
    which is cast to float32 and concatenated with the previous action / reward
    (POPGym), or anything else, an image, a grid, a dict or tuple of arrays, which is
    kept as it is, in its own dtype, beside the previous action / reward:
    ``{"observation": obs, "previous": [A + 1]}`` (the torso of
    :mod:`rmuzero.networks.torso` reads each leaf by its shape).

    Args:
      env: the environment (without auto-reset); its state must have a
        ``key`` field, the source of the auto-reset keys, or the environment an
        ``auto_reset(state) -> (state, timestep)`` method, the reset after an
        episode's end.
      num_envs: B, the number of environments stepped together.
      prev_action: append ``one_hot(a_{t-1}, A)`` to the observation.
      prev_reward: append ``r_{t-1}`` to the observation.

    Raises:
      ValueError: ``num_envs < 1``, a non-discrete action spec, an observation
        that is not arrays, or a mask that is not bool ``[A]``.
    """
    if not isinstance(num_envs, int) or isinstance(num_envs, bool) or num_envs < 1:
        raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
    action_spec = env.action_spec
    if not isinstance(action_spec, specs.DiscreteArray):
        raise ValueError(
            f"the environment's action spec must be a specs.DiscreteArray (one integer action), "
            f"got {type(action_spec).__name__}"
        )
    num_actions = int(action_spec.num_values)

    first_state, first_timestep = jax.eval_shape(env.reset, jax.random.PRNGKey(0))
    if not hasattr(first_state, "key") and not hasattr(env, "auto_reset"):
        raise ValueError(f"the environment's state ({type(first_state).__name__}) needs a `key` field for auto-reset")
    features, mask = _observation_parts(first_timestep.observation)
    leaves = jax.tree_util.tree_leaves(features)
    if not leaves or not all(hasattr(x, "shape") and hasattr(x, "dtype") for x in leaves):
        raise ValueError(
            f"the environment's observation must be arrays (or a MaskedObservation of them), got {features}"
        )
    vector = not isinstance(features, (dict, tuple, list)) and len(features.shape) == 1
    if mask is not None and (mask.shape != (num_actions,) or mask.dtype != jnp.bool_):
        raise ValueError(f"action_mask must be bool [A]=[{num_actions}], got {mask.dtype}{list(mask.shape)}")
    previous_size = (num_actions if prev_action else 0) + (1 if prev_reward else 0)
    if vector:
        obs_size = int(features.shape[0]) + previous_size
        observation_spec = jax.ShapeDtypeStruct((obs_size,), jnp.float32)
    else:
        obs_size = None
        observation_spec = {
            "observation": jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), features)
        }
        if previous_size:
            observation_spec["previous"] = jax.ShapeDtypeStruct((previous_size,), jnp.float32)

    batched_reset, batched_step = _batched_auto_reset(env)

    def agent_step(
        timestep: TimeStep,
        action: chex.Array,
        return_so_far: chex.Array,
        length_so_far: chex.Array,
        at_reset: bool,
    ) -> tuple[AgentStep, chex.Array, chex.Array]:
        start = start_flag(timestep)
        last = timestep.last()
        reward = timestep.reward.astype(jnp.float32)
        env_features, action_mask = _observation_parts(timestep.observation)
        parts = [env_features.astype(jnp.float32)] if vector else []
        if prev_action:
            one_hot = jax.nn.one_hot(action, num_actions, dtype=jnp.float32)
            parts.append(jnp.where(start[:, None], 0.0, one_hot))
        if prev_reward:
            parts.append(jnp.where(start, 0.0, reward)[:, None])
        if vector:
            obs = jnp.concatenate(parts, axis=-1)
        else:
            obs = {"observation": env_features, **({"previous": jnp.concatenate(parts, axis=-1)} if parts else {})}
        if at_reset:
            episode_return = return_so_far
            episode_length = length_so_far
        else:
            episode_return = return_so_far + reward
            episode_length = length_so_far + 1
        step = AgentStep(
            obs=obs,
            start=start,
            reward=reward,
            discount=timestep.discount.astype(jnp.float32),
            last=last,
            episode_return=jnp.where(last, episode_return, 0.0),
            episode_length=jnp.where(last, episode_length, 0),
            episode_done=last,
            action_mask=action_mask,
        )
        return step, jnp.where(last, 0.0, episode_return), jnp.where(last, 0, episode_length)

    def reset(key: chex.PRNGKey) -> tuple[AgentState, AgentStep]:
        typed = jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
        if key.shape != (() if typed else (2,)):
            raise ValueError(f"reset takes one PRNG key (split inside into B={num_envs}), got shape {tuple(key.shape)}")
        env_state, timestep = batched_reset(jax.random.split(key, num_envs))
        zeros_f = jnp.zeros((num_envs,), jnp.float32)
        zeros_i = jnp.zeros((num_envs,), jnp.int32)
        no_action = zeros_i  # unused: start is set, so the one-hot part is zeroed
        step, return_so_far, length_so_far = agent_step(timestep, no_action, zeros_f, zeros_i, at_reset=True)
        return AgentState(env_state, return_so_far, length_so_far), step

    def step(state: AgentState, action: chex.Array) -> tuple[AgentState, AgentStep]:
        action = jnp.asarray(action)
        if action.shape != (num_envs,) or not jnp.issubdtype(action.dtype, jnp.integer):
            raise ValueError(
                f"action must be an integer array of shape [B]=({num_envs},), got {action.dtype}{list(action.shape)}"
            )
        env_state, timestep = batched_step(state.env_state, action)
        agent_step_, return_so_far, length_so_far = agent_step(
            timestep, action, state.return_so_far, state.length_so_far, at_reset=False
        )
        return AgentState(env_state, return_so_far, length_so_far), agent_step_

    return AgentEnv(
        reset=reset,
        step=step,
        num_envs=num_envs,
        obs_size=obs_size,
        num_actions=num_actions,
        has_action_mask=mask is not None,
        observation_spec=observation_spec,
    )
