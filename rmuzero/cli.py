"""The scripts' command line: one convention, hydra-style ``key=value``, for every script in ``scripts/``.

Every script takes ``key=value`` tokens. A key that is one of the script's own options
(``episodes=``, ``tasks=``, ``out=`` ...) sets that option; any other key is an override of the
training config composed from ``configs/`` (scripts that train or build an agent), with hydra's
grammar:

- ``env=popgym/count_recall``, ``network=gru``, ``search=muzero``, ``system=muzero``: pick a
  group's file (``configs/<group>/<name>.yaml``), as the defaults list of
  ``configs/config.yaml`` does;
- ``system.batch_size=32``, ``network.memory_kwargs={memory_size:32}``: set an existing key
  (a dotted path); a mapping merges into the mapping there;
- ``+key=value`` adds a key that is not there, ``++key=value`` sets or adds, ``~key`` removes;
- values are typed as hydra types them (YAML 1.2 core: ``true``, ``null``, ``3``, ``1e-3``,
  ``[a,b]``, ``{a:1}``; anything else a string, ``'...'`` quotes); ``${a.b}`` in a config file
  is the value at ``a.b`` after the overrides, ``${now:%Y-%m-%d}`` the date.

A list option also takes ``a,b`` and a single value (``seeds=0``). ``help`` / ``--help`` prints
the script's docstring and options. The older ``--option value ...`` form (argparse's, with
``--set key=value`` for overrides) is still read, translated to this one with a note.

Bad input raises :class:`UsageError` with one line naming what was wrong and what is valid;
:func:`run` prints it as ``error: ...`` and exits with status 2, as it does the library's own
errors (:class:`rmuzero.agent.ConfigError`, ``CheckpointError``, ...).

This module reads YAML itself: the library never imports hydra. It imports nothing that starts
JAX, so a script can compose its config and split the CPU (:func:`start_devices`) first.
"""

from __future__ import annotations

import copy
import datetime
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, NoReturn, Sequence

import yaml

__all__ = [
    "CONFIGS",
    "REQUIRED",
    "RUN_OPTIONS",
    "UsageError",
    "agent_config",
    "at_least",
    "compose",
    "git_commit",
    "group_options",
    "load_checkpoint",
    "parse_args",
    "parse_value",
    "run",
    "split_run_options",
    "start_devices",
    "summarise_metrics",
    "translate_legacy",
]

CONFIGS = Path(__file__).resolve().parents[1] / "configs"  # the repository's configs/
# Top-level keys of configs/config.yaml that say how scripts/train.py runs, not what the agent is.
RUN_OPTIONS = ("progress", "resume", "compilation_cache", "cpu_devices", "hydra")
REQUIRED = object()  # an option's default: the option must be given


class UsageError(ValueError):
    """A bad command line; the message (one line) names what was wrong and what is valid."""


# ---------------------------------------------------------------------------- values


class _Loader(yaml.SafeLoader):
    """YAML 1.2's core schema (what hydra's override grammar types): ``true`` / ``false`` only as
    booleans (not ``on`` / ``no``), ``1e-3`` a float, no sexagesimal numbers, no dates."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag.rsplit(":", 1)[-1] not in ("bool", "int", "float", "timestamp")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9][0-9_]*|0x[0-9a-fA-F]+|0o[0-7]+)$"), list("-+0123456789")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*\.[0-9_]*|\.[0-9]+|[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)"
        r"|\.(?:nan|NaN|NAN))$"
    ),
    list("-+.0123456789"),
)


def _int(loader, node) -> int:
    text = loader.construct_scalar(node).replace("_", "")
    if text.startswith(("0x", "0o")):
        return int(text, 0)
    return int(text, 10)


_Loader.add_constructor("tag:yaml.org,2002:int", _int)
_HYDRA_KEY = re.compile(r"([{,]\s*[\w.\-]+):(?=\S)")  # hydra's {a:1} is YAML's {a: 1}


def parse_value(text: str) -> Any:
    """A command-line value typed as hydra types it: ``"3"`` -> 3, ``"1e-3"`` -> 0.001,
    ``"true"`` -> True, ``"null"`` -> None, ``"[8,16]"`` -> [8, 16], ``"{a:1}"`` -> {"a": 1};
    anything else (``on``, ``10.0.0.1:1234``, ``runs/a``) the string itself."""
    if text.lstrip().startswith("{"):
        text = _HYDRA_KEY.sub(r"\1: ", text)
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError:
        return text


def _load(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=_Loader) or {}


# ---------------------------------------------------------------------------- composition


def group_options(group: str, configs: Path = CONFIGS) -> list[str]:
    """The choices of ``<group>=``: configs/<group>/**.yaml as names relative to the group
    (``popgym/count_recall`` for ``env``)."""
    root = configs / group
    return sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.yaml"))


def _group_file(group: str, name: Any, configs: Path) -> dict:
    """configs/<group>/<name>.yaml over the files its own defaults list names (``_self_`` last
    unless placed), as hydra composes a group's file."""
    path = configs / group / f"{name}.yaml"
    if not isinstance(name, str) or not path.is_file():
        raise UsageError(f"{group}={name}: no such {group} config; valid: {', '.join(group_options(group, configs))}")
    raw = _load(path)
    entries = raw.pop("defaults", None) or []
    if "_self_" not in entries:
        entries = [*entries, "_self_"]
    values: dict = {}
    for entry in entries:
        _merge(values, raw if entry == "_self_" else _group_file(group, entry, configs))
    return values


def _merge(into: dict, values: Mapping) -> dict:
    """``values`` merged into ``into`` (mappings key by key, anything else replaced)."""
    for key, value in values.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)
    return into


def _defaults(top: dict) -> list[tuple[str | None, Any]]:
    """configs/config.yaml's defaults list as ``(group, choice)`` pairs, ``(None, None)`` for ``_self_``."""
    pairs = []
    for entry in top.pop("defaults", None) or []:
        if entry == "_self_":
            pairs.append((None, None))
        else:
            ((group, choice),) = entry.items()
            pairs.append((group, choice))
    if (None, None) not in pairs:
        pairs.append((None, None))
    return pairs


def _path(key: str) -> list[str]:
    if not key or any(not part for part in key.split(".")):
        raise UsageError(f"{key!r} is not a key; valid: names joined by dots, e.g. system.batch_size")
    return key.split(".")


def _valid_keys(node: Mapping, prefix: str) -> str:
    return ", ".join(f"{prefix}{key}" for key in node) or "none"


def _apply(values: dict, token: str, groups: Sequence[str]) -> None:
    """One override token (not a group choice) applied to ``values`` in place."""
    key, sep, raw = token.partition("=")
    if key.startswith("~"):
        *parents, leaf = _path(key[1:])
        node = _node(values, parents, token)
        if leaf not in node:
            raise UsageError(f"{token}: there is no {key[1:]} to remove; valid: {_valid_keys(node, '')}")
        del node[leaf]
        return
    if not sep:
        raise UsageError(f"{token!r} is not key=value; valid: key=value, +key=value, ++key=value, ~key")
    mode = "++" if key.startswith("++") else "+" if key.startswith("+") else ""
    *parents, leaf = _path(key[len(mode) :])
    value = parse_value(raw)
    node = _node(values, parents, token, create=bool(mode))
    if mode == "" and leaf not in node:
        where = ".".join(parents)
        hint = f"; or a group: {', '.join(g + '=' for g in groups)}" if not parents else ""
        raise UsageError(
            f"{token}: {key} is not a key of the config (+{key}= adds one); valid: "
            f"{_valid_keys(node, where + '.' if where else '')}{hint}"
        )
    if mode == "+" and leaf in node:
        raise UsageError(f"{token}: {key[1:]} is already in the config; valid: {key[1:]}={raw} to change it")
    if isinstance(value, Mapping) and isinstance(node.get(leaf), dict):
        _merge(node[leaf], value)
    else:
        node[leaf] = value


def _node(values: dict, parents: list[str], token: str, create: bool = False) -> dict:
    node = values
    for depth, part in enumerate(parents):
        if create and node.get(part) is None:
            node[part] = {}
        if not isinstance(node.get(part), dict):
            where = ".".join(parents[:depth])
            sections = {key: value for key, value in node.items() if isinstance(value, dict)}
            raise UsageError(
                f"{token}: {'.'.join(parents[: depth + 1])} is not a section of the config; valid: "
                f"{_valid_keys(sections, where + '.' if where else '')}"
            )
        node = node[part]
    return node


_INTERPOLATION = re.compile(r"\$\{([^}]*)\}")


def _resolve(values: dict) -> dict:
    """Every ``${a.b}`` replaced by the value at ``a.b`` (typed when it is the whole string),
    ``${now:FORMAT}`` by the time now; recursively."""
    now = datetime.datetime.now()

    def lookup(expression: str, seen: tuple[str, ...]) -> Any:
        if expression.startswith("now:"):
            return now.strftime(expression[4:])
        if expression in seen:
            raise UsageError(f"${{{expression}}} refers to itself; valid: a key that does not")
        node: Any = values
        for part in expression.split("."):
            if not isinstance(node, Mapping) or part not in node:
                raise UsageError(
                    f"${{{expression}}}: no key {expression} in the config; valid: a key, e.g. ${{system.discount}}"
                )
            node = node[part]
        return resolve(node, (*seen, expression))

    def resolve(node: Any, seen: tuple[str, ...] = ()) -> Any:
        if isinstance(node, dict):
            return {key: resolve(value, seen) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value, seen) for value in node]
        if isinstance(node, str):
            whole = _INTERPOLATION.fullmatch(node)
            if whole:
                return lookup(whole.group(1), seen)
            return _INTERPOLATION.sub(lambda m: str(lookup(m.group(1), seen)), node)
        return node

    return resolve(values)


def compose(overrides: Sequence[str] = (), *, configs: Path = CONFIGS) -> dict:
    """The config scripts/train.py runs with ``overrides``: configs/config.yaml, each group of
    its defaults list from its file (or the file a ``<group>=<name>`` override names), the
    other overrides applied in order, then interpolations resolved. Plain nested dicts.

    Raises:
      UsageError: an unknown group choice or key, or a malformed token (one line, with the valid ones).
    """
    top = _load(configs / "config.yaml")
    defaults = _defaults(top)
    groups = [group for group, _ in defaults if group is not None]
    choices = {group: choice for group, choice in defaults if group is not None}
    rest = []
    for token in overrides:
        key, sep, raw = token.partition("=")
        if sep and key in choices:
            choices[key] = parse_value(raw)
        else:
            rest.append(token)
    values: dict = {}
    for group, _ in defaults:
        if group is None:
            _merge(values, top)
        else:
            values.setdefault(group, {})
            _merge(values[group], _group_file(group, choices[group], configs))
    for token in rest:
        _apply(values, token, groups)
    return _resolve(values)


def split_run_options(values: Mapping) -> tuple[dict, dict]:
    """``(agent values, run options)``: :data:`RUN_OPTIONS` taken out of a composed config."""
    agent = {key: value for key, value in values.items() if key not in RUN_OPTIONS}
    return agent, {key: values[key] for key in RUN_OPTIONS if key in values}


def agent_config(values: Mapping):
    """``rmuzero.agent.config_from_dict`` of composed values (run options dropped). Imports the
    agent, which starts JAX: call :func:`start_devices` first."""
    from rmuzero.agent.config import config_from_dict

    return config_from_dict(split_run_options(values)[0])


# ---------------------------------------------------------------------------- options


def _legacy(argv: Sequence[str], aliases: Mapping[str, str]) -> list[str]:
    """argparse's ``--name v1 v2 --flag --set k=v`` as ``name=[v1,v2] flag=true k=v``."""
    tokens: list[str] = []
    gathered: dict[str, list[str]] = {}
    name = None
    for token in argv:
        if token.startswith("--"):
            name, sep, value = token[2:].partition("=")
            name = aliases.get(name.replace("-", "_"), name.replace("-", "_"))
            if name != "set":
                gathered.setdefault(name, [])
            if sep:
                (tokens.append(value) if name == "set" else gathered[name].append(value))
        elif name is None:
            tokens.append(token)
        elif name == "set":
            tokens.append(token)
        else:
            gathered[name].append(token)
    for key, values in gathered.items():
        values = [json.dumps(v) if "," in v else v for v in values]  # an argparse value's comma is literal
        if not values:
            tokens.append(f"{key}=true")
        elif len(values) == 1:
            tokens.append(f"{key}={values[0]}")
        else:
            tokens.append(f"{key}=[{','.join(values)}]")
    return tokens


def _typed(key: str, raw: str, default: Any) -> Any:
    """``raw`` as the type of ``default`` (a list: element by element, as its first element's)."""
    if isinstance(default, list):
        text = raw.strip()
        value = parse_value(text if text.startswith("[") else f"[{text}]")
        if not isinstance(value, list):
            raise UsageError(f"{key}={raw}; valid: a list, e.g. {key}=[{','.join(map(str, default)) or 'a,b'}]")
        if default:
            return [
                _typed(key, str(item), default[0]) if not isinstance(item, type(default[0])) else item for item in value
            ]
        return value
    value = parse_value(raw)
    if default is REQUIRED or default is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise UsageError(f"{key}={raw}; valid: true or false")
        return value
    if isinstance(default, int):
        if not isinstance(value, int) or isinstance(value, bool):
            raise UsageError(f"{key}={raw} is not an integer; valid: an integer, e.g. {key}={default}")
        return value
    if isinstance(default, float):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise UsageError(f"{key}={raw} is not a number; valid: a number, e.g. {key}={default}")
        return float(value)
    if isinstance(default, str):
        return value if isinstance(value, str) else raw  # out=123 is the string "123"
    return value


def _help(doc: str | None, usage: str, options: Mapping[str, Any], overrides: bool) -> NoReturn:
    lines = [doc.strip(), ""] if doc else []
    lines.append(usage)

    def show(value: Any) -> str:
        if value is REQUIRED:
            return "(required)"
        if isinstance(value, list):
            return f"[{','.join(map(show, value))}]"
        return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)

    if options:
        lines.append("options (key=value; default): " + ", ".join(f"{k}={show(v)}" for k, v in options.items()))
    if overrides:
        groups = [group for group, _ in _defaults(_load(CONFIGS / "config.yaml")) if group is not None]
        lines.append(
            "config overrides (any other key=value): "
            + "; ".join(f"{group}=<{' | '.join(group_options(group))}>" for group in groups)
            + "; any key of the composed config, e.g. system.batch_size=32 (configs/*.yaml say what each is)"
        )
    print("\n".join(lines))
    sys.exit(0)


def translate_legacy(argv: Sequence[str], aliases: Mapping[str, str] | None = None) -> list[str]:
    """``argv`` in the ``key=value`` form: the older ``--option value ...`` form translated (with a
    note on stderr naming the new command), any other ``argv`` as it is."""
    argv = list(argv)
    if not any(token.startswith("--") and token != "--help" for token in argv):
        return argv
    translated = _legacy(argv, aliases or {})
    print(
        f"note: the --option form is the old one; the same command now reads: {' '.join(translated)}", file=sys.stderr
    )
    return translated


def parse_args(
    argv: Sequence[str],
    options: Mapping[str, Any],
    *,
    usage: str,
    overrides: bool = False,
    aliases: Mapping[str, str] | None = None,
    doc: str | None = None,
) -> tuple[dict, list[str]]:
    """``(options, config overrides)`` of a script's ``key=value`` tokens.

    Args:
      options: the script's own options, name -> default; a value is read as its default's type
        (an int, a float, a bool, a string, a list of the type of its first element; ``None``:
        any), :data:`REQUIRED` for an option that must be given.
      usage: the one-line usage, printed with ``help``.
      overrides: whether the script also takes config overrides (any other key, checked by
        :func:`compose`); otherwise an unknown key is an error.
      aliases: old ``--option`` names read as another key (``difficulty`` -> ``env.difficulty``).
      doc: the script's docstring, printed with ``help``.

    Raises:
      UsageError: a token that is not ``key=value``, an unknown option, a value of the wrong
        type, a required option missing, or (with ``overrides``) a bad override.
    """
    argv = list(argv)
    if any(token in ("help", "-h", "--help") for token in argv):
        _help(doc, usage, options, overrides)
    argv = translate_legacy(argv, aliases)
    values = {key: default for key, default in options.items() if default is not REQUIRED}
    rest = []
    for token in argv:
        key, sep, raw = token.partition("=")
        if key in options and sep:
            values[key] = _typed(key, raw, options[key])
        elif overrides and key.lstrip("+~") not in options:
            rest.append(token)
        else:
            valid = ", ".join(f"{k}=" for k in options)
            raise UsageError(f"unknown option {token!r}; valid: {valid}")
    missing = [key for key, default in options.items() if default is REQUIRED and key not in values]
    if missing:
        raise UsageError(f"{missing[0]}= is required; {usage}")
    if overrides:
        try:
            compose(rest)
        except UsageError as error:
            own = ", ".join(f"{k}=" for k in options)
            raise UsageError(f"{error}{'; or an option of this script: ' + own if own else ''}") from None
    return values, rest


def at_least(values: Mapping[str, Any], minimum: int, *keys: str) -> None:
    """Each of ``keys`` (an int or a list of ints) at least ``minimum``, else a UsageError."""
    for key in keys:
        for value in values[key] if isinstance(values[key], list) else [values[key]]:
            if value < minimum:
                raise UsageError(f"{key}={value}; valid: an integer >= {minimum}")


# ---------------------------------------------------------------------------- running


def start_devices(cpu_devices: int, distributed: Mapping | None = None) -> None:
    """Before anything starts JAX: join the processes of a multi-process run
    (``distributed``: the config's section), or split a CPU host into ``cpu_devices`` devices."""
    from rmuzero.distributed import DistributedConfig, initialize, split_cpu

    try:
        config = DistributedConfig(**(distributed or {}))
    except (TypeError, ValueError) as error:
        raise UsageError(f"distributed: {error}") from None
    if config.enabled:
        initialize(config)
        return
    try:
        split_cpu(cpu_devices)
    except ValueError as error:
        raise UsageError(str(error)) from None


def load_checkpoint(
    path: str | Path, *, eval_envs: int | None = None, eval_temperature: float | None = None, cache: str | None = None
):
    """``(agent, params, step_dir)`` of a saved run: ``path`` is a run directory, its
    checkpoints/ or one step directory (the newest checkpoint is used); the agent is rebuilt
    from the config saved with the weights. Turns JAX's compilation cache on (``cache``, else
    ``$RMUZERO_COMPILATION_CACHE``; ``off``: none).

    Raises:
      UsageError: no checkpoint there, or one that cannot be read (one line).
    """
    import logging

    logging.getLogger("absl").setLevel(logging.WARNING)  # orbax's INFO chatter
    from rmuzero.agent import load_trained
    from rmuzero.compilation_cache import compilation_cache_dir, enable_compilation_cache

    enable_compilation_cache(compilation_cache_dir(cache))
    try:
        return load_trained(path, eval_envs=eval_envs, eval_temperature=eval_temperature)
    except FileNotFoundError as error:
        raise UsageError(str(error)) from None


def git_commit(cwd: str | Path | None = None) -> str:
    """HEAD's hash, with ``+dirty`` when tracked files differ from it; ``unknown`` outside git."""
    try:

        def git(*args: str) -> str:
            return subprocess.run(["git", *args], capture_output=True, text=True, check=True, cwd=cwd).stdout.strip()

        head = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def summarise_metrics(lines: Sequence[Mapping[str, Any]], threshold: float) -> dict:
    """One run's figures from its metrics.jsonl lines: env steps and seconds (``wall_time``) at the
    first evaluation with ``eval_return >= threshold`` (None if none), the final and best
    evaluation return, and the median env steps/s and updates/s of its training lines."""
    import statistics

    evals = [line for line in lines if line.get("eval_return") is not None]
    training = [line for line in lines if "updates_per_second" in line and line.get("updates")]
    reached = next((line for line in evals if line["eval_return"] >= threshold), None)
    median = lambda key: statistics.median(line[key] for line in training) if training else None  # noqa: E731
    return {
        "steps_to_threshold": reached["env_steps"] if reached else None,
        "seconds_to_threshold": reached.get("wall_time") if reached else None,
        "final_eval_return": evals[-1]["eval_return"] if evals else None,
        "best_eval_return": max((line["eval_return"] for line in evals), default=None),
        "env_steps_per_second": median("env_steps_per_second"),
        "updates_per_second": median("updates_per_second"),
    }


def _library_error(error: BaseException) -> bool:
    """The library's own errors (ConfigError, CheckpointError, TrainingError, EnvError) carry a
    one-line message for the user; anything else is a bug and keeps its traceback."""
    return type(error).__module__.startswith("rmuzero.") and isinstance(error, (ValueError, RuntimeError))


def run(main: Callable[[list[str]], int | None], argv: Sequence[str] | None = None) -> NoReturn:
    """``sys.exit(main(argv))`` (argv: ``sys.argv[1:]``); a :class:`UsageError` or one of the
    library's errors is printed as one line ``error: ...`` with exit status 2."""
    try:
        code = main(list(sys.argv[1:] if argv is None else argv))
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except (ValueError, RuntimeError) as error:
        if not _library_error(error):
            raise
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    sys.exit(code or 0)
