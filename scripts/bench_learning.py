"""Learning target: env steps and wall time to a mean evaluation return >= threshold.

Runs the default training config (RepeatPrevious Easy unless overrides say otherwise) for
several seeds with each network, side by side, and reports per run the env steps and
wall-clock seconds at the first evaluation with ``eval_return >= threshold``, the best and
final evaluation return, and the training throughput (median env steps/s and learner
updates/s over the run's log lines).

    python scripts/bench_learning.py networks=[ffm,gru] seeds=[0,1,2] out=bench_learning.json
    python scripts/bench_learning.py env=popgym/repeat_previous env.difficulty=medium threshold=0.9 \\
        total_env_steps=600000
    python scripts/bench_learning.py total_env_steps=100000 system.batch_size=64

Options: ``networks=``, ``seeds=``, ``threshold=``, ``runs=`` (where each run writes its
metrics.jsonl and checkpoints, ``<runs>/<network>_seed<s>/``) and ``out=`` (the JSON of the
table). Any other ``key=value`` is a ``scripts/train.py`` override for every run
(``env=``, ``system=``, ``cpu_devices=`` ... ; ``network`` and ``seed`` are the options').
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

from rmuzero import cli

USAGE = (
    "usage: python scripts/bench_learning.py [networks=[...]] [seeds=[...]] [threshold=T] [runs=<dir>] "
    "[out=<file>] [train.py key=value ...]"
)
OPTIONS = {
    "networks": ["ffm", "gru"],
    "seeds": [0, 1, 2],
    "threshold": 0.95,
    "runs": "runs/bench_learning",
    "out": "bench_learning.json",
}
ALIASES = {"difficulty": "env.difficulty"}  # the old --difficulty
OWN_KEYS = {"network": "networks=", "seed": "seeds=", "num_seeds": "seeds= (one run per seed)"}


def main(argv: list[str]) -> int:
    args, overrides = cli.parse_args(argv, OPTIONS, usage=USAGE, overrides=True, aliases=ALIASES, doc=__doc__)
    for token in overrides:
        key = token.partition("=")[0].lstrip("+~")
        if key in OWN_KEYS:
            raise cli.UsageError(f"{token}: each run sets {key}; valid: {OWN_KEYS[key]}")
    values = cli.compose(overrides)
    cli.start_devices(values["cpu_devices"])
    from rmuzero.agent import train
    from rmuzero.compilation_cache import compilation_cache_dir, enable_compilation_cache
    from rmuzero.metrics import read_metrics

    enable_compilation_cache(compilation_cache_dir(values["compilation_cache"]))
    runs = [
        (network, seed, cli.agent_config(cli.compose([f"network={network}", f"seed={seed}", *overrides])))
        for network in args["networks"]
        for seed in args["seeds"]
    ]  # every config checked before training
    rows = []
    env = values["env"]
    print(
        f"# {platform.processor() or platform.machine()}; {env['name']} {env['difficulty']}; "
        f"threshold {args['threshold']}; overrides {overrides}"
    )
    print(
        f"{'network':10s} {'seed':>4s} {'steps to thr':>12s} {'s to thr':>9s} {'final':>7s} {'best':>7s} "
        f"{'env st/s':>9s} {'upd/s':>7s}"
    )
    for network, seed, config in runs:
        run_dir = Path(args["runs"]) / f"{network}_seed{seed}"
        train(config, run_dir, progress=False)
        row = {
            "network": network,
            "seed": seed,
            **cli.summarise_metrics(read_metrics(run_dir / "metrics.jsonl"), args["threshold"]),
        }
        rows.append(row)
        fmt = lambda v, spec: format(v, spec) if v is not None else "-"  # noqa: E731
        print(
            f"{network:10s} {seed:4d} {fmt(row['steps_to_threshold'], '12d'):>12s} "
            f"{fmt(row['seconds_to_threshold'], '9.0f'):>9s} {fmt(row['final_eval_return'], '7.3f'):>7s} "
            f"{fmt(row['best_eval_return'], '7.3f'):>7s} {fmt(row['env_steps_per_second'], '9.0f'):>9s} "
            f"{fmt(row['updates_per_second'], '7.1f'):>7s}",
            flush=True,
        )
    Path(args["out"]).write_text(
        json.dumps(
            {
                "machine": platform.platform(),
                "commit": cli.git_commit(),
                "args": {**args, "overrides": overrides},
                "rows": rows,
            },
            indent=1,
        )
    )
    print(f"wrote {args['out']}")
    return 0


if __name__ == "__main__":
    cli.run(main)
