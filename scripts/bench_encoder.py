"""Forward and forward+backward time of every memory model against ``gru``.

For each model (a one-layer ``make_memory`` stack, width 128) and each sequence
length ``T``: a jit-compiled forward pass over ``x [T, B, 128]`` and a
jit-compiled gradient of a scalar loss, timed after a warm-up call, median of
``--repeats`` runs. Also one single step (``T = 1``) with ``B = 1024``, what an
actor does every environment step. Memoroids are timed under every scan
strategy (``ffm[sequential]``, ``ffm[associative]``, ``ffm[chunked]``), so the
``auto`` choice per backend is a measured one.

    python scripts/bench_encoder.py out=bench_encoder.json
    python scripts/bench_encoder.py models=[gru,ffm,lru,s5] lengths=[1024] strategies=[associative] repeats=7

Options: ``models=`` (default: every memory model), ``lengths=``, ``batch=``, ``width=``,
``step_batch=`` (the batch of the single-step call), ``repeats=``, ``strategies=`` (the
memoroids' scan strategies), ``out=``.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from types import SimpleNamespace

import jax
import jax.numpy as jnp

from rmuzero import cli
from rmuzero.networks import MEMORY_MODELS, make_memory
from rmuzero.networks.scan import resolve_strategy

MEMOROIDS = ("ffm", "lru", "s5", "linear_attention", "mingru")


def _median_seconds(fn, *args, repeats: int) -> float:
    jax.block_until_ready(fn(*args))  # compile + warm-up, excluded
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - begin)
    return statistics.median(times)


def bench_model(name: str, strategy: str | None, *, length: int, batch: int, width: int, repeats: int, backward: bool):
    kwargs = {"scan": strategy} if strategy else {}
    model = make_memory(name, features=width, **kwargs)
    key = jax.random.key(0)
    x = jax.random.normal(key, (length, batch, width))
    start = jax.random.uniform(jax.random.key(1), (length, batch)) < 0.01
    carry = model.initialize_carry(batch)
    params = model.init(key, carry, (x[:1], start[:1]))

    forward = jax.jit(lambda p, c, x, s: model.apply(p, c, (x, s))[1])
    seconds = {"forward": _median_seconds(forward, params, carry, x, start, repeats=repeats)}
    if backward:

        def loss(p, c, x, s):
            return jnp.mean(jnp.square(model.apply(p, c, (x, s))[1]))

        seconds["forward_backward"] = _median_seconds(jax.jit(jax.grad(loss)), params, carry, x, start, repeats=repeats)
    return seconds


USAGE = (
    "usage: python scripts/bench_encoder.py [models=[...]] [lengths=[...]] [batch=B] [width=W] [step_batch=B] "
    "[repeats=N] [strategies=[...]] [out=<file>]"
)
OPTIONS = {
    "models": sorted(MEMORY_MODELS),
    "lengths": [64, 256, 1024, 4096],
    "batch": 32,
    "width": 128,
    "step_batch": 1024,
    "repeats": 7,
    "strategies": ["sequential", "associative", "chunked"],
    "out": "bench_encoder.json",
}
STRATEGIES = ("sequential", "associative", "chunked", "auto")


def main(argv: list[str]) -> int:
    args = SimpleNamespace(**cli.parse_args(argv, OPTIONS, usage=USAGE, doc=__doc__)[0])
    for name in args.models:
        if name not in MEMORY_MODELS:
            raise cli.UsageError(f"models: {name}; valid: {', '.join(sorted(MEMORY_MODELS))}")
    for name in args.strategies:
        if name not in STRATEGIES:
            raise cli.UsageError(f"strategies: {name}; valid: {', '.join(STRATEGIES)}")
    cli.at_least(vars(args), 1, "lengths", "batch", "width", "step_batch", "repeats")

    rows = []
    variants = []
    for name in args.models:
        if name in MEMOROIDS:
            variants += [(name, strategy) for strategy in args.strategies]
        else:
            variants.append((name, None))

    machine = f"{platform.processor() or platform.machine()}, {jax.default_backend()} ({jax.devices()[0].device_kind})"
    print(
        f"# {machine}; B={args.batch}, width={args.width}; median of {args.repeats}; auto -> {resolve_strategy('auto')}"
    )
    header = f"{'model':28s} {'T':>6s} {'fwd ms':>10s} {'fwd+bwd ms':>12s} {'fwd+bwd vs gru':>15s}"
    print(header)
    gru_time = {}
    ordered = sorted(variants, key=lambda v: v[0] != "gru")  # gru first, the reference column
    for length in args.lengths:
        for name, strategy in ordered:
            label = f"{name}[{strategy}]" if strategy else name
            seconds = bench_model(
                name, strategy, length=length, batch=args.batch, width=args.width, repeats=args.repeats, backward=True
            )
            if name == "gru":
                gru_time[length] = seconds["forward_backward"]
            ratio = gru_time.get(length, float("nan")) / seconds["forward_backward"]
            rows.append({"model": label, "T": length, "batch": args.batch, **seconds, "speedup_vs_gru": ratio})
            print(
                f"{label:28s} {length:6d} {1e3 * seconds['forward']:10.2f} "
                f"{1e3 * seconds['forward_backward']:12.2f} {ratio:14.2f}x",
                flush=True,
            )

    print(f"\n# single step (T=1), B={args.step_batch}")
    for name, strategy in ordered:
        label = f"{name}[{strategy}]" if strategy else name
        seconds = bench_model(
            name, strategy, length=1, batch=args.step_batch, width=args.width, repeats=args.repeats, backward=False
        )
        rows.append({"model": label, "T": 1, "batch": args.step_batch, **seconds})
        print(f"{label:28s} {'1':>6s} {1e3 * seconds['forward']:10.3f}", flush=True)

    with open(args.out, "w") as f:
        json.dump({"machine": machine, "commit": cli.git_commit(), "args": vars(args), "rows": rows}, f, indent=1)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    cli.run(main)
