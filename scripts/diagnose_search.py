"""Does the search improve on the prior? python scripts/diagnose_search.py checkpoint=<dir> [steps=N] [envs=E] [seed=S]

Loads a saved agent (as scripts/evaluate.py does), plays E environments for N steps with
the search's actions, and at every step also steps each action from the same state to
get the reward it would have earned (``rmuzero.agent.diagnostics``). The final line
printed is one JSON object: how often the prior policy, the search's improved policy
(the policy target), the reward model and the search's one-step Q put their top action
on an action with the best immediate reward, and the expected reward of the prior and
improved policies. For POPGym's answer-now tasks (RepeatPrevious, CountRecall,
Autoencode) these are accuracies; an improved policy less accurate than the prior
means the policy targets make the policy worse.
"""

from __future__ import annotations

import functools
import json

from rmuzero import cli

USAGE = "usage: python scripts/diagnose_search.py checkpoint=<run or checkpoint dir> [steps=N] [envs=E] [seed=S]"
OPTIONS = {"checkpoint": cli.REQUIRED, "steps": 200, "envs": 64, "seed": 0}


def main(argv: list[str]) -> int:
    args, _ = cli.parse_args(argv, OPTIONS, usage=USAGE, doc=__doc__)
    cli.at_least(args, 1, "steps", "envs")
    cli.at_least(args, 0, "seed")
    import jax

    agent, params, step_dir = cli.load_checkpoint(args["checkpoint"])
    from rmuzero.agent.diagnostics import diagnose_search, summarise
    from rmuzero.envs.wrappers import make_agent_env

    config = agent.config
    env = make_agent_env(
        config.env.name,
        difficulty=config.env.difficulty,
        num_envs=args["envs"],
        prev_action=config.env.prev_action,
        prev_reward=config.env.prev_reward,
    )
    diagnose = functools.partial(
        diagnose_search, agent.model, env, num_steps=args["steps"], discount=config.system.discount
    )
    diagnosis = jax.jit(diagnose)(params, jax.random.PRNGKey(args["seed"]))
    print(
        json.dumps(
            {
                **summarise(diagnosis),
                "env": config.env.name,
                "difficulty": config.env.difficulty,
                "checkpoint": str(step_dir),
                "steps": args["steps"],
                "envs": args["envs"],
                "seed": args["seed"],
            }
        )
    )
    return 0


if __name__ == "__main__":
    cli.run(main)
