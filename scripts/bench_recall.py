"""Supervised lag-k recall: can a memory model output the symbol it saw k steps ago?

The RL-free core of RepeatPrevious (k = 3 / 31 / 63 for Easy / Medium / Hard):
sequences of T random symbols (one-hot, 4 of them), a ``HistoryEncoder`` with
the given memory and a linear readout trained with Adam on the cross-entropy
of the symbol at t - k, for every t >= k. Reports the accuracy on fresh
sequences after each block of updates (chance is 0.25), side by side per model
and memory option set.

    python scripts/bench_recall.py --lag 31 --length 104 --models ffm gru
    python scripts/bench_recall.py --lag 31 --variant ffm:context_size=16
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import jax
import jax.numpy as jnp
import optax
import yaml

from rmuzero.networks import HistoryEncoder

SYMBOLS = 4


def parse_variant(text: str) -> tuple[str, dict]:
    """``ffm:context_size=16,max_period=128`` -> ("ffm", {"context_size": 16, "max_period": 128})."""
    name, _, options = text.partition(":")
    kwargs = {}
    for item in filter(None, options.split(",")):
        key, _, value = item.partition("=")
        kwargs[key] = yaml.safe_load(value)
    return name, kwargs


def run(memory: str, kwargs: dict, *, lag: int, length: int, batch: int, steps: int, blocks: int,
        seed: int, features: int) -> dict:
    encoder = HistoryEncoder(memory=memory, features=features, latent_size=features, memory_kwargs=kwargs)
    head_key, data_key, init_key = jax.random.split(jax.random.PRNGKey(seed), 3)

    def batch_of(key):
        symbols = jax.random.randint(key, (length, batch), 0, SYMBOLS)
        obs = jax.nn.one_hot(symbols, SYMBOLS)
        start = jnp.zeros((length, batch), bool).at[0].set(True)
        return obs, start, symbols

    obs, start, _ = batch_of(data_key)
    carry = encoder.initialize_carry(batch)
    params = {
        "encoder": encoder.init(init_key, carry, (obs, start)),
        "head": {"w": jax.random.normal(head_key, (features, SYMBOLS)) / jnp.sqrt(features), "b": jnp.zeros(SYMBOLS)},
    }
    optimizer = optax.adam(1e-3)

    def logits_and_labels(params, key):
        obs, start, symbols = batch_of(key)
        _, latents = encoder.apply(params["encoder"], carry, (obs, start))
        logits = latents[lag:] @ params["head"]["w"] + params["head"]["b"]
        return logits, symbols[:-lag] if lag else symbols

    def loss_fn(params, key):
        logits, labels = logits_and_labels(params, key)
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    @jax.jit
    def train_block(params, opt_state, key):
        def update(carry_, key):
            params, opt_state = carry_
            loss, grads = jax.value_and_grad(loss_fn)(params, key)
            updates, opt_state = optimizer.update(grads, opt_state)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, opt_state), losses = jax.lax.scan(update, (params, opt_state), jax.random.split(key, steps))
        logits, labels = logits_and_labels(params, jax.random.fold_in(key, 1))
        return params, opt_state, losses.mean(), jnp.mean(jnp.argmax(logits, -1) == labels)

    opt_state = optimizer.init(params)
    curve = []
    begin = time.perf_counter()
    for block in range(blocks):
        params, opt_state, loss, accuracy = train_block(params, opt_state, jax.random.PRNGKey(1000 + block))
        curve.append({"updates": (block + 1) * steps, "loss": float(loss), "accuracy": float(accuracy)})
    return {"memory": memory, "kwargs": kwargs, "curve": curve, "seconds": time.perf_counter() - begin}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lag", type=int, default=31)
    parser.add_argument("--length", type=int, default=104)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--features", type=int, default=128)
    parser.add_argument("--steps", type=int, default=250, help="updates per block")
    parser.add_argument("--blocks", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", nargs="*", default=["ffm", "gru"])
    parser.add_argument("--variant", action="append", default=[], help="model:key=value,... (memory options)")
    parser.add_argument("--out", default="bench_recall.json")
    args = parser.parse_args()

    print(f"# {platform.processor() or platform.machine()}, {jax.devices()[0].device_kind}; lag {args.lag}, "
          f"T={args.length}, B={args.batch}, width {args.features}; accuracy (chance 0.25) after each "
          f"{args.steps} updates")
    rows = []
    for text in [*args.models, *args.variant]:
        memory, kwargs = parse_variant(text)
        row = run(memory, kwargs, lag=args.lag, length=args.length, batch=args.batch, steps=args.steps,
                  blocks=args.blocks, seed=args.seed, features=args.features)
        rows.append(row)
        accuracies = " ".join(f"{point['accuracy']:.2f}" for point in row["curve"])
        print(f"{text:40s} {accuracies}  ({row['seconds']:.0f} s)", flush=True)
    with open(args.out, "w") as f:
        json.dump({"machine": platform.platform(), "args": vars(args), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
