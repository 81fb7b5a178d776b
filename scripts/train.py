"""Train rmuzero: python scripts/train.py env=popgym/repeat_previous [key=value ...].

The config is configs/config.yaml with its groups (env=, network=, search=, system=) and the
overrides given (hydra's grammar, rmuzero.cli); the library validates it and trains. The run
directory is ``hydra.run.dir=`` (default runs/<date>/<time>): metrics.jsonl, checkpoints/, and
the record of the run that hydra used to write, .hydra/config.yaml (the composed config) and
.hydra/overrides.yaml (the command line). ``resume=true`` continues the run there from its
latest checkpoint. The final line printed is the summary of the last evaluation, as JSON.

    python scripts/train.py env=popgym/count_recall env.difficulty=medium network=gru seed=3 \\
        total_env_steps=500000 hydra.run.dir=runs/count_recall_gru
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import yaml

from rmuzero import cli

USAGE = "usage: python scripts/train.py [env=<popgym/...>] [network=<name>] [key=value ...] [hydra.run.dir=<dir>]"


def holds_checkpoints(run_dir: Path) -> bool:
    """Whether ``run_dir`` (or one of its seed_<s>/ directories) already holds checkpoints."""
    return any(d.is_dir() and any(d.iterdir()) for d in [run_dir / "checkpoints", *run_dir.glob("seed_*/checkpoints")])


def write_record(run_dir: Path, values: dict, overrides: list[str]) -> None:
    """.hydra/config.yaml (the composed config, run options included) and .hydra/overrides.yaml."""
    record = run_dir / ".hydra"
    record.mkdir(parents=True, exist_ok=True)
    composed = {key: value for key, value in values.items() if key != "hydra"}
    (record / "config.yaml").write_text(yaml.safe_dump(composed, sort_keys=False))
    (record / "overrides.yaml").write_text(yaml.safe_dump(list(overrides), sort_keys=False))


def main(argv: list[str]) -> int:
    _, overrides = cli.parse_args(argv, {}, usage=USAGE, overrides=True, doc=__doc__)
    values = cli.compose(overrides)
    agent_values, run = cli.split_run_options(values)
    # Before anything starts JAX (importing the agent does): join several processes, or split the CPU.
    cli.start_devices(run["cpu_devices"], agent_values.get("distributed"))
    logging.getLogger("absl").setLevel(logging.WARNING)  # orbax's per-save INFO chatter
    from rmuzero.agent import train
    from rmuzero.compilation_cache import compilation_cache_dir, enable_compilation_cache

    config = cli.agent_config(values)
    from rmuzero.envs.sources import make_environment

    # The environment first: an unknown name, a missing suite, a bad factory stop here, before the run directory.
    env = config.env
    environment = make_environment(
        env.suite, env.name, difficulty=env.difficulty, params=env.params, kwargs=env.kwargs, factory=env.factory
    )
    run_dir = Path(run["hydra"]["run"]["dir"])
    resume = bool(run["resume"])
    if (resume or not holds_checkpoints(run_dir)) and config.distributed.process_id in (None, 0):
        write_record(run_dir, values, overrides)  # (a refused run changes nothing: train() says why)
    enable_compilation_cache(compilation_cache_dir(run["compilation_cache"]))
    summary = train(config, run_dir, progress=bool(run["progress"]), resume=resume, environment=environment)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    cli.run(main)
