"""Every task x network x seed, then a results table and learning curves.

    python scripts/suite.py preset=popgym-easy
    python scripts/suite.py tasks=[repeat_previous:easy,count_recall:medium] networks=[ffm,gru] \\
        seeds=[0,1,2] out=results/suite total_env_steps=600000

Options: ``preset=`` (a named set of runs, below: its tasks, networks, seeds, overrides and out;
options given beside it win, overrides given beside it come after its own), ``tasks=``
(``<env under configs/env/popgym/>:<difficulty>``), ``networks=``, ``seeds=``, ``threshold=`` and
``out=`` (required without a preset). Any other ``key=value`` is a ``scripts/train.py`` override
for every run (``cpu_devices=`` and ``compilation_cache=`` included); ``env``, ``network``,
``seed`` and ``num_seeds`` are the suite's to set. The seeds of one task and network train
together in one process (``num_seeds``, vmapped) when they are consecutive, one after the other
otherwise. Writes, under ``out``:

  runs/<task>-<difficulty>/<network>/seed_<s>/   metrics.jsonl, checkpoints/ of each run, with
                 config.json (its resolved config) and commit.txt (the commit it ran at)
  results.csv    one row per run: best and final eval return, env steps and seconds to
                 ``threshold`` (empty if never reached), median env steps/s
  results.md     per task and network, mean and spread over seeds, beside the published
                 anchors (column POPGym, with sources)
  curves.png     eval return against env steps, a panel per task, a line per network
                 (mean over seeds, the seeds' range shaded)

Rerunning with the same ``out`` skips runs that finished and resumes the others from
their latest checkpoint (a run that never reached one starts again; its partial
files are kept beside it as ``<dir>.interrupted-<n>``). ``tables_only=true`` trains nothing and
writes the three files from the runs already under ``out`` (those not finished marked so).
"""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

from rmuzero import cli

# Presets: a named, documented set of runs (preset=NAME); options given beside it override its own.
POPGYM_FAMILIES = (  # every POPGym family; those without a learning result before the preset run first
    "higher_lower",
    "multiarmed_bandit",
    "minesweeper",
    "concentration",
    "battleship",
    "labyrinth_escape",
    "labyrinth_explore",
    "position_only_cartpole",
    "velocity_only_cartpole",
    "noisy_position_only_cartpole",
    "position_only_pendulum",
    "noisy_position_only_pendulum",
    "repeat_first",
    "repeat_previous",
    "count_recall",
    "autoencode",
)
PRESETS = {
    "popgym-easy": {
        "about": "every POPGym family at Easy, the defaults with FFM, one seed, up to 1M env steps each; a run "
        "stops early once its evaluations have all been 1.0 (the best possible return) for 100k env steps",
        "tasks": [f"{family}:easy" for family in POPGYM_FAMILIES],
        "networks": ["ffm"],
        "seeds": [0],
        "set": [
            "total_env_steps=1000000",
            "eval_every=10000",
            "checkpoint_every=50000",
            "keep_checkpoints=1",
            "early_stop_return=1.0",
            "early_stop_env_steps=100000",
        ],
        "out": "results/popgym-easy",
    },
}
CSV_FIELDS = [
    "task",
    "difficulty",
    "network",
    "seed",
    "env_steps",
    "best_eval_return",
    "final_eval_return",
    "settles_at",
    "steps_to_threshold",
    "seconds_to_threshold",
    "env_steps_per_second",
    "stopped_early",
]


def parse_task(text: str) -> tuple[str, str]:
    name, _, difficulty = text.partition(":")
    return name, difficulty or "easy"


def run_dir(out: Path, task: str, difficulty: str, network: str) -> Path:
    return out / "runs" / f"{task}-{difficulty}" / network


def seed_groups(seeds: list[int]) -> list[list[int]]:
    """Runs of consecutive seeds (each trains in one vmapped process)."""
    groups: list[list[int]] = []
    for seed in sorted(set(seeds)):
        if groups and seed == groups[-1][-1] + 1:
            groups[-1].append(seed)
        else:
            groups.append([seed])
    return groups


def _set_aside(directory: Path) -> None:
    n = 1
    while directory.with_name(f"{directory.name}.interrupted-{n}").exists():
        n += 1
    directory.rename(directory.with_name(f"{directory.name}.interrupted-{n}"))


def run_overrides(task: str, difficulty: str, network: str, seeds: list[int], overrides: list[str]) -> list[str]:
    """The scripts/train.py overrides of one run: its task, network and seeds, then ``overrides``."""
    return [
        f"env=popgym/{task}",
        f"env.difficulty={difficulty}",
        f"network={network}",
        f"seed={seeds[0]}",
        f"num_seeds={len(seeds)}",
        *overrides,
    ]


def run_one(out: Path, task: str, difficulty: str, network: str, seeds: list[int], overrides: list[str]) -> None:
    """Trains seeds ``seeds`` (consecutive) of one task and network, unless already done."""
    from rmuzero.agent import config_to_dict, train

    base = run_dir(out, task, difficulty, network)
    dirs = [base / f"seed_{s}" for s in seeds]
    done = [d / "done.json" for d in dirs]
    if all(path.exists() for path in done):
        print(f"done already: {task}:{difficulty} {network} seeds {seeds}", flush=True)
        return
    config = cli.agent_config(cli.compose(run_overrides(task, difficulty, network, seeds, overrides)))
    resume = all((d / "checkpoints").is_dir() and any((d / "checkpoints").iterdir()) for d in dirs)
    if not resume:
        for d in dirs:
            if d.exists():
                _set_aside(d)
    print(f"{'resuming' if resume else 'training'}: {task}:{difficulty} {network} seeds {seeds}", flush=True)
    for d in dirs:  # the resolved config and the commit it ran at, beside the run's metrics
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.json").write_text(json.dumps(config_to_dict(config), indent=1) + "\n")
        (d / "commit.txt").write_text(cli.git_commit() + "\n")
    if len(seeds) == 1:
        summary = train(config, dirs[0], progress=False, resume=resume)
        summaries = [summary]
    else:
        # train() writes <run>/seed_<s>/ for several seeds: give it the network's directory
        summary = train(config, base, progress=False, resume=resume)
        summaries = summary["seeds"]
    for path, summary in zip(done, summaries):
        path.write_text(json.dumps(summary))


def collect_rows(
    out: Path, tasks: list[tuple[str, str]], networks: list[str], seeds: list[int], threshold: float
) -> list[dict]:
    from rmuzero.metrics import read_metrics

    rows = []
    for task, difficulty in tasks:
        for network in networks:
            for seed in sorted(set(seeds)):
                metrics = run_dir(out, task, difficulty, network) / f"seed_{seed}" / "metrics.jsonl"
                if not metrics.is_file():
                    continue
                lines = read_metrics(metrics)
                done = metrics.parent / "done.json"
                stopped = json.loads(done.read_text()).get("stopped_early", False) if done.is_file() else ""
                evaluations = [
                    (line["env_steps"], line["eval_return"]) for line in lines if line.get("eval_return") is not None
                ]
                rows.append(
                    {
                        "stopped_early": stopped,
                        "task": task,
                        "difficulty": difficulty,
                        "network": network,
                        "seed": seed,
                        "env_steps": max((line["env_steps"] for line in lines), default=0),
                        "settles_at": steps_to_final(evaluations),
                        **{k: v for k, v in cli.summarise_metrics(lines, threshold).items() if k in CSV_FIELDS},
                    }
                )
    return rows


def write_csv(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if row.get(k) is None else row[k] for k in CSV_FIELDS})


def _mean_spread(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def steps_to_final(evaluations: list[tuple[int, float]], within: float = 0.05) -> int | None:
    """Env steps of the first evaluation from which every later one stays within ``within`` of
    the final evaluation (the run's settling point); None without evaluations."""
    if not evaluations:
        return None
    final = evaluations[-1][1]
    settled = evaluations[-1][0]
    for steps, value in reversed(evaluations):
        if abs(value - final) > within:
            break
        settled = steps
    return settled


def normalised(value: float | None, random: float | None, best: float | None) -> float | None:
    """(value - random) / (best - random): 0 at chance, 1 at the ceiling (the POPGym paper's aggregate)."""
    if value is None or random is None or best is None or best == random:
        return None
    return (value - random) / (best - random)


def _cell(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def write_markdown(rows: list[dict], path: Path, *, threshold: float, command: str, machine: str) -> None:
    """results.md: a row per task and network beside each task's reference returns
    (rmuzero.envs.popgym.anchors: chance, ceiling, and the published figures where they could be read)."""
    from rmuzero.envs.popgym.anchors import SOURCES, UNVERIFIED, reference

    lines = [
        "# rmuzero suite results",
        "",
        f"Machine: {machine}  ",
        f"Command: `{command}`  ",
        f"Commit: {cli.git_commit()}",
        "",
        "Protocol, the same for every row: evaluation every `eval_every` env steps, 32 episodes of the greedy "
        "search (the acting search's improved policy, argmax, no exploration), the memory reset at every episode "
        "start; the number is the mean return over those episodes. Final eval: the last evaluation of the run; "
        "best eval: the highest; both a mean ± sample std over seeds. Settles at: the first evaluation from which "
        "every later one is within 0.05 of the final one (median over seeds). Steps to "
        f"{threshold}: median over the seeds that reached it (reached / seeds). Normalised: (final - random) / "
        "(best possible - random), 0 at chance and 1 at the ceiling. A run that stopped early had every evaluation "
        "at the task's maximum (1.0) for 100k env steps; one not finished was interrupted there (the same command "
        "resumes it).",
        "",
        f"| task | network | seeds | env steps | final eval | best eval | settles at | steps to {threshold} "
        "| random | best possible | normalised | published |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["task"], row["difficulty"], row["network"]), []).append(row)
    scores: dict[str, list[float]] = {}
    for (task, difficulty, network), group in groups.items():
        reached = [r["steps_to_threshold"] for r in group if r["steps_to_threshold"] is not None]
        steps = f"{statistics.median(reached):,.0f} ({len(reached)}/{len(group)})" if reached else f"- (0/{len(group)})"
        finals = [r["final_eval_return"] for r in group if r["final_eval_return"] is not None]
        settles = [r["settles_at"] for r in group if r.get("settles_at") is not None]
        ref = reference(f"popgym/{task}", difficulty)
        score = normalised(statistics.mean(finals) if finals else None, ref["random"], ref["best_possible"])
        if score is not None:
            scores.setdefault(network, []).append(score)
        read = [
            (label, ref[field])
            for label, field in (
                ("POPGym GRU", "popgym_gru"),
                (f"POPGym best ({ref['popgym_best_model']})", "popgym_best"),
                ("S5", "s5"),
                ("FFM", "ffm"),
            )
            if ref[field] is not None
        ]
        unverified = UNVERIFIED.get((f"popgym/{task}", difficulty), [])
        published = (
            "; ".join(
                [f"{label} {value}" for label, value in read]
                + [f"{label} {value} (unverified)" for label, value, _ in unverified]
            )
            or "not found"
        )
        stopped = " (stopped early)" if any(r.get("stopped_early") is True for r in group) else ""
        if any(r.get("stopped_early") == "" for r in group):  # no done.json: interrupted, resumable
            stopped += " (not finished)"
        lines.append(
            f"| {task} {difficulty} | {network} | {','.join(str(r['seed']) for r in group)} "
            f"| {max(r['env_steps'] for r in group):,}{stopped} "
            f"| {_mean_spread(finals)} "
            f"| {_mean_spread([r['best_eval_return'] for r in group if r['best_eval_return'] is not None])} "
            f"| {f'{statistics.median(settles):,.0f}' if settles else '-'} | {steps} "
            f"| {_cell(ref['random'])} | {_cell(ref['best_possible'])} ({ref['best_possible_kind']}) "
            f"| {_cell(score, 2)} | {published} |"
        )
    lines += [
        "",
        "Mean normalised score over the tasks above: "
        + (
            ", ".join(
                f"{network} {statistics.mean(values):.3f} over {len(values)} tasks"
                for network, values in scores.items()
            )
            or "none yet"
        )
        + ". The published models' aggregate over the same tasks is not computed: the POPGym paper's "
        "per-task figures were read only for five Hard tasks (rmuzero/envs/popgym/anchors.py, NOT_FOUND).",
        "",
        "Sources:",
        f"- random, best possible: {SOURCES['random']}; ceilings as `rmuzero/envs/popgym/anchors.py` says per family",
        f"- published: {SOURCES['popgym']} S5: {SOURCES['s5']} Figures marked unverified come from a third "
        "party's transcription of the POPGym table (rmuzero/envs/popgym/anchors.py, UNVERIFIED); MMER is the best "
        "mean episodic return seen in training, so the nearest column here is the best eval.",
    ]
    path.write_text("\n".join(lines) + "\n")


def load_curves(out: Path, rows: list[dict]) -> dict:
    """{(task, difficulty): {network: [(env_steps [n], eval_return [n]) per seed]}} from the runs."""
    from rmuzero.metrics import read_metrics

    curves: dict = {}
    for row in rows:
        metrics = run_dir(out, row["task"], row["difficulty"], row["network"]) / f"seed_{row['seed']}" / "metrics.jsonl"
        evals = [line for line in read_metrics(metrics) if line.get("eval_return") is not None]
        curve = ([line["env_steps"] for line in evals], [line["eval_return"] for line in evals])
        curves.setdefault((row["task"], row["difficulty"]), {}).setdefault(row["network"], []).append(curve)
    return curves


def plot_curves(curves: dict, path: Path) -> None:
    """A panel per task: per network, the mean over seeds (at the env steps all seeds share)
    with the seeds' min-max shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    tasks = sorted(curves)
    fig, axes = plt.subplots(1, max(len(tasks), 1), figsize=(5 * max(len(tasks), 1), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for network, seeds in sorted(curves[task].items()):
            shared = sorted(set.intersection(*(set(steps) for steps, _ in seeds)))
            if not shared:
                continue
            values = np.array([[dict(zip(steps, returns))[s] for s in shared] for steps, returns in seeds])
            (line,) = ax.plot(shared, values.mean(axis=0), label=f"{network} ({len(seeds)} seeds)")
            if len(seeds) > 1:
                ax.fill_between(shared, values.min(axis=0), values.max(axis=0), color=line.get_color(), alpha=0.2)
        ax.set_title(f"{task[0]} {task[1]}")
        ax.set_xlabel("env steps")
        ax.set_ylabel("eval return")
        ax.set_ylim(-1.05, 1.05)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_results(out: Path, tasks, networks, seeds, *, threshold: float, command: str, machine: str) -> list[dict]:
    rows = collect_rows(out, tasks, networks, seeds, threshold)
    write_csv(rows, out / "results.csv")
    write_markdown(rows, out / "results.md", threshold=threshold, command=command, machine=machine)
    plot_curves(load_curves(out, rows), out / "curves.png")
    return rows


USAGE = (
    "usage: python scripts/suite.py [preset=<name>] [tasks=[<task>:<difficulty>,...]] [networks=[...]] "
    "[seeds=[...]] [threshold=T] [out=<dir>] [tables_only=true] [train.py key=value ...]"
)
OPTIONS = {
    "preset": None,
    "tasks": ["repeat_previous:easy"],
    "networks": ["ffm", "gru"],
    "seeds": [0, 1, 2],
    "threshold": 0.95,
    "out": None,
    "tables_only": False,
}
SUITE_KEYS = {
    "env": "tasks=",
    "network": "networks=",
    "seed": "seeds=",
    "num_seeds": "seeds=",
    "progress": "nothing (the suite trains quietly)",
    "resume": "nothing (the suite resumes by itself)",
    "hydra": "out=",
}  # config keys the suite sets itself -> the option that says what they say


def preset_tokens(name: str) -> list[str]:
    """A preset as the options and overrides it stands for."""
    if name not in PRESETS:
        raise cli.UsageError(f"preset={name}; valid: {', '.join(sorted(PRESETS))}")
    preset = PRESETS[name]
    return [
        *(f"{key}=[{','.join(map(str, preset[key]))}]" for key in ("tasks", "networks", "seeds") if key in preset),
        *([f"out={preset['out']}"] if "out" in preset else []),
        *preset.get("set", []),
    ]


def parse(argv: list[str]) -> tuple[dict, list[str]]:
    """``(options, overrides)`` of a command line, its preset's tokens first."""
    presets = "\n".join(f"  {name}: {preset['about']}" for name, preset in PRESETS.items())
    args, _ = cli.parse_args(argv, OPTIONS, usage=USAGE, overrides=True, doc=f"{__doc__}\nPresets:\n{presets}")
    if args["preset"] is not None:
        args, overrides = cli.parse_args([*preset_tokens(args["preset"]), *argv], OPTIONS, usage=USAGE, overrides=True)
    else:
        _, overrides = cli.parse_args(argv, OPTIONS, usage=USAGE, overrides=True)
    for token in overrides:
        key = token.partition("=")[0].lstrip("+~")
        head = key.split(".")[0]
        if key in SUITE_KEYS or (head in ("env", "hydra") and head in SUITE_KEYS):
            raise cli.UsageError(f"{token}: the suite sets {head} for each run; valid: {SUITE_KEYS[head]}")
    for key in ("tasks", "networks", "seeds"):
        if not args[key]:
            raise cli.UsageError(f"{key}=[]; valid: at least one, e.g. {key}={OPTIONS[key][0]}")
    if args["out"] is None:
        raise cli.UsageError(f"out= is required without a preset; valid presets: {', '.join(sorted(PRESETS))}")
    cli.at_least(args, 0, "seeds")
    return args, overrides


def main(argv: list[str]) -> int:
    import os
    import platform

    argv = cli.translate_legacy(argv)
    args, overrides = parse(argv)
    values = cli.compose(overrides)
    cli.start_devices(values["cpu_devices"])

    from rmuzero.compilation_cache import compilation_cache_dir, enable_compilation_cache
    from rmuzero.envs import DIFFICULTIES, list_envs

    tasks = [parse_task(t) for t in args["tasks"]]
    for task, difficulty in tasks:
        if f"popgym/{task}" not in list_envs() or difficulty not in DIFFICULTIES:
            raise cli.UsageError(
                f"tasks=[{task}:{difficulty}]; valid: <one of "
                f"{', '.join(e.split('/')[1] for e in list_envs())}>:<{' | '.join(DIFFICULTIES)}>"
            )
    for task, difficulty in tasks:  # every run's config checked before the first trains
        for network in args["networks"]:
            cli.agent_config(cli.compose(run_overrides(task, difficulty, network, args["seeds"][:1], overrides)))
    enable_compilation_cache(compilation_cache_dir(values["compilation_cache"]))
    out = Path(args["out"])
    out.mkdir(parents=True, exist_ok=True)
    if not args["tables_only"]:
        for task, difficulty in tasks:
            for network in args["networks"]:
                for seeds in seed_groups(args["seeds"]):
                    run_one(out, task, difficulty, network, seeds, overrides)
    import jax

    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{jax.device_count()} x {jax.devices()[0].device_kind}, jax {jax.__version__}"
    )
    command = " ".join(["python scripts/suite.py", *argv])
    rows = write_results(
        out, tasks, args["networks"], args["seeds"], threshold=args["threshold"], command=command, machine=machine
    )
    print(f"wrote {out / 'results.csv'} ({len(rows)} runs), {out / 'results.md'}, {out / 'curves.png'}")
    return 0


if __name__ == "__main__":
    cli.run(main)
