"""VelocityOnlyCartPole (reference ``popgym.envs.velocity_only_cartpole``).

CartPole whose step observation is ``[2]`` float32 ``(x_dot, theta_dot)``.
Reference quirk kept: the *reset* observation is ``(x, theta)`` (positions),
as the reference's ``reset`` selects components 0 and 2. Reward ``1/L`` per
step; terminates when the pole falls or the cart leaves the track; truncates
after L = 200 / 400 / 600 steps (easy / medium / hard).

Out-of-range actions are clipped to ``[0, 1]``; hidden state is injected with
``reset_to(key, physics)`` (see ``_classic_control``).
"""

from __future__ import annotations

from rmuzero.envs.popgym._classic_control import CartPoleEnvironment


class VelocityOnlyCartPole(CartPoleEnvironment):
    """CartPole observing velocities; keyword-only ``max_episode_length``."""

    def __init__(self, *, max_episode_length: int = 200) -> None:
        super().__init__(max_episode_length=max_episode_length, observe="velocity")


ENVIRONMENT = VelocityOnlyCartPole
DIFFICULTIES = {
    "easy": {"max_episode_length": 200},
    "medium": {"max_episode_length": 400},
    "hard": {"max_episode_length": 600},
}
