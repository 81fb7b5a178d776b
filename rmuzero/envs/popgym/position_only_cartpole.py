"""PositionOnlyCartPole (reference ``popgym.envs.position_only_cartpole``).

CartPole whose observation is ``[2]`` float32 ``(x, theta)`` (no velocities).
Actions: 0 push left, 1 push right. Reward ``1/L`` on every step, so an episode
that reaches the time limit returns 1.0; terminates when the pole falls
(``|theta| > 12 deg``) or the cart leaves ``|x| <= 2.4``; truncates after L
steps, L = 200 / 400 / 600 (easy / medium / hard).

Out-of-range actions are clipped to ``[0, 1]``; hidden state is injected with
``reset_to(key, physics)`` (see ``_classic_control``).
"""

from __future__ import annotations

from rmuzero.envs.popgym._classic_control import CartPoleEnvironment


class PositionOnlyCartPole(CartPoleEnvironment):
    """CartPole observing ``(x, theta)``; keyword-only ``max_episode_length``."""

    def __init__(self, *, max_episode_length: int = 200) -> None:
        super().__init__(max_episode_length=max_episode_length, observe="position")


ENVIRONMENT = PositionOnlyCartPole
DIFFICULTIES = {
    "easy": {"max_episode_length": 200},
    "medium": {"max_episode_length": 400},
    "hard": {"max_episode_length": 600},
}
