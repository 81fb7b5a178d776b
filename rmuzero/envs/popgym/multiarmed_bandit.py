"""MultiarmedBandit: find and exploit the best of A random-probability arms.

Legend: A arms (actions), L steps per episode.

Exact to the reference ``popgym.envs.multiarmed_bandit.MultiarmedBandit``:

- ``reset`` draws each arm's payout probability uniformly in [0, 1) and shows
  0. Each step pulls arm ``action``: it pays (observation 1, reward +1/L) when
  a fresh uniform draw is below the arm's probability, else observation 0 and
  reward -1/L. Episodes never terminate; they are *truncated* at step L
  (200/400/600), discount 1.
- Observation: one-hot payout bit, ``[2]`` float32.
- Out of range: the reference indexes with the action (``IndexError`` above
  A-1; negative values wrap around). Here the action is clipped to ``[0, A-1]``.

Hidden state: the probabilities, injectable with ``reset_from``; the per-step
draws come from ``state.key`` and ``payout_uniform(state)`` tells the draw the
next step will compare with, so a test can feed the same draws to the
reference.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
from jumanji.types import TimeStep

from rmuzero.envs.popgym import _cards
from rmuzero.envs.popgym._common import one_hot_concat
from rmuzero.envs.popgym._episode import first_timestep, step_timestep
from rmuzero.validation import is_int


@chex.dataclass(frozen=True)
class MultiarmedBanditState:
    """Hidden state of one MultiarmedBandit episode."""

    key: chex.PRNGKey  # [2] key of the payout draws (and of auto-reset)
    probabilities: chex.Array  # [A] float32 payout probability of each arm
    step_count: chex.Array  # [] int32 steps taken since reset


def _split_draw(key: chex.PRNGKey) -> tuple[chex.PRNGKey, chex.Array]:
    """(next state key, the uniform float32 draw of this step)."""
    key, draw_key = jax.random.split(key)
    return key, jax.random.uniform(draw_key, (), jnp.float32)


class MultiarmedBandit(_cards.CardGame):
    """MultiarmedBandit with ``num_bandits`` arms and ``episode_length`` steps."""

    repr_fields = ("num_bandits", "episode_length")
    observation_size = 2  # one-hot payout bit

    def __init__(self, *, num_bandits: int = 10, episode_length: int = 200) -> None:
        for name, value in (("num_bandits", num_bandits), ("episode_length", episode_length)):
            if not is_int(value) or value < 1:
                raise ValueError(f"MultiarmedBandit: {name} must be a positive int, got {value!r}")
        self.num_bandits = num_bandits
        self.episode_length = episode_length
        self.max_episode_length = episode_length
        self.num_actions = num_bandits  # the arm to pull
        super().__init__()

    def reset(self, key: chex.PRNGKey) -> tuple[MultiarmedBanditState, TimeStep]:
        key, arms_key = jax.random.split(key)
        return self._start(key, jax.random.uniform(arms_key, (self.num_bandits,), jnp.float32))

    def reset_from(self, key: chex.PRNGKey, probabilities: chex.Array) -> tuple[MultiarmedBanditState, TimeStep]:
        """Starts an episode with given payout probabilities.

        Args:
          key: the state's key: it draws the payouts (see ``payout_uniform``).
          probabilities: ``[A]`` float in [0, 1], the reference's ``bandits``.
        """
        shape, dtype = np.shape(probabilities), jnp.asarray(probabilities).dtype
        if shape != (self.num_bandits,) or not jnp.issubdtype(dtype, jnp.floating):
            raise ValueError(
                f"MultiarmedBandit.reset_from: expected float probabilities of shape ({self.num_bandits},), "
                f"got {dtype} {shape}"
            )
        if not isinstance(probabilities, jax.core.Tracer):
            array = np.asarray(probabilities)
            if not ((array >= 0) & (array <= 1)).all():
                raise ValueError("MultiarmedBandit.reset_from: probabilities must lie in [0, 1]")
        return self._start(key, jnp.asarray(probabilities, jnp.float32))

    def _start(self, key: chex.PRNGKey, probabilities: chex.Array) -> tuple[MultiarmedBanditState, TimeStep]:
        state = MultiarmedBanditState(key=key, probabilities=probabilities, step_count=jnp.zeros((), jnp.int32))
        return state, first_timestep(one_hot_concat([0], [2]))

    def payout_uniform(self, state: MultiarmedBanditState) -> chex.Array:
        """The float32 uniform draw in [0, 1) that the next ``step`` compares with."""
        return _split_draw(state.key)[1]

    def step(self, state: MultiarmedBanditState, action: chex.Array) -> tuple[MultiarmedBanditState, TimeStep]:
        arm = jnp.clip(_cards.check_action(action, "MultiarmedBandit"), 0, self.num_bandits - 1)
        key, draw = _split_draw(state.key)
        paid = draw < state.probabilities[arm]
        scale = 1.0 / self.max_episode_length
        truncated = state.step_count >= self.max_episode_length - 1
        state = state.replace(key=key, step_count=state.step_count + 1)
        observation = one_hot_concat([paid.astype(jnp.int32)], [2])
        return state, step_timestep(
            observation=observation, reward=jnp.where(paid, scale, -scale), terminated=False, truncated=truncated
        )


ENVIRONMENT = MultiarmedBandit
DIFFICULTIES = {
    "easy": {"num_bandits": 10, "episode_length": 200},
    "medium": {"num_bandits": 20, "episode_length": 400},
    "hard": {"num_bandits": 30, "episode_length": 600},
}
