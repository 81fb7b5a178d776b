"""Evaluate a saved agent: python scripts/evaluate.py checkpoint=<dir> episodes=N [seed=S] [temperature=T].

``checkpoint`` is a run directory, its checkpoints/ directory, or one step
directory; the newest checkpoint is used. The agent is rebuilt from the config
saved with the weights and plays N full episodes with the run's evaluation
policy (``eval_temperature``, greedy unless set), or with ``temperature=T``: 0
the argmax of the search's improved policy, T > 0 a sample from its weights **
(1 / T). The final line printed is one JSON object with ``mean_return``,
``std_return`` and ``episodes``.
"""

from __future__ import annotations

import json

from rmuzero import cli

USAGE = "usage: python scripts/evaluate.py checkpoint=<run or checkpoint dir> episodes=N [seed=S] [temperature=T]"
OPTIONS = {"checkpoint": cli.REQUIRED, "episodes": 32, "seed": 0, "temperature": None}


def main(argv: list[str]) -> int:
    args, _ = cli.parse_args(argv, OPTIONS, usage=USAGE, doc=__doc__)
    cli.at_least(args, 1, "episodes")
    cli.at_least(args, 0, "seed")
    temperature = args["temperature"]
    if temperature is not None and (
        isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature <= 100
    ):
        raise cli.UsageError(f"temperature={temperature}; valid: a number from 0 (greedy) to 100")
    import jax
    import numpy as np

    agent, params, step_dir = cli.load_checkpoint(
        args["checkpoint"], eval_envs=args["episodes"], eval_temperature=args["temperature"]
    )
    from rmuzero.agent.train import evaluation_summary

    evaluation = jax.tree.map(np.asarray, jax.jit(agent.evaluate)(params, jax.random.PRNGKey(args["seed"])))
    summary = evaluation_summary(*evaluation)
    print(
        json.dumps(
            {
                "mean_return": summary["eval_return"],
                "std_return": summary["eval_return_std"],
                "episodes": summary["eval_episodes"],
                "unfinished": summary["eval_unfinished"],
                "mean_length": summary["eval_length"],
                "env": agent.config.env.name,
                "difficulty": agent.config.env.difficulty,
                "checkpoint": str(step_dir),
                "seed": args["seed"],
                "temperature": agent.config.eval_temperature,
            }
        )
    )
    return 0


if __name__ == "__main__":
    cli.run(main)
