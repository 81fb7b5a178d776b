"""Supervised lag-k recall: can a memory model output the symbol it saw k steps ago?

The RL-free core of RepeatPrevious (k = 3 / 31 / 63 for Easy / Medium / Hard):
sequences of T random symbols (one-hot, 4 of them), a ``HistoryEncoder`` with
the given memory and a linear readout trained with Adam on the cross-entropy
of the symbol at t - k, for every t >= k. Reports the accuracy on fresh
sequences after each block of updates (chance is 0.25), side by side per model
and memory option set.

    python scripts/bench_recall.py lag=31 length=104 models=[ffm,gru]
    python scripts/bench_recall.py lag=31 variant=ffm:context_size=16
    python scripts/bench_recall.py task=count length=52 models=[ffm,gru,lru]

Options: ``task=`` (recall | count | count_recall), ``feedback=`` (below), ``pool=``,
``refresh=``, ``epsilon=``, ``lag=``, ``length=`` (T), ``batch=``, ``features=`` (the width),
``steps=`` (updates per block), ``blocks=``, ``seed=``, ``learning_rate=`` (Adam's step size),
``models=``, ``variant=`` (memory options, ``model:key=value``; a list, quoted where one has
several: ``'variant=["ffm:context_size=16,max_period=128"]'``), ``out=``.

``task=count`` is the RL-free core of CountRecall instead: each step shows a
value kind and a query kind (one-hot, 2 kinds each, as CountRecall Easy's
colours); the label is how many of the value kinds shown so far, the current one
included, equal the current query (0..T; exact counting, no lag).

``task=count_recall`` deals as CountRecall Easy does (each sequence a shuffled deck of
26 + 26 values and one of queries, T = 51, answers 0..26), and ``feedback=`` says what
the learner is told at each step:

- ``label``: the count itself (a linear readout, cross-entropy; as above);
- ``every_action``: for every one of the 27 answers, whether it is right: a reward model
  ``r(latent, answer)`` shaped as the agent's (an MLP of the min-max scaled latent and
  the one-hot answer, LayerNorm, ReLU), trained with a logistic loss on all 27;
- ``taken_action``: the same model told only about one answer per step, drawn uniformly:
  what an agent's reward model learns from (the environment's reward says only whether
  the answer given was right);
- ``policy_action``: told about one answer per step too, but the answer an agent would
  give: the model's own best, or with probability ``epsilon`` a uniform one (the agent's
  answers come from a search over its own reward model, not uniformly).

Accuracy is the model's top answer against the count, on fresh deals. The loss of
``taken_action`` is, in expectation over the uniform answer, that of ``every_action`` (a mean
over the 27 answers): the same gradient, from 27 times fewer terms.

    python scripts/bench_recall.py task=count_recall feedback=[label,every_action,taken_action] models=[ffm]

``pool=N refresh=r`` (``taken_action`` only) draws each batch from deals i .. i + N of an
endless stream, i = r x the update's index, each deal with the uniform answers it was given
when first dealt: a replay of N episodes taking in r new ones per update, so the learner
sees fewer distinct deals, each many times (fresh deals every update otherwise).

    python scripts/bench_recall.py task=count_recall feedback=taken_action models=[ffm] pool=640 refresh=4.8
"""

from __future__ import annotations

import json
import platform
import time
from types import SimpleNamespace

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from rmuzero import cli
from rmuzero.networks import HistoryEncoder
from rmuzero.networks.muzero import scale_latent

SYMBOLS = 4
KINDS = 2  # task=count: value / query kinds (CountRecall Easy's colours)
DECK = 52  # task=count_recall: CountRecall Easy's deck, 26 cards of each colour


def count_batch(key, length: int, batch: int):
    """(obs [T, B, 2 KINDS], start [T, B], labels [T, B]): the count of values equal to the query."""
    value_key, query_key = jax.random.split(key)
    values = jax.random.randint(value_key, (length, batch), 0, KINDS)
    queries = jax.random.randint(query_key, (length, batch), 0, KINDS)
    return count_observations(values, queries), count_starts(length, batch), count_labels(values, queries)


def count_labels(values, queries):
    """[T, B] how many of values[0..t] equal queries[t] (kinds, [T, B] ints)."""
    seen = jnp.cumsum(jax.nn.one_hot(values, KINDS, dtype=jnp.int32), axis=0)  # [T, B, KINDS]
    return jnp.take_along_axis(seen, queries[..., None], axis=-1)[..., 0]


def count_observations(values, queries):
    """[T, B, 2 KINDS]: one-hot value kind, then one-hot query kind (CountRecall's observation)."""
    return jnp.concatenate([jax.nn.one_hot(values, KINDS), jax.nn.one_hot(queries, KINDS)], axis=-1)


def count_starts(length: int, batch: int):
    return jnp.zeros((length, batch), bool).at[0].set(True)


def count_recall_batch(key, batch: int):
    """(obs [51, B, 4], start [51, B], labels [51, B]) dealt as CountRecall Easy: shuffled decks."""
    deck = jnp.repeat(jnp.arange(KINDS), DECK // KINDS)
    value_key, query_key = jax.random.split(key)
    values, queries = (
        jax.vmap(lambda k: jax.random.permutation(k, deck))(jax.random.split(k, batch)).T[: DECK - 1]
        for k in (value_key, query_key)
    )
    return count_observations(values, queries), count_starts(DECK - 1, batch), count_labels(values, queries)


def pooled_deals(key, indices, classes: int):
    """Deals ``indices [B]`` of an endless stream, the same whenever drawn, and the uniform answers
    given when each was dealt: (obs [51, B, 4], start [51, B], labels [51, B], answers [51, B])."""
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(indices)
    obs, start, labels = jax.vmap(lambda k: count_recall_batch(k, 1), out_axes=1)(keys)
    answers = jax.vmap(lambda k: jax.random.randint(jax.random.fold_in(k, 7), (DECK - 1,), 0, classes), out_axes=1)(
        keys
    )
    return obs[:, :, 0], start[:, :, 0], labels[:, :, 0], answers


class RewardModel(nn.Module):
    """``r(latent, answer)``: the logit of "this answer is right", shaped as the agent's reward MLP."""

    num_answers: int
    width: int

    @nn.compact
    def __call__(self, latent, answer):
        x = jnp.concatenate([scale_latent(latent), jax.nn.one_hot(answer, self.num_answers)], axis=-1)
        return nn.Dense(1)(nn.relu(nn.LayerNorm()(nn.Dense(self.width)(x))))[..., 0]


def parse_variant(text: str) -> tuple[str, dict]:
    """``ffm:context_size=16,max_period=128`` -> ("ffm", {"context_size": 16, "max_period": 128})."""
    name, _, options = text.partition(":")
    kwargs = {}
    for item in filter(None, options.split(",")):
        key, _, value = item.partition("=")
        kwargs[key] = cli.parse_value(value)
    return name, kwargs


def run(
    memory: str,
    kwargs: dict,
    *,
    lag: int,
    length: int,
    batch: int,
    steps: int,
    blocks: int,
    seed: int,
    features: int,
    task: str = "recall",
    feedback: str = "label",
    learning_rate: float = 1e-3,
    epsilon: float = 0.1,
    pool: int = 0,
    refresh: float = 0.0,
) -> dict:
    encoder = HistoryEncoder(memory=memory, features=features, latent_size=features, memory_kwargs=kwargs)
    head_key, data_key, init_key = jax.random.split(jax.random.PRNGKey(seed), 3)

    classes = {"count": length + 1, "count_recall": DECK // KINDS + 1}.get(task, SYMBOLS)

    def batch_of(key):
        if task == "count":
            return count_batch(key, length, batch)
        if task == "count_recall":
            return count_recall_batch(key, batch)
        symbols = jax.random.randint(key, (length, batch), 0, SYMBOLS)
        obs = jax.nn.one_hot(symbols, SYMBOLS)
        start = jnp.zeros((length, batch), bool).at[0].set(True)
        return obs, start, symbols

    obs, start, _ = batch_of(data_key)
    carry = encoder.initialize_carry(batch)
    reward_model = RewardModel(classes, features)
    params = {"encoder": encoder.init(init_key, carry, (obs, start))}
    if feedback == "label":
        params["head"] = {
            "w": jax.random.normal(head_key, (features, classes)) / jnp.sqrt(features),
            "b": jnp.zeros(classes),
        }
    else:
        params["head"] = reward_model.init(head_key, jnp.zeros((features,)), jnp.zeros((), jnp.int32))
    optimizer = optax.adam(learning_rate)

    def scores_and_labels(params, key):
        """[T', B, classes] scores (logits, or the reward model of every answer) and [T', B] labels."""
        obs, start, labels = batch_of(key)
        _, latents = encoder.apply(params["encoder"], carry, (obs, start))
        if task == "recall":
            latents, labels = latents[lag:], labels[:-lag] if lag else labels
        if feedback == "label":
            return latents @ params["head"]["w"] + params["head"]["b"], latents, labels
        answers = jnp.arange(classes)
        every = jax.vmap(lambda a: reward_model.apply(params["head"], latents, jnp.full(labels.shape, a)))(answers)
        return jnp.moveaxis(every, 0, -1), latents, labels

    def loss_fn(params, key, update):
        if feedback in ("taken_action", "policy_action"):  # one answer per step, and whether it was right
            obs, start, labels = batch_of(key)
            answer = jax.random.randint(jax.random.fold_in(key, 1), labels.shape, 0, classes)
            if pool:  # as from a replay: deals first + [0, pool), each with the answers it was given when dealt
                first = jnp.floor(update * refresh).astype(jnp.int32)
                obs, start, labels, answer = pooled_deals(
                    data_key, first + jax.random.randint(key, (batch,), 0, pool), classes
                )
            _, latents = encoder.apply(params["encoder"], carry, (obs, start))
            if feedback == "policy_action":  # the model's own best answer, uniform with probability epsilon
                every = jax.vmap(lambda a: reward_model.apply(params["head"], latents, jnp.full(labels.shape, a)))(
                    jnp.arange(classes)
                )
                greedy = jnp.argmax(jax.lax.stop_gradient(every), axis=0)
                explore = jax.random.uniform(jax.random.fold_in(key, 2), labels.shape) < epsilon
                answer = jnp.where(explore, answer, greedy)
            logit = reward_model.apply(params["head"], latents, answer)
            return optax.sigmoid_binary_cross_entropy(logit, (answer == labels).astype(logit.dtype)).mean()
        scores, _, labels = scores_and_labels(params, key)
        if feedback == "every_action":
            return optax.sigmoid_binary_cross_entropy(scores, jax.nn.one_hot(labels, classes)).mean()
        return optax.softmax_cross_entropy_with_integer_labels(scores, labels).mean()

    @jax.jit
    def train_block(params, opt_state, key, block):
        def update(carry_, xs):
            params, opt_state = carry_
            loss, grads = jax.value_and_grad(loss_fn)(params, *xs)
            updates, opt_state = optimizer.update(grads, opt_state)
            return (optax.apply_updates(params, updates), opt_state), loss

        xs = (jax.random.split(key, steps), block * steps + jnp.arange(steps))
        (params, opt_state), losses = jax.lax.scan(update, (params, opt_state), xs)
        scores, _, labels = scores_and_labels(params, jax.random.fold_in(key, 1))
        return params, opt_state, losses.mean(), jnp.mean(jnp.argmax(scores, -1) == labels)

    opt_state = optimizer.init(params)
    curve = []
    begin = time.perf_counter()
    for block in range(blocks):
        params, opt_state, loss, accuracy = train_block(params, opt_state, jax.random.PRNGKey(1000 + block), block)
        curve.append({"updates": (block + 1) * steps, "loss": float(loss), "accuracy": float(accuracy)})
    return {
        "memory": memory,
        "kwargs": kwargs,
        "feedback": feedback,
        "pool": pool,
        "refresh": refresh,
        "curve": curve,
        "seconds": time.perf_counter() - begin,
    }


USAGE = (
    "usage: python scripts/bench_recall.py [task=recall|count|count_recall] [feedback=[...]] [lag=K] [length=T] "
    "[models=[...]] [variant=[model:key=value,...]] [key=value ...]"
)
OPTIONS = {
    "task": "recall",
    "feedback": ["label"],
    "pool": 0,
    "refresh": 0.0,
    "epsilon": 0.1,
    "lag": 31,
    "length": 104,
    "batch": 32,
    "features": 128,
    "steps": 250,
    "blocks": 8,
    "seed": 0,
    "learning_rate": 1e-3,
    "models": ["ffm", "gru"],
    "variant": [],
    "out": "bench_recall.json",
}
TASKS = ("recall", "count", "count_recall")
FEEDBACK = ("label", "every_action", "taken_action", "policy_action")


def main(argv: list[str]) -> int:
    args = SimpleNamespace(**cli.parse_args(argv, OPTIONS, usage=USAGE, doc=__doc__)[0])
    if args.task not in TASKS:
        raise cli.UsageError(f"task={args.task}; valid: {', '.join(TASKS)}")
    for feedback in args.feedback:
        if feedback not in FEEDBACK:
            raise cli.UsageError(f"feedback: {feedback}; valid: {', '.join(FEEDBACK)}")
    cli.at_least(vars(args), 1, "lag", "length", "batch", "features", "steps", "blocks")
    if args.task == "recall" and args.feedback != ["label"]:
        raise cli.UsageError("feedback=every_action / taken_action / policy_action: with task=count_recall or count")
    if args.pool and (args.task != "count_recall" or args.feedback != ["taken_action"]):
        raise cli.UsageError("pool=: with task=count_recall feedback=taken_action only")
    if args.task == "count_recall":
        args.length = DECK - 1
    what = {
        "recall": f"lag {args.lag}",
        "count": "exact count (classes 0..T)",
        "count_recall": "CountRecall Easy's count (answers 0..26)",
    }[args.task]
    print(
        f"# {platform.processor() or platform.machine()}, {jax.devices()[0].device_kind}; {args.task}: {what}, "
        f"T={args.length}, B={args.batch}, width {args.features}, Adam {args.learning_rate:g}; accuracy after each "
        f"{args.steps} updates"
    )
    rows = []
    for text in [*args.models, *args.variant]:
        memory, kwargs = parse_variant(text)
        for feedback in args.feedback:
            row = run(
                memory,
                kwargs,
                lag=args.lag,
                length=args.length,
                batch=args.batch,
                steps=args.steps,
                blocks=args.blocks,
                seed=args.seed,
                features=args.features,
                task=args.task,
                feedback=feedback,
                learning_rate=args.learning_rate,
                epsilon=args.epsilon,
                pool=args.pool,
                refresh=args.refresh,
            )
            rows.append(row)
            accuracies = " ".join(f"{point['accuracy']:.2f}" for point in row["curve"])
            name = text if args.feedback == ["label"] else f"{text}, {feedback}"
            print(f"{name:40s} {accuracies}  ({row['seconds']:.0f} s)", flush=True)
    with open(args.out, "w") as f:
        json.dump(
            {"machine": platform.platform(), "commit": cli.git_commit(), "args": vars(args), "rows": rows}, f, indent=1
        )
    return 0


if __name__ == "__main__":
    cli.run(main)
