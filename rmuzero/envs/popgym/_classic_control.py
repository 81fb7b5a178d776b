"""CartPole and Pendulum physics and the environments built on them.

One place for the physics of the five control families
(``position_only_cartpole``, ``noisy_position_only_cartpole``,
``velocity_only_cartpole``, ``position_only_pendulum``,
``noisy_position_only_pendulum``): the gymnasium 1.x ``CartPoleEnv`` /
``PendulumEnv`` equations the reference (``popgym==1.0.7``) inherits, in
float32 (the reference integrates in float64 and returns float32
observations), with the reference's observation selection, reward transform,
time limit and observation noise on top.

Shapes: the CartPole physical state is ``[4]`` float32
``(x, x_dot, theta, theta_dot)``; the Pendulum physical state is ``[2]``
float32 ``(theta, theta_dot)``; observations are ``[2]`` float32.

Hidden state injection (used by the parity tests): ``reset_to(key, physics,
noise=None)`` starts an episode from a given physical state (and, for noisy
variants, a given reset noise); ``step_with_noise(state, action, noise)`` steps
with a given observation noise (noisy variants only). ``step`` draws the noise
as ``noise_sigma * N(0, 1)`` from ``state.key``.
"""

from __future__ import annotations

import math
from functools import cached_property

import chex
import jax
import jax.numpy as jnp
from jumanji import specs
from jumanji.env import Environment
from jumanji.types import TimeStep

from rmuzero.envs.popgym._episode import checked_action, first_timestep, step_timestep

# gymnasium CartPoleEnv constants.
CARTPOLE_GRAVITY = 9.8
CARTPOLE_MASS_CART = 1.0
CARTPOLE_MASS_POLE = 0.1
CARTPOLE_TOTAL_MASS = CARTPOLE_MASS_CART + CARTPOLE_MASS_POLE
CARTPOLE_HALF_LENGTH = 0.5
CARTPOLE_POLEMASS_LENGTH = CARTPOLE_MASS_POLE * CARTPOLE_HALF_LENGTH
CARTPOLE_FORCE = 10.0
CARTPOLE_TAU = 0.02
CARTPOLE_X_THRESHOLD = 2.4
CARTPOLE_THETA_THRESHOLD = 12 * 2 * math.pi / 360
CARTPOLE_RESET_BOUND = 0.05

# gymnasium PendulumEnv constants.
PENDULUM_MAX_SPEED = 8.0
PENDULUM_MAX_TORQUE = 2.0
PENDULUM_DT = 0.05
PENDULUM_GRAVITY = 10.0
PENDULUM_MASS = 1.0
PENDULUM_LENGTH = 1.0
# popgym's reward normalisation: the most negative gym reward per step.
PENDULUM_MIN_REWARD = -16.2736044


def cartpole_dynamics(physics: chex.Array, action: chex.Array) -> chex.Array:
    """One explicit-Euler CartPole step (gymnasium's equations and order).

    Args:
      physics: ``[4]`` float32 ``(x, x_dot, theta, theta_dot)``.
      action: int scalar, 0 pushes left, 1 pushes right.

    Returns:
      ``[4]`` float32, the next physical state.
    """
    chex.assert_shape(physics, (4,))
    x, x_dot, theta, theta_dot = physics[0], physics[1], physics[2], physics[3]
    force = jnp.where(action == 1, CARTPOLE_FORCE, -CARTPOLE_FORCE)
    cos_theta = jnp.cos(theta)
    sin_theta = jnp.sin(theta)
    temp = (force + CARTPOLE_POLEMASS_LENGTH * jnp.square(theta_dot) * sin_theta) / CARTPOLE_TOTAL_MASS
    theta_acc = (CARTPOLE_GRAVITY * sin_theta - cos_theta * temp) / (
        CARTPOLE_HALF_LENGTH * (4.0 / 3.0 - CARTPOLE_MASS_POLE * jnp.square(cos_theta) / CARTPOLE_TOTAL_MASS)
    )
    x_acc = temp - CARTPOLE_POLEMASS_LENGTH * theta_acc * cos_theta / CARTPOLE_TOTAL_MASS
    return jnp.stack(
        [
            x + CARTPOLE_TAU * x_dot,
            x_dot + CARTPOLE_TAU * x_acc,
            theta + CARTPOLE_TAU * theta_dot,
            theta_dot + CARTPOLE_TAU * theta_acc,
        ]
    ).astype(jnp.float32)


def cartpole_terminated(physics: chex.Array) -> chex.Array:
    """True when the cart leaves ``|x| <= 2.4`` or the pole ``|theta| <= 12 deg``."""
    x, theta = physics[0], physics[2]
    return (
        (x < -CARTPOLE_X_THRESHOLD)
        | (x > CARTPOLE_X_THRESHOLD)
        | (theta < -CARTPOLE_THETA_THRESHOLD)
        | (theta > CARTPOLE_THETA_THRESHOLD)
    )


def _angle_normalize(theta: chex.Array) -> chex.Array:
    return jnp.mod(theta + jnp.pi, 2 * jnp.pi) - jnp.pi


def pendulum_dynamics(physics: chex.Array, torque: chex.Array) -> tuple[chex.Array, chex.Array]:
    """One Pendulum step (gymnasium's equations).

    Args:
      physics: ``[2]`` float32 ``(theta, theta_dot)``.
      torque: float scalar, clipped to ``[-2, 2]``.

    Returns:
      ``(next_physics [2], gym_reward [])``; ``gym_reward`` is gymnasium's
      ``-cost`` of the state before the step. The next theta is wrapped to
      ``[-pi, pi)`` (gymnasium leaves it unwrapped; nothing observable differs).
    """
    chex.assert_shape(physics, (2,))
    theta, theta_dot = physics[0], physics[1]
    u = jnp.clip(torque, -PENDULUM_MAX_TORQUE, PENDULUM_MAX_TORQUE)
    cost = _angle_normalize(theta) ** 2 + 0.1 * theta_dot**2 + 0.001 * u**2
    new_theta_dot = (
        theta_dot
        + (
            3 * PENDULUM_GRAVITY / (2 * PENDULUM_LENGTH) * jnp.sin(theta)
            + 3.0 / (PENDULUM_MASS * PENDULUM_LENGTH**2) * u
        )
        * PENDULUM_DT
    )
    new_theta_dot = jnp.clip(new_theta_dot, -PENDULUM_MAX_SPEED, PENDULUM_MAX_SPEED)
    # Kept in [-pi, pi): every output is 2 pi-periodic in theta, and an
    # unwrapped float32 angle (the reference's grows without bound) loses
    # precision as the pendulum spins.
    new_theta = _angle_normalize(theta + new_theta_dot * PENDULUM_DT)
    return jnp.stack([new_theta, new_theta_dot]).astype(jnp.float32), -cost


@chex.dataclass
class CartPoleState:
    physics: chex.Array  # [4] float32 (x, x_dot, theta, theta_dot)
    step_count: chex.Array  # [] int32, steps taken in this episode
    key: chex.PRNGKey  # [2] uint32, source of reset / observation noise


@chex.dataclass
class PendulumState:
    physics: chex.Array  # [2] float32 (theta, theta_dot)
    step_count: chex.Array  # [] int32, steps taken in this episode
    key: chex.PRNGKey  # [2] uint32


def _check_physics(physics: chex.Array, size: int, name: str) -> chex.Array:
    physics = jnp.asarray(physics, jnp.float32)
    if physics.shape != (size,):
        raise ValueError(f"{name}.reset_to: physics must have shape ({size},); got {physics.shape}")
    return physics


def _check_noise(noise: chex.Array, sigma: float, name: str) -> chex.Array:
    if sigma == 0.0:
        raise ValueError(f"{name} has no observation noise; pass noise only to the noisy variants")
    noise = jnp.asarray(noise, jnp.float32)
    if noise.shape != (2,):
        raise ValueError(f"{name}: noise must have shape (2,); got {noise.shape}")
    return noise


class _ClassicControl(Environment):
    """Shared reset/step plumbing; subclasses give physics and observation."""

    _physics_size: int
    _obs_high: tuple[float, float]

    def __init__(self, *, max_episode_length: int, noise_sigma: float) -> None:
        if not isinstance(max_episode_length, int) or max_episode_length < 1:
            raise ValueError(f"max_episode_length must be a positive int; got {max_episode_length!r}")
        if not noise_sigma >= 0.0:
            raise ValueError(f"noise_sigma must be >= 0; got {noise_sigma!r}")
        self.max_episode_length = max_episode_length
        self.noise_sigma = float(noise_sigma)
        super().__init__()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_episode_length={self.max_episode_length}, noise_sigma={self.noise_sigma})"

    @cached_property
    def observation_spec(self) -> specs.BoundedArray:
        high = jnp.asarray(self._obs_high, jnp.float32)
        return specs.BoundedArray((2,), jnp.float32, -high, high, "observation")

    # Hooks.
    def _sample_physics(self, key: chex.PRNGKey) -> chex.Array:
        raise NotImplementedError

    def _reset_observation(self, physics: chex.Array) -> chex.Array:
        raise NotImplementedError

    def _transition(
        self, physics: chex.Array, action: chex.Array
    ) -> tuple[chex.Array, chex.Array, chex.Array, chex.Array]:
        """Returns ``(physics, observation, reward, terminated)``."""
        raise NotImplementedError

    def _make_state(self, physics: chex.Array, step_count: chex.Array, key: chex.PRNGKey):
        raise NotImplementedError

    # Noise.
    def _noisy(self, observation: chex.Array, noise: chex.Array) -> chex.Array:
        if self.noise_sigma == 0.0:
            return observation
        high = jnp.asarray(self._obs_high, jnp.float32)
        return jnp.clip(observation + noise, -high, high)

    def _draw_noise(self, key: chex.PRNGKey) -> chex.Array:
        return self.noise_sigma * jax.random.normal(key, (2,), jnp.float32)

    # Public API.
    def reset(self, key: chex.PRNGKey):
        key, physics_key = jax.random.split(key)
        return self.reset_to(key, self._sample_physics(physics_key))

    def reset_to(self, key: chex.PRNGKey, physics: chex.Array, noise: chex.Array | None = None):
        """Starts an episode from ``physics`` (``[4]`` cartpole, ``[2]`` pendulum).

        ``noise`` (``[2]``, noisy variants only) is added to the first
        observation; when ``None`` it is drawn from ``key``.
        """
        name = type(self).__name__
        physics = _check_physics(physics, self._physics_size, name)
        if noise is None:
            key, noise_key = jax.random.split(key)
            noise = self._draw_noise(noise_key)
        else:
            noise = _check_noise(noise, self.noise_sigma, name)
        observation = self._noisy(self._reset_observation(physics), noise)
        state = self._make_state(physics, jnp.zeros((), jnp.int32), key)
        return state, first_timestep(observation)

    def step(self, state, action: chex.Array):
        if self.noise_sigma == 0.0:
            return self._step(state, action, jnp.zeros((2,), jnp.float32))
        key, noise_key = jax.random.split(state.key)
        return self._step(state.replace(key=key), action, self._draw_noise(noise_key))

    def step_with_noise(self, state, action: chex.Array, noise: chex.Array):
        """``step`` with the given observation noise ``[2]`` (noisy variants only)."""
        return self._step(state, action, _check_noise(noise, self.noise_sigma, type(self).__name__))

    def _step(self, state, action: chex.Array, noise: chex.Array) -> tuple[object, TimeStep]:
        action = checked_action(action, num_actions=self.action_spec.num_values, env_name=type(self).__name__)
        physics, observation, reward, terminated = self._transition(state.physics, action)
        step_count = state.step_count + 1
        truncated = step_count >= self.max_episode_length
        next_state = self._make_state(physics, step_count, state.key)
        return next_state, step_timestep(
            reward=reward,
            observation=self._noisy(observation, noise),
            terminated=terminated,
            truncated=truncated,
        )


class CartPoleEnvironment(_ClassicControl):
    """CartPole observing positions ``(x, theta)`` or velocities.

    Reward ``1 / max_episode_length`` on every step, the terminating one
    included (gymnasium gives +1 there too; popgym maps only a gym reward of 0,
    which happens when stepping past termination, to -1). Terminates when the
    pole falls or the cart leaves the track; truncates once
    ``max_episode_length`` steps have been taken.

    Args (keyword-only):
      max_episode_length: time limit L.
      observe: ``"position"`` for ``(x, theta)``, ``"velocity"`` for
        ``(x_dot, theta_dot)``. Reference quirk kept: the velocity variant's
        *reset* observation is ``(x, theta)`` (positions), only steps give
        velocities.
      noise_sigma: std of the Gaussian noise added to every observation, which
        is then clipped to the observation bounds (0 = no noise).
    """

    _physics_size = 4

    def __init__(self, *, max_episode_length: int, observe: str = "position", noise_sigma: float = 0.0) -> None:
        if observe not in ("position", "velocity"):
            raise ValueError(f"observe must be 'position' or 'velocity'; got {observe!r}")
        self.observe = observe
        if observe == "position":
            self._obs_high = (CARTPOLE_X_THRESHOLD * 2, CARTPOLE_THETA_THRESHOLD * 2)
        else:
            self._obs_high = (math.inf, math.inf)
        super().__init__(max_episode_length=max_episode_length, noise_sigma=noise_sigma)

    @cached_property
    def action_spec(self) -> specs.DiscreteArray:
        return specs.DiscreteArray(2, name="action")

    def _sample_physics(self, key):
        return jax.random.uniform(key, (4,), jnp.float32, -CARTPOLE_RESET_BOUND, CARTPOLE_RESET_BOUND)

    def _reset_observation(self, physics):
        return jnp.stack([physics[0], physics[2]])

    def _transition(self, physics, action):
        physics = cartpole_dynamics(physics, action)
        if self.observe == "position":
            observation = jnp.stack([physics[0], physics[2]])
        else:
            observation = jnp.stack([physics[1], physics[3]])
        reward = jnp.float32(1.0 / self.max_episode_length)
        return physics, observation, reward, cartpole_terminated(physics)

    def _make_state(self, physics, step_count, key):
        return CartPoleState(physics=physics, step_count=step_count, key=key)


class PendulumEnvironment(_ClassicControl):
    """Pendulum observing ``(cos theta, sin theta)``.

    Action discretisation (the reference's action is a continuous torque in
    ``Box(-2, 2, (1,))``): action ``i`` applies torque
    ``linspace(-2, 2, num_torques)[i]``; the default ``num_torques=5`` gives
    ``{-2, -1, 0, 1, 2}``. Reward: popgym's ``(gym_reward + 8.1368022) /
    8.1368022 / max_episode_length`` (in ``[-1, 1] / L`` per step). Never
    terminates; truncates once ``max_episode_length`` steps have been taken.

    Args (keyword-only):
      max_episode_length: time limit L.
      noise_sigma: std of the Gaussian noise added to every observation, which
        is then clipped to ``[-1, 1]`` (0 = no noise).
      num_torques: number of evenly spaced torques in ``[-2, 2]`` (>= 2).
    """

    _physics_size = 2
    _obs_high = (1.0, 1.0)

    def __init__(self, *, max_episode_length: int, noise_sigma: float = 0.0, num_torques: int = 5) -> None:
        if not isinstance(num_torques, int) or num_torques < 2:
            raise ValueError(f"num_torques must be an int >= 2; got {num_torques!r}")
        self.num_torques = num_torques
        super().__init__(max_episode_length=max_episode_length, noise_sigma=noise_sigma)

    @cached_property
    def action_spec(self) -> specs.DiscreteArray:
        return specs.DiscreteArray(self.num_torques, name="action")

    @property
    def torques(self) -> chex.Array:
        """``[num_torques]`` float32, the torque applied by each action."""
        return jnp.linspace(-PENDULUM_MAX_TORQUE, PENDULUM_MAX_TORQUE, self.num_torques, dtype=jnp.float32)

    def _sample_physics(self, key):
        high = jnp.asarray([jnp.pi, 1.0], jnp.float32)
        return jax.random.uniform(key, (2,), jnp.float32, -high, high)

    def _reset_observation(self, physics):
        return jnp.stack([jnp.cos(physics[0]), jnp.sin(physics[0])])

    def _transition(self, physics, action):
        physics, gym_reward = pendulum_dynamics(physics, self.torques[action])
        half_range = -PENDULUM_MIN_REWARD / 2
        reward = (gym_reward + half_range) / half_range / self.max_episode_length
        observation = jnp.stack([jnp.cos(physics[0]), jnp.sin(physics[0])])
        return physics, observation, reward, jnp.zeros((), bool)

    def _make_state(self, physics, step_count, key):
        return PendulumState(physics=physics, step_count=step_count, key=key)
