"""Learning target: env steps and wall time to a mean evaluation return >= threshold.

Runs the default training config (RepeatPrevious Easy unless ``--env`` /
``--difficulty`` say otherwise) for several seeds with each network, side by
side, and reports per run the env steps and wall-clock seconds at the first
evaluation with ``eval_return >= threshold``, the best and final evaluation
return, and the training throughput (median env steps/s and learner updates/s
over the run's log lines).

    python scripts/bench_learning.py --networks ffm gru --seeds 0 1 2 --out bench_learning.json
    python scripts/bench_learning.py --env popgym/repeat_previous --difficulty medium --threshold 0.9 \
        --set total_env_steps=600000
    python scripts/bench_learning.py --set total_env_steps=100000 --set system.batch_size=64

Each run writes its own metrics.jsonl and checkpoints under ``--runs``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
from pathlib import Path

import yaml

from rmuzero.distributed import split_cpu

# rmuzero.agent is imported where it is used: importing it starts JAX, and split_cpu must come first.
CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def default_cpu_devices() -> int:
    """configs/config.yaml's ``cpu_devices`` (what scripts/train.py uses)."""
    return yaml.safe_load((CONFIGS / "config.yaml").read_text())["cpu_devices"]


def split_cpu_or_exit(parser: argparse.ArgumentParser, count: int, option: str = "--cpu-devices") -> None:
    """``split_cpu(count)`` before anything starts JAX; a count below 1 is a usage error."""
    try:
        split_cpu(count)
    except ValueError as error:
        parser.error(str(error).replace("cpu_devices", option, 1))


def default_config(network: str, env: str = "popgym/repeat_previous", system: str = "muzero") -> dict:
    """The values scripts/train.py would compose with no overrides but network=, env= and system=."""
    from rmuzero.agent.train import SCRIPT_OPTIONS

    top = yaml.safe_load((CONFIGS / "config.yaml").read_text())
    values = {k: v for k, v in top.items() if k not in ("defaults", "hydra", *SCRIPT_OPTIONS)}
    values["env"] = yaml.safe_load((CONFIGS / f"env/{env}.yaml").read_text())
    values["network"] = yaml.safe_load((CONFIGS / f"network/{network}.yaml").read_text())
    search = yaml.safe_load((CONFIGS / "search/gumbel.yaml").read_text())
    search.pop("discount")  # interpolated from system.discount
    values["search"] = search
    values["system"] = _system_values(system)
    return values


def _system_values(name: str) -> dict:
    """configs/system/<name>.yaml over the files its hydra defaults list names (``_self_`` last)."""
    raw = yaml.safe_load((CONFIGS / f"system/{name}.yaml").read_text())
    values: dict = {}
    for parent in raw.pop("defaults", []):
        if parent != "_self_":
            values.update(_system_values(parent))
    values.update(raw)
    return values


def apply_override(values: dict, assignment: str) -> None:
    key, _, raw = assignment.partition("=")
    *parents, leaf = key.split(".")
    node = values
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = yaml.safe_load(raw)


def summarise(lines: list[dict], threshold: float) -> dict:
    evals = [line for line in lines if "eval_return" in line]
    train_lines = [line for line in lines if "updates_per_second" in line and line.get("updates")]
    reached = next((line for line in evals if line["eval_return"] >= threshold), None)
    return {
        "steps_to_threshold": reached["env_steps"] if reached else None,
        "seconds_to_threshold": reached.get("wall_time") if reached else None,
        "final_eval_return": evals[-1]["eval_return"] if evals else None,
        "best_eval_return": max((line["eval_return"] for line in evals), default=None),
        "env_steps_per_second": statistics.median(l["env_steps_per_second"] for l in train_lines) if train_lines else None,
        "updates_per_second": statistics.median(l["updates_per_second"] for l in train_lines) if train_lines else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="popgym/repeat_previous", help="a config under configs/env/")
    parser.add_argument("--difficulty", default=None, help="easy | medium | hard (default: the env config's)")
    parser.add_argument("--system", default="muzero", help="a config under configs/system/")
    parser.add_argument("--networks", nargs="+", default=["ffm", "gru"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--threshold", type=float, default=0.95)
    parser.add_argument("--set", action="append", default=[], help="override, e.g. total_env_steps=100000")
    parser.add_argument("--runs", default="runs/bench_learning")
    parser.add_argument("--out", default="bench_learning.json")
    parser.add_argument("--cpu-devices", type=int, default=default_cpu_devices(),
                        help="JAX devices a CPU host runs as (scripts/train.py's cpu_devices; default: configs/config.yaml's)")
    args = parser.parse_args()
    split_cpu_or_exit(parser, args.cpu_devices)
    from rmuzero.agent.config import config_from_dict
    from rmuzero.agent.train import compilation_cache_dir, enable_compilation_cache, train
    from rmuzero.metrics import read_metrics

    enable_compilation_cache(compilation_cache_dir())  # $RMUZERO_COMPILATION_CACHE, off to disable

    rows = []
    print(f"# {platform.processor() or platform.machine()}; {args.env} {args.difficulty or ''}; "
          f"threshold {args.threshold}; overrides {args.set}")
    print(f"{'network':10s} {'seed':>4s} {'steps to thr':>12s} {'s to thr':>9s} {'final':>7s} {'best':>7s} "
          f"{'env st/s':>9s} {'upd/s':>7s}")
    for network in args.networks:
        for seed in args.seeds:
            values = default_config(network, args.env, args.system)
            if args.difficulty is not None:
                values["env"]["difficulty"] = args.difficulty
            values["seed"] = seed
            for assignment in args.set:
                apply_override(values, assignment)
            config = config_from_dict(values)
            run_dir = Path(args.runs) / f"{network}_seed{seed}"
            train(config, run_dir, progress=False)
            row = {"network": network, "seed": seed, **summarise(read_metrics(run_dir / "metrics.jsonl"), args.threshold)}
            rows.append(row)
            fmt = lambda v, spec: format(v, spec) if v is not None else "-"
            print(f"{network:10s} {seed:4d} {fmt(row['steps_to_threshold'], '12d'):>12s} "
                  f"{fmt(row['seconds_to_threshold'], '9.0f'):>9s} {fmt(row['final_eval_return'], '7.3f'):>7s} "
                  f"{fmt(row['best_eval_return'], '7.3f'):>7s} {fmt(row['env_steps_per_second'], '9.0f'):>9s} "
                  f"{fmt(row['updates_per_second'], '7.1f'):>7s}", flush=True)
    Path(args.out).write_text(json.dumps({"machine": platform.platform(), "args": vars(args), "rows": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
