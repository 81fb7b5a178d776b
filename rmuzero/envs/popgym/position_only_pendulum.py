"""PositionOnlyPendulum (reference ``popgym.envs.position_only_pendulum``).

Pendulum whose observation is ``[2]`` float32 ``(cos theta, sin theta)`` (no
angular velocity). The reference's action is a continuous torque
``Box(-2, 2, (1,))``; here it is discretised: action ``i`` in
``[0, num_torques)`` applies torque ``linspace(-2, 2, num_torques)[i]``,
default ``num_torques=5`` i.e. torques ``(-2, -1, 0, 1, 2)``. Reward
``(gym_reward + 8.1368022) / 8.1368022 / L`` per step; never terminates;
truncates after L = 200 / 150 / 100 steps (easy / medium / hard).

Out-of-range actions are clipped to ``[0, num_torques - 1]``; hidden state is
injected with ``reset_to(key, physics)`` (see ``_classic_control``).
"""

from __future__ import annotations

from rmuzero.envs.popgym._classic_control import PendulumEnvironment


class PositionOnlyPendulum(PendulumEnvironment):
    """Pendulum observing ``(cos, sin)``; keyword-only ``max_episode_length``, ``num_torques``."""

    def __init__(self, *, max_episode_length: int = 200, num_torques: int = 5) -> None:
        super().__init__(max_episode_length=max_episode_length, num_torques=num_torques)


ENVIRONMENT = PositionOnlyPendulum
DIFFICULTIES = {
    "easy": {"max_episode_length": 200},
    "medium": {"max_episode_length": 150},
    "hard": {"max_episode_length": 100},
}
