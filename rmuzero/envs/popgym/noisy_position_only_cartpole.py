"""NoisyPositionOnlyCartPole (reference ``popgym.envs.noisy_position_only_cartpole``).

PositionOnlyCartPole whose ``(x, theta)`` observation (reset included) gets
Gaussian noise of std sigma = 0.1 / 0.2 / 0.3 (easy / medium / hard), then is
clipped to ``|x| <= 4.8``, ``|theta| <= 24 deg``. The time limit is L = 200 at
every difficulty (the reference's Medium/Hard classes do not change it);
reward ``1/L`` per step.

Out-of-range actions are clipped to ``[0, 1]``. Hidden state and noise are
injected with ``reset_to(key, physics, noise)`` and
``step_with_noise(state, action, noise)`` (see ``_classic_control``); ``step``
draws the noise from ``state.key``.
"""

from __future__ import annotations

from rmuzero.envs.popgym._classic_control import CartPoleEnvironment


class NoisyPositionOnlyCartPole(CartPoleEnvironment):
    """Noisy ``(x, theta)`` CartPole; keyword-only ``noise_sigma``, ``max_episode_length``."""

    def __init__(self, *, noise_sigma: float = 0.1, max_episode_length: int = 200) -> None:
        super().__init__(max_episode_length=max_episode_length, observe="position", noise_sigma=noise_sigma)


ENVIRONMENT = NoisyPositionOnlyCartPole
DIFFICULTIES = {
    "easy": {"noise_sigma": 0.1},
    "medium": {"noise_sigma": 0.2},
    "hard": {"noise_sigma": 0.3},
}
