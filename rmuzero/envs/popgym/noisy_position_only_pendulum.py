"""NoisyPositionOnlyPendulum (reference ``popgym.envs.noisy_position_only_pendulum``).

PositionOnlyPendulum whose ``(cos theta, sin theta)`` observation (reset
included) gets Gaussian noise of std sigma = 0.1 / 0.2 / 0.3 (easy / medium /
hard), then is clipped to ``[-1, 1]``. The time limit is L = 200 at every
difficulty (the reference's classes do not change it). Actions are the
discretised torques of ``position_only_pendulum`` (default 5:
``(-2, -1, 0, 1, 2)``), out-of-range actions clipped.

Hidden state and noise are injected with ``reset_to(key, physics, noise)`` and
``step_with_noise(state, action, noise)`` (see ``_classic_control``); ``step``
draws the noise from ``state.key``.
"""

from __future__ import annotations

from rmuzero.envs.popgym._classic_control import PendulumEnvironment


class NoisyPositionOnlyPendulum(PendulumEnvironment):
    """Noisy ``(cos, sin)`` Pendulum; keyword-only ``noise_sigma``, ``max_episode_length``, ``num_torques``."""

    def __init__(self, *, noise_sigma: float = 0.1, max_episode_length: int = 200, num_torques: int = 5) -> None:
        super().__init__(max_episode_length=max_episode_length, noise_sigma=noise_sigma, num_torques=num_torques)


ENVIRONMENT = NoisyPositionOnlyPendulum
DIFFICULTIES = {
    "easy": {"noise_sigma": 0.1},
    "medium": {"noise_sigma": 0.2},
    "hard": {"noise_sigma": 0.3},
}
