"""Learning curves of the results folders, one panel per folder: the figure in the README.

    python3 scripts/plot_results.py
    python3 scripts/plot_results.py out=results/curves.png dirs=results/repeat_previous_easy,results/count_recall_easy

Each folder holds ``<network>/seed_<s>/metrics.jsonl`` (what ``scripts/train.py num_seeds=N``
and ``scripts/suite.py`` write). A panel draws each seed's evaluation return against env
steps (thin) and their mean at the env steps every seed evaluated (thick), with the task's
target as a dashed line. Only the metrics files are read, so the figure is the same on any
machine; the machine that trained the runs is named in each folder's ``results.md``.

Options (``key=value``, rmuzero.cli): ``out`` the image (default ``results/curves.png``); ``dirs``
the folders, a list (``dirs=[a,b]`` or ``dirs=a,b``; default: the current defaults' folders
below, in that order).
"""

from __future__ import annotations

import json
from pathlib import Path

from rmuzero import cli

ROOT = Path(__file__).resolve().parent.parent
# folder -> (panel title, target return): the targets the README's results table reports
DEFAULTS = {
    "results/repeat_previous_easy": ("RepeatPrevious Easy", 0.95),
    "results/repeat_previous_medium": ("RepeatPrevious Medium", 0.9),
    "results/repeat_previous_hard": ("RepeatPrevious Hard", 0.9),
    "results/count_recall_easy": ("CountRecall Easy", 0.5),
    "results/autoencode_easy": ("Autoencode Easy", None),
}


USAGE = "usage: python scripts/plot_results.py [out=<image>] [dirs=[<folder>,...]]"
OPTIONS = {"out": "results/curves.png", "dirs": list(DEFAULTS)}


def eval_curves(folder: Path) -> dict[str, list[tuple[list[int], list[float]]]]:
    """{network: [(env_steps, eval_return) per seed]} from ``folder/<network>/seed_*/metrics.jsonl``."""
    curves: dict[str, list[tuple[list[int], list[float]]]] = {}
    for path in sorted(folder.glob("*/seed_*/metrics.jsonl")):
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        evals = [line for line in lines if line.get("eval_return") is not None]
        curves.setdefault(path.parent.parent.name, []).append(
            ([line["env_steps"] for line in evals], [line["eval_return"] for line in evals])
        )
    return curves


def plot(folders: list[Path], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, len(folders), figsize=(4 * len(folders), 3.4), squeeze=False)
    for ax, folder in zip(axes[0], folders):
        title, target = DEFAULTS.get(
            str(folder.relative_to(ROOT)) if folder.is_relative_to(ROOT) else "", (folder.name, None)
        )
        curves = eval_curves(folder)
        if not curves:
            raise cli.UsageError(f"no <network>/seed_<s>/metrics.jsonl under {folder}; valid: a folder that holds them")
        for network, seeds in sorted(curves.items()):
            shared = sorted(set.intersection(*(set(steps) for steps, _ in seeds)))
            colour = None
            for steps, returns in seeds:
                (line,) = ax.plot(np.array(steps) / 1000, returns, lw=0.6, alpha=0.5, color=colour)
                colour = line.get_color()
            if shared:
                mean = np.mean([[dict(zip(steps, returns))[s] for s in shared] for steps, returns in seeds], axis=0)
                ax.plot(
                    np.array(shared) / 1000, mean, lw=2, color=colour, label=f"{network}, mean of {len(seeds)} seeds"
                )
        if target is not None:
            ax.axhline(target, ls="--", lw=1, color="grey", label=f"target {target}")
        ax.set_title(title)
        ax.set_xlabel("env steps (thousands)")
        ax.set_ylabel("eval return")
        ax.set_ylim(-1.05, 1.05)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str]) -> int:
    options, _ = cli.parse_args(argv, OPTIONS, usage=USAGE, doc=__doc__)
    folders = [(ROOT / d).resolve() if not Path(d).is_absolute() else Path(d) for d in options["dirs"] if d]
    out = Path(options["out"])
    plot(folders, out if out.is_absolute() else ROOT / out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    cli.run(main)
