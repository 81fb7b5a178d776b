"""A candidate for FFM's scan cost (issue 9, item 6): its combine with the decay factorised.

The library's combine evaluates ``exp(t * log_decay)`` with ``log_decay [M, C]`` complex: ``M C``
complex exponentials per combine, ``T log T`` combines in the associative scan. FFM's decay
factorises, ``exp(t (-|alpha_m| + i omega_c)) = exp(-t |alpha_m|) exp(i t omega_c)``: ``M``
exponentials and ``C`` cosines and sines, then one ``[M, C]`` product. The same FFM layer
(width 128, M = C = 16, B = 32) runs forward and forward+backward under each combine, timed in
alternation (rounds), median per combine; the outputs are compared first.

    PYTHONPATH=. python3 benchmarks/2026-12-04-ffm-scan/ffm_combine.py --lengths 1024 --strategies associative
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import time
from unittest import mock

import jax
import jax.numpy as jnp

from rmuzero.networks import make_memory, memoroids


@dataclasses.dataclass(frozen=True)
class FactorisedFFMMonoid(memoroids.FFMMonoid):
    """The candidate: ``exp(t Re log_decay[:, 0])`` times ``cos + i sin (t Im log_decay[0])``."""

    def combine(self, a, b):
        steps = b.steps.astype(jnp.float32)[..., None]
        magnitude = jnp.exp(steps * self.log_decay.real[:, 0])[..., :, None]
        phase = steps * self.log_decay.imag[0, :]
        rotation = jax.lax.complex(jnp.cos(phase), jnp.sin(phase))[..., None, :]
        return memoroids.FFMState(a.memory * (magnitude * rotation) + b.memory, a.steps + b.steps)


def build(strategy: str, length: int, batch: int, width: int, monoid_cls):
    memory = make_memory("ffm", features=width, num_layers=1, scan=strategy)
    x = jax.random.normal(jax.random.key(0), (length, batch, width))
    start = jnp.zeros((length, batch), bool).at[length // 3].set(True)
    carry = memory.initialize_carry(batch)
    params = memory.init(jax.random.key(1), carry, (x, start))

    def forward(p, c, x, s):
        with mock.patch.object(memoroids, "FFMMonoid", monoid_cls):
            return memory.apply(p, c, (x, s))[1]

    def loss(p, c, x, s):
        return jnp.mean(forward(p, c, x, s) ** 2)

    return jax.jit(forward), jax.jit(jax.grad(loss)), (params, carry, x, start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024])
    parser.add_argument("--strategies", nargs="+", default=["associative"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out")
    args = parser.parse_args()
    machine = f"{platform.machine()} {jax.devices()[0].device_kind} x{jax.device_count()}, jax {jax.__version__}"
    print(f"# {machine}; B={args.batch}, width={args.width}; median of {args.rounds} alternating rounds")
    print(f"{'T':>5} {'strategy':>12} {'pass':>9} {'complex exp ms':>15} {'factorised ms':>14} {'ratio':>6}")
    rows = []
    for length in args.lengths:
        for strategy in args.strategies:
            variants = {name: build(strategy, length, args.batch, args.width, cls) for name, cls in
                        (("complex_exp", memoroids.FFMMonoid), ("factorised", FactorisedFFMMonoid))}
            outputs = {name: jax.block_until_ready(v[0](*v[2])) for name, v in variants.items()}
            difference = float(jnp.max(jnp.abs(outputs["complex_exp"] - outputs["factorised"])))
            for index, pass_name in enumerate(("forward", "backward")):
                times = {name: [] for name in variants}
                for name, v in variants.items():
                    jax.block_until_ready(v[index](*v[2]))  # compile + warm-up, excluded
                for _ in range(args.rounds):
                    for name, v in variants.items():
                        begin = time.perf_counter()
                        jax.block_until_ready(v[index](*v[2]))
                        times[name].append(time.perf_counter() - begin)
                medians = {name: 1e3 * statistics.median(t) for name, t in times.items()}
                ratio = medians["complex_exp"] / medians["factorised"]
                print(f"{length:>5} {strategy:>12} {pass_name:>9} {medians['complex_exp']:>15.3f} "
                      f"{medians['factorised']:>14.3f} {ratio:>6.2f}")
                rows.append({"length": length, "strategy": strategy, "pass": pass_name,
                             "complex_exp_ms": medians["complex_exp"], "factorised_ms": medians["factorised"],
                             "max_abs_output_difference": difference})
            print(f"#   T={length} {strategy}: largest output difference {difference:.2e}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"machine": machine, "batch": args.batch, "width": args.width, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
