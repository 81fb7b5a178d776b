"""Evaluate a saved agent: python scripts/evaluate.py checkpoint=<dir> episodes=N [seed=S].

``checkpoint`` is a run directory, its checkpoints/ directory, or one step
directory; the newest checkpoint is used. The agent is rebuilt from the config
saved with the weights and plays N full episodes greedily (temperature 0
search). The final line printed is one JSON object with ``mean_return``,
``std_return`` and ``episodes``.
"""

from __future__ import annotations

import json
import sys

USAGE = "usage: python scripts/evaluate.py checkpoint=<run or checkpoint dir> episodes=N [seed=S]"
OPTIONS = {"checkpoint": str, "episodes": int, "seed": int}


def parse_options(argv: list[str], options: dict, defaults: dict, counts: tuple[str, ...]) -> dict:
    """``key=value`` tokens -> values; ``checkpoint=`` required, each of ``counts`` an integer >= 1.
    Raises a one-line ValueError naming the bad token and what is valid."""
    values = dict(defaults)
    for token in argv:
        key, sep, value = token.partition("=")
        if not sep or key not in options:
            raise ValueError(f"bad argument {token!r}; valid: {', '.join(f'{k}=' for k in options)}")
        try:
            values[key] = options[key](value)
        except ValueError:
            raise ValueError(f"{key}={value!r} is not a valid {options[key].__name__}") from None
    if "checkpoint" not in values:
        raise ValueError("checkpoint= is required")
    for key in counts:
        if values[key] < 1:
            raise ValueError(f"{key}={values[key]}; valid: an integer >= 1")
    return values


def parse(argv: list[str]) -> dict:
    return parse_options(argv, OPTIONS, {"episodes": 32, "seed": 0}, ("episodes",))


def load_checkpoint(path: str, **kwargs):
    """``(agent, params, step_dir)`` of a saved run (compilation cache on), or None after
    printing the one-line error of a missing or unreadable checkpoint."""
    import logging

    logging.getLogger("absl").setLevel(logging.WARNING)

    from rmuzero.agent.config import ConfigError
    from rmuzero.agent.train import compilation_cache_dir, enable_compilation_cache, load_trained
    from rmuzero.checkpoint import CheckpointError

    enable_compilation_cache(compilation_cache_dir())  # $RMUZERO_COMPILATION_CACHE, off to disable
    try:
        return load_trained(path, **kwargs)
    except (FileNotFoundError, CheckpointError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return None


def main(argv: list[str]) -> int:
    try:
        args = parse(argv)
    except ValueError as error:
        print(f"error: {error}\n{USAGE}", file=sys.stderr)
        return 2
    import jax
    import numpy as np

    loaded = load_checkpoint(args["checkpoint"], eval_envs=args["episodes"])
    if loaded is None:
        return 2
    agent, params, step_dir = loaded
    from rmuzero.agent.train import evaluation_summary

    evaluation = jax.tree.map(np.asarray, jax.jit(agent.evaluate)(params, jax.random.PRNGKey(args["seed"])))
    summary = evaluation_summary(*evaluation)
    print(json.dumps({
        "mean_return": summary["eval_return"],
        "std_return": summary["eval_return_std"],
        "episodes": summary["eval_episodes"],
        "unfinished": summary["eval_unfinished"],
        "mean_length": summary["eval_length"],
        "env": agent.config.env.name,
        "difficulty": agent.config.env.difficulty,
        "checkpoint": str(step_dir),
        "seed": args["seed"],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
