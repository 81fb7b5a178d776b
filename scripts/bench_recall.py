"""Supervised lag-k recall: can a memory model output the symbol it saw k steps ago?

The RL-free core of RepeatPrevious (k = 3 / 31 / 63 for Easy / Medium / Hard):
sequences of T random symbols (one-hot, 4 of them), a ``HistoryEncoder`` with
the given memory and a linear readout trained with Adam on the cross-entropy
of the symbol at t - k, for every t >= k. Reports the accuracy on fresh
sequences after each block of updates (chance is 0.25), side by side per model
and memory option set.

    python scripts/bench_recall.py --lag 31 --length 104 --models ffm gru
    python scripts/bench_recall.py --lag 31 --variant ffm:context_size=16
    python scripts/bench_recall.py --task count --length 52 --models ffm gru lru

``--task count`` is the RL-free core of CountRecall instead: each step shows a
value kind and a query kind (one-hot, 2 kinds each, as CountRecall Easy's
colours); the label is how many of the value kinds shown so far, the current one
included, equal the current query (0..T; exact counting, no lag).
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
KINDS = 2  # --task count: value / query kinds (CountRecall Easy's colours)


def count_batch(key, length: int, batch: int):
    """(obs [T, B, 2 KINDS], start [T, B], labels [T, B]): the count of values equal to the query."""
    value_key, query_key = jax.random.split(key)
    values = jax.random.randint(value_key, (length, batch), 0, KINDS)
    queries = jax.random.randint(query_key, (length, batch), 0, KINDS)
    seen = jnp.cumsum(jax.nn.one_hot(values, KINDS, dtype=jnp.int32), axis=0)  # [T, B, KINDS]
    labels = jnp.take_along_axis(seen, queries[..., None], axis=-1)[..., 0]
    obs = jnp.concatenate([jax.nn.one_hot(values, KINDS), jax.nn.one_hot(queries, KINDS)], axis=-1)
    start = jnp.zeros((length, batch), bool).at[0].set(True)
    return obs, start, labels


def parse_variant(text: str) -> tuple[str, dict]:
    """``ffm:context_size=16,max_period=128`` -> ("ffm", {"context_size": 16, "max_period": 128})."""
    name, _, options = text.partition(":")
    kwargs = {}
    for item in filter(None, options.split(",")):
        key, _, value = item.partition("=")
        kwargs[key] = yaml.safe_load(value)
    return name, kwargs


def run(memory: str, kwargs: dict, *, lag: int, length: int, batch: int, steps: int, blocks: int,
        seed: int, features: int, task: str = "recall") -> dict:
    encoder = HistoryEncoder(memory=memory, features=features, latent_size=features, memory_kwargs=kwargs)
    head_key, data_key, init_key = jax.random.split(jax.random.PRNGKey(seed), 3)

    classes = length + 1 if task == "count" else SYMBOLS

    def batch_of(key):
        if task == "count":
            return count_batch(key, length, batch)
        symbols = jax.random.randint(key, (length, batch), 0, SYMBOLS)
        obs = jax.nn.one_hot(symbols, SYMBOLS)
        start = jnp.zeros((length, batch), bool).at[0].set(True)
        return obs, start, symbols

    obs, start, _ = batch_of(data_key)
    carry = encoder.initialize_carry(batch)
    params = {
        "encoder": encoder.init(init_key, carry, (obs, start)),
        "head": {"w": jax.random.normal(head_key, (features, classes)) / jnp.sqrt(features), "b": jnp.zeros(classes)},
    }
    optimizer = optax.adam(1e-3)

    def logits_and_labels(params, key):
        obs, start, labels = batch_of(key)
        _, latents = encoder.apply(params["encoder"], carry, (obs, start))
        if task == "count":
            return latents @ params["head"]["w"] + params["head"]["b"], labels
        logits = latents[lag:] @ params["head"]["w"] + params["head"]["b"]
        return logits, labels[:-lag] if lag else labels

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
    parser.add_argument("--task", choices=["recall", "count"], default="recall")
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

    what = f"lag {args.lag}" if args.task == "recall" else "exact count (classes 0..T)"
    print(f"# {platform.processor() or platform.machine()}, {jax.devices()[0].device_kind}; {args.task}: {what}, "
          f"T={args.length}, B={args.batch}, width {args.features}; accuracy after each {args.steps} updates")
    rows = []
    for text in [*args.models, *args.variant]:
        memory, kwargs = parse_variant(text)
        row = run(memory, kwargs, lag=args.lag, length=args.length, batch=args.batch, steps=args.steps,
                  blocks=args.blocks, seed=args.seed, features=args.features, task=args.task)
        rows.append(row)
        accuracies = " ".join(f"{point['accuracy']:.2f}" for point in row["curve"])
        print(f"{text:40s} {accuracies}  ({row['seconds']:.0f} s)", flush=True)
    with open(args.out, "w") as f:
        json.dump({"machine": platform.platform(), "args": vars(args), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
