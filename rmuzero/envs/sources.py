"""One environment entry, five sources: POPGym (ours), gymnax, jumanji's registry,
POPGym Arcade, and your own factory.

    make_environment("popgym", "popgym/repeat_previous", difficulty="medium")
    make_environment("gymnax", "MemoryChain-bsuite", params={"memory_length": 100})
    make_environment("jumanji", "Minesweeper-v0")
    make_environment("popgym_arcade", "CountRecallEasy", kwargs={"partial_obs": True})
    make_environment("custom", factory="my_package.my_module:make_env", kwargs={...})

Each returns a jumanji environment without auto-reset that
:func:`rmuzero.envs.wrappers.wrap_env` takes (other suites through
:mod:`rmuzero.envs.adapters`). Bad input raises :class:`EnvError` with one line
that says what was wrong and what is valid. ``python -m rmuzero.envs`` lists
every name of the installed suites.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping

import jumanji
from jumanji import specs

from rmuzero.envs import registry
from rmuzero.envs.adapters import EnvError, GymnaxEnvironment, JumanjiAdapter, observation_spec_of
from rmuzero.envs.wrappers import MaskedObservation

__all__ = ["EXTRAS", "SUITES", "EnvError", "as_environment", "from_object", "list_names", "make_environment"]

SUITES = ("popgym", "gymnax", "jumanji", "popgym_arcade", "custom")
EXTRAS = {"gymnax": "gymnax", "popgym_arcade": "arcade"}  # suite -> the pip extra that installs it


def _import_suite(suite: str):
    module = {"gymnax": "gymnax", "popgym_arcade": "popgym_arcade", "jumanji": "jumanji"}[suite]
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise EnvError(
            f"env={suite} needs the {module} package, which is not installed ({error}); install it "
            f"with: pip install -e '.[{EXTRAS.get(suite, suite)}]'"
        ) from None


def _arcade_names() -> list[str]:
    """POPGym Arcade's registered ids (its registration module; the package does not re-export them)."""
    return sorted(importlib.import_module("popgym_arcade.registration").REGISTERED_ENVIRONMENTS)


def list_names(suite: str) -> list[str]:
    """Every environment name of ``suite`` (installed), sorted; custom has none."""
    if suite == "popgym":
        return registry.list_envs()
    if suite == "gymnax":
        return sorted(_import_suite("gymnax").registered_envs)
    if suite == "jumanji":
        return sorted(_import_suite("jumanji").registered_environments())
    if suite == "popgym_arcade":
        _import_suite("popgym_arcade")
        return _arcade_names()
    if suite == "custom":
        return []
    raise EnvError(f"env.suite={suite!r}; valid: {', '.join(SUITES)}")


def _check_name(suite: str, name: str) -> None:
    names = list_names(suite)
    if name not in names:
        raise EnvError(f"env.name={name!r} is not a {suite} environment; valid: {', '.join(names)}")


def _gymnax_params(env: Any, params: Any, changes: Mapping[str, Any], name: str) -> Any:
    if not changes:
        return params
    fields = sorted(getattr(params, "__dataclass_fields__", {}))
    unknown = sorted(set(changes) - set(fields))
    if unknown:
        raise EnvError(f"env.params: {name} has no parameter {', '.join(unknown)}; valid: {', '.join(fields)}")
    return params.replace(**dict(changes))


def _call(factory: Callable, kwargs: Mapping[str, Any], what: str) -> Any:
    try:
        return factory(**dict(kwargs))
    except TypeError as error:
        raise EnvError(f"env.kwargs do not fit {what}: {error}") from None


def _load_factory(path: str | None) -> Callable:
    if not path or ":" not in path:
        raise EnvError(
            f"env.factory={path!r}; valid: 'package.module:function' (a callable that returns a jumanji "
            "environment or a gymnax (env, params) pair)"
        )
    module_name, _, attribute = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise EnvError(f"env.factory={path!r}: cannot import {module_name} ({error})") from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise EnvError(f"env.factory={path!r}: {module_name} has no callable {attribute}")
    return factory


def from_object(made: Any, *, params: Mapping[str, Any] | None = None, name: str = "") -> jumanji.Environment:
    """A jumanji environment, or a gymnax ``(env, params)`` pair, as the environment the wrapper takes."""
    if isinstance(made, jumanji.Environment):
        if params:
            raise EnvError("env.params are gymnax parameters; a jumanji environment takes env.kwargs")
        return JumanjiAdapter(made, name=name)
    if isinstance(made, tuple) and len(made) == 2 and hasattr(made[0], "step_env") and hasattr(made[0], "reset_env"):
        env, env_params = made
        return GymnaxEnvironment(env, _gymnax_params(env, env_params, params or {}, name), name=name)
    raise EnvError(
        f"{name or 'the factory'} returned {type(made).__name__}; valid: a jumanji.Environment or a "
        "gymnax (env, params) pair"
    )


def as_environment(made: Any) -> jumanji.Environment:
    """What a user hands to ``make_agent(environment=...)`` / ``train(environment=...)``: a
    jumanji environment the wrapper takes as it is (discrete actions; an array or
    :class:`~rmuzero.envs.wrappers.MaskedObservation` observation) is returned unchanged,
    anything else goes through :func:`from_object` (adapters)."""
    if isinstance(made, jumanji.Environment) and isinstance(made.action_spec, specs.DiscreteArray):
        observation = observation_spec_of(made)
        if hasattr(observation, "shape") or isinstance(observation, MaskedObservation):
            return made
    return from_object(made)


def make_environment(
    suite: str,
    name: str = "",
    *,
    difficulty: str = "easy",
    params: Mapping[str, Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    factory: str | None = None,
) -> jumanji.Environment:
    """The environment ``name`` of ``suite`` (module docstring), without auto-reset.

    Args:
      suite: one of ``SUITES``.
      name: the suite's id (``popgym/<family>`` for POPGym); unused for ``custom``.
      difficulty: POPGym's easy | medium | hard (POPGym only).
      params: gymnax environment parameters to change (``EnvParams.replace``).
      kwargs: the suite's constructor arguments (``gymnax.make``, ``jumanji.make``,
        ``popgym_arcade.make``, your factory).
      factory: ``package.module:function`` for ``custom``.

    Raises:
      EnvError: an unknown suite or name (listing the valid ones), a suite that is not
        installed (naming the extra), continuous actions, a factory that cannot be
        imported or returns something else, parameters the environment does not have.
    """
    params, kwargs = dict(params or {}), dict(kwargs or {})
    if suite == "popgym":
        if params or kwargs:
            raise EnvError("env.params / env.kwargs are for the other suites; POPGym takes env.difficulty")
        try:
            return registry.make(name, difficulty)
        except ValueError as error:
            raise EnvError(str(error)) from None
    if suite == "custom":
        factory_fn = _load_factory(factory)
        return from_object(_call(factory_fn, kwargs, f"env.factory={factory}"), params=params, name=factory)
    if suite not in SUITES:
        raise EnvError(f"env.suite={suite!r}; valid: {', '.join(SUITES)}")
    _check_name(suite, name)
    module = _import_suite(suite)
    if suite == "jumanji":
        return from_object(
            _call(module.make, {"id": name, **kwargs}, f"jumanji.make({name!r})"), params=params, name=name
        )
    return from_object(
        _call(lambda **kw: module.make(name, **kw), kwargs, f"{suite}.make({name!r})"), params=params, name=name
    )
