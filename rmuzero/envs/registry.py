"""Name -> environment registry. One place owns the list of POPGym families.

Each family lives in ``rmuzero/envs/popgym/<name>.py`` (``<name>`` is the
reference's module name) and exposes:

- ``ENVIRONMENT``: the ``jumanji.env.Environment`` subclass;
- ``DIFFICULTIES``: ``{"easy": kwargs, "medium": kwargs, "hard": kwargs}``, the
  constructor arguments of the reference's Easy/Medium/Hard classes.
"""

from __future__ import annotations

import importlib

import jumanji

DIFFICULTIES = ("easy", "medium", "hard")

_FAMILIES = (
    "autoencode",
    "battleship",
    "concentration",
    "count_recall",
    "higher_lower",
    "labyrinth_escape",
    "labyrinth_explore",
    "minesweeper",
    "multiarmed_bandit",
    "noisy_position_only_cartpole",
    "noisy_position_only_pendulum",
    "position_only_cartpole",
    "position_only_pendulum",
    "repeat_first",
    "repeat_previous",
    "velocity_only_cartpole",
)
_PREFIX = "popgym/"


def list_envs() -> list[str]:
    """Every registered name, e.g. ``"popgym/repeat_previous"``, sorted."""
    return [_PREFIX + family for family in _FAMILIES]


def _module(family: str):
    return importlib.import_module(f"rmuzero.envs.popgym.{family}")


def make(name: str, difficulty: str = "easy") -> jumanji.Environment:
    """Builds the environment ``name`` (``"popgym/<module>"``) at ``difficulty``.

    Raises:
      ValueError: for an unknown name or difficulty, listing the valid choices.
    """
    if not name.startswith(_PREFIX) or name[len(_PREFIX) :] not in _FAMILIES:
        raise ValueError(f"unknown environment {name!r}; valid names: {', '.join(list_envs())}")
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"unknown difficulty {difficulty!r} for {name}; valid: {', '.join(DIFFICULTIES)}")
    module = _module(name[len(_PREFIX) :])
    return module.ENVIRONMENT(**module.DIFFICULTIES[difficulty])
