"""Each memory model learns to recall a value shown at the first step.

Task: a symbol (one of ``NUM_SYMBOLS``) is shown, one-hot, at step 0 of a
sequence of ``T`` steps; later steps show noise only. At the last step the model
must name the symbol. Chance accuracy is 1/4; a model that carries nothing
through its memory stays there. Trained in scan mode (one call over the whole
window); evaluated in scan mode and in single-step mode (threading the carry,
as an actor does).
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
import pytest

from rmuzero.networks import MEMORY_MODELS, make_memory

pytestmark = pytest.mark.slow  # trains every memory model on a recall task

T, BATCH, NUM_SYMBOLS, NOISE = 8, 64, 4, 4
TRAIN_STEPS = 250


class Recaller(nn.Module):
    memory: str

    def setup(self):
        self.core = make_memory(self.memory, features=32)
        self.head = nn.Dense(NUM_SYMBOLS)

    def __call__(self, carry, inputs):
        carry, h = self.core(carry, inputs)
        return carry, self.head(h)

    @nn.nowrap
    def initialize_carry(self, batch_size):
        return make_memory(self.memory, features=32).initialize_carry(batch_size)


def make_batch(key):
    k1, k2 = jax.random.split(key)
    symbols = jax.random.randint(k1, (BATCH,), 0, NUM_SYMBOLS)
    x = jnp.zeros((T, BATCH, NUM_SYMBOLS + NOISE))
    x = x.at[0, :, :NUM_SYMBOLS].set(jax.nn.one_hot(symbols, NUM_SYMBOLS))
    x = x.at[:, :, NUM_SYMBOLS:].set(jax.random.normal(k2, (T, BATCH, NOISE)))
    start = jnp.zeros((T, BATCH), bool).at[0].set(True)
    return x, start, symbols


@functools.lru_cache(maxsize=None)
def trained(name):
    model = Recaller(name)
    carry = model.initialize_carry(BATCH)
    x, start, _ = make_batch(jax.random.key(0))
    params = model.init(jax.random.key(1), carry, (x, start))
    optimizer = optax.adam(3e-3)

    @jax.jit
    def train_step(params, opt_state, key):
        x, start, symbols = make_batch(key)

        def loss_fn(p):
            # Stale, non-identity carry: start[0] must discard it.
            stale = jax.tree.map(lambda c: c + 1.0, carry)
            _, logits = model.apply(p, stale, (x, start))
            return optax.softmax_cross_entropy_with_integer_labels(logits[-1], symbols).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    opt_state = optimizer.init(params)
    for step in range(TRAIN_STEPS):
        params, opt_state, _ = train_step(params, opt_state, jax.random.key(100 + step))
    return model, params


@pytest.mark.parametrize("name", sorted(MEMORY_MODELS))
def test_recalls_the_first_observation(name):
    model, params = trained(name)
    x, start, symbols = make_batch(jax.random.key(999))  # held out
    carry = model.initialize_carry(BATCH)
    apply = jax.jit(model.apply)

    _, logits = apply(params, carry, (x, start))
    scan_accuracy = float(jnp.mean(jnp.argmax(logits[-1], -1) == symbols))

    for t in range(T):
        carry, step_logits = apply(params, carry, (x[t : t + 1], start[t : t + 1]))
    step_accuracy = float(jnp.mean(jnp.argmax(step_logits[-1], -1) == symbols))

    assert scan_accuracy >= 0.95, f"{name}: scan-mode accuracy {scan_accuracy:.2f}"
    assert step_accuracy >= 0.95, f"{name}: single-step accuracy {step_accuracy:.2f}"
