"""Checks of scalar settings (counts, rates), one place for the whole library.

``is_int`` / ``is_real`` say whether a value is a number of that kind: a Python
or numpy number, never a bool (``True`` is an ``int`` to Python, but no count or
rate is meant as one). ``check_int`` / ``check_real`` raise one line in the
form the configuration's errors take, ``name=value; valid: what``; modules
with messages of their own build them on the two predicates.
"""

from __future__ import annotations

import numbers
from typing import Any

__all__ = ["check_int", "check_real", "is_int", "is_real"]


def is_int(value: Any) -> bool:
    """An integer (Python or numpy), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """A real number (Python or numpy, integers included), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_int(name: str, value: Any, minimum: int = 1, *, error: type[Exception] = ValueError) -> None:
    """Raises ``error("name=value; valid: an integer >= minimum")`` unless ``value`` is one."""
    if not (is_int(value) and value >= minimum):
        raise error(f"{name}={value!r}; valid: an integer >= {minimum}")


def check_real(
    name: str, value: Any, low: float, high: float, *, open_low: bool = False, error: type[Exception] = ValueError
) -> None:
    """Raises ``error("name=value; valid: a number in [low, high]")`` (``(low, high]`` with
    ``open_low``) unless ``value`` is one."""
    ok = is_real(value) and (low < value if open_low else low <= value) and value <= high
    if not ok:
        bracket = "(" if open_low else "["
        raise error(f"{name}={value!r}; valid: a number in {bracket}{low}, {high}]")
