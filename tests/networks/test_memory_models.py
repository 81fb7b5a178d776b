"""Every memory model through the calling convention: resets, carries, gradients.

Shapes are small and each model's apply is jitted once per input shape and
shared by the tests (module-scope fixtures) to keep compile counts down.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rmuzero.networks import FFM, MEMORY_MODELS, make_memory

T, B, F, H = 12, 3, 5, 16
NAMES = sorted(MEMORY_MODELS)
COMPLEX_STATE = {"ffm", "lru", "s5"}


class Harness:
    def __init__(self, name):
        self.name = name
        self.model = make_memory(name, features=H)
        k1, k2 = jax.random.split(jax.random.key(hash(name) % 1000))
        self.x = jax.random.normal(k1, (T, B, F))
        self.start = jnp.zeros((T, B), bool).at[0].set(True)
        self.params = self.model.init(k2, self.model.initialize_carry(B), (self.x, self.start))
        self.apply = jax.jit(self.model.apply)

    def identity(self, batch=B):
        return self.model.initialize_carry(batch)


# The fast loop (`pytest -m "not slow"`) checks one memoroid (FFM, the default) and one RNN (GRU);
# the full suite checks every memory model.
FAST_NAMES = ("ffm", "gru")


@pytest.fixture(
    scope="module",
    params=[name if name in FAST_NAMES else pytest.param(name, marks=pytest.mark.slow) for name in NAMES],
)
def harness(request):
    return Harness(request.param)


def _close(a, b, tol=1e-5):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=tol, atol=tol), a, b)


@pytest.mark.slow
def test_tape_of_episodes_equals_each_episode_from_identity(harness):
    # Batch row 0: episodes [0,3) [3,8) [8,12); row 1: [0,1) [1,12); row 2: one episode.
    bounds = {0: [0, 3, 8, 12], 1: [0, 1, 12], 2: [0, 12]}
    start = np.zeros((T, B), bool)
    for row, edges in bounds.items():
        start[edges[:-1], row] = True
    start = jnp.asarray(start)
    # A random (non-identity) incoming carry must be discarded by start[0].
    carry = jax.tree.map(lambda c: c + 3.0, harness.identity())
    _, y = harness.apply(harness.params, carry, (harness.x, start))
    for row, edges in bounds.items():
        for begin, end in zip(edges[:-1], edges[1:]):
            x_episode = jnp.zeros_like(harness.x).at[: end - begin].set(harness.x[begin:end])
            _, y_episode = harness.apply(harness.params, harness.identity(), (x_episode, jnp.zeros((T, B), bool)))
            _close(y[begin:end, row], y_episode[: end - begin, row], tol=2e-5)


@pytest.mark.slow
def test_window_equals_single_steps_and_two_halves(harness):
    start = harness.start.at[5, 1].set(True)
    carry0 = harness.identity()
    carry_full, y_full = harness.apply(harness.params, carry0, (harness.x, start))

    carry, steps = carry0, []
    for t in range(T):
        carry, y_t = harness.apply(harness.params, carry, (harness.x[t : t + 1], start[t : t + 1]))
        steps.append(y_t)
    _close(jnp.concatenate(steps), y_full, tol=2e-5)
    _close(carry, carry_full, tol=2e-5)

    half = T // 2
    carry, y_first = harness.apply(harness.params, carry0, (harness.x[:half], start[:half]))
    carry, y_second = harness.apply(harness.params, carry, (harness.x[half:], start[half:]))
    _close(jnp.concatenate([y_first, y_second]), y_full, tol=2e-5)
    _close(carry, carry_full, tol=2e-5)
    # The carry really carries: dropping it changes the second half.
    _, y_dropped = harness.apply(harness.params, carry0, (harness.x[half:], start[half:]))
    assert float(jnp.max(jnp.abs(y_dropped[:, 0] - y_second[:, 0]))) > 1e-3


@pytest.mark.parametrize("poison", [jnp.nan, 1e30])
def test_stale_carry_does_not_leak_through_a_start(harness, poison):
    stale = jax.tree.map(lambda c: jnp.full_like(c, poison), harness.identity())
    _, y_stale = harness.apply(harness.params, stale, (harness.x, harness.start))
    _, y_clean = harness.apply(harness.params, harness.identity(), (harness.x, harness.start))
    _close(y_stale, y_clean)

    def loss(params, carry):
        return jnp.sum(harness.model.apply(params, carry, (harness.x, harness.start))[1] ** 2)

    grads = jax.grad(loss)(harness.params, stale)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))


def test_gradients_reach_every_parameter(harness):
    start = harness.start.at[6, 2].set(True)

    def loss(params):
        _, y = harness.model.apply(params, harness.identity(), (harness.x, start))
        return jnp.sum(jnp.sin(y) * jnp.arange(H))

    grads = jax.grad(loss)(harness.params)
    for path, g in jax.tree_util.tree_leaves_with_path(grads):
        assert bool(jnp.all(jnp.isfinite(g))), path
        assert float(jnp.max(jnp.abs(g))) > 0.0, f"no gradient reaches {jax.tree_util.keystr(path)}"
    if harness.name == "ffm":
        layer = grads["params"]["layer_0"]
        assert float(jnp.max(jnp.abs(layer["alpha"]))) > 0 and float(jnp.max(jnp.abs(layer["omega"]))) > 0


def test_parameters_are_strongly_typed_so_training_compiles_once(harness):
    """A weakly typed parameter turns strong after the first optimizer step, so every jitted
    function taking the parameters compiles a second time (measured: the agent's first
    training iterations took 8x longer with FFM's frequencies built from Python floats)."""
    weak = [
        jax.tree_util.keystr(path)
        for path, x in jax.tree_util.tree_leaves_with_path(harness.params)
        if getattr(x, "weak_type", False)
    ]
    assert not weak, f"weakly typed parameters: {weak}"


@pytest.mark.slow
def test_jit_vmap_grad_compose_and_state_dtypes(harness):
    seeds = 2
    xs = jnp.stack([harness.x, -harness.x])
    carry = harness.identity()

    def loss(params, x):
        return jnp.mean(harness.model.apply(params, carry, (x, harness.start))[1] ** 2)

    batched = jax.jit(jax.vmap(jax.value_and_grad(loss), in_axes=(None, 0)))
    values, grads = batched(harness.params, xs)
    for i in range(seeds):
        value, grad = jax.value_and_grad(loss)(harness.params, xs[i])
        np.testing.assert_allclose(values[i], value, rtol=1e-5)
        _close(jax.tree.map(lambda g: g[i], grads), grad, tol=1e-4)

    final, _ = harness.apply(harness.params, carry, (harness.x, harness.start))
    dtypes = {leaf.dtype for leaf in jax.tree.leaves(final)}
    if harness.name in COMPLEX_STATE:
        assert jnp.dtype(jnp.complex64) in dtypes
    else:
        assert dtypes <= {jnp.dtype(jnp.float32), jnp.dtype(jnp.int32)}
    for a, b in zip(jax.tree.leaves(final), jax.tree.leaves(carry)):
        assert a.shape == b.shape and a.dtype == b.dtype


def test_shape_errors_name_expected_and_received(harness):
    carry = harness.identity()
    with pytest.raises(ValueError, match=r"time-major \[T, B, F\]; received shape \(3, 5\)"):
        harness.model.apply(harness.params, carry, (harness.x[0], harness.start[0]))
    with pytest.raises(ValueError, match=r"start must have shape \[T, B\] = \(12, 3\).*received \(12,\)"):
        harness.model.apply(harness.params, carry, (harness.x, harness.start[:, 0]))
    with pytest.raises(ValueError, match=r"batch size B = 3.*received shape \(4"):
        harness.model.apply(harness.params, harness.identity(4), (harness.x, harness.start))


def test_unknown_name_and_bad_options_list_valid_choices():
    with pytest.raises(ValueError, match="valid: ffm, gru, linear_attention, lru, lstm, mingru, s5"):
        make_memory("transformer")
    with pytest.raises(ValueError, match="valid options: .*memory_size"):
        make_memory("ffm", trace_size=3)
    with pytest.raises(ValueError, match="features and num_layers must be positive"):
        make_memory("gru", features=0)


@pytest.mark.slow
def test_stack_of_layers_threads_one_carry_per_layer():
    model = make_memory("ffm", features=8, num_layers=3, memory_size=4, context_size=2)
    carry = model.initialize_carry(2)
    assert len(carry) == 3
    x = jnp.ones((4, 2, 3))
    start = jnp.zeros((4, 2), bool)
    params = model.init(jax.random.key(0), carry, (x, start))
    assert {"layer_0", "layer_1", "layer_2"} <= set(params["params"])
    new_carry, y = model.apply(params, carry, (x, start))
    assert y.shape == (4, 2, 8) and len(new_carry) == 3
    with pytest.raises(ValueError, match="tuple of 3 layer carries"):
        model.apply(params, carry[:2], (x, start))


def test_ffm_alone_matches_its_equations():
    """One FFM layer against the paper's equations written out with numpy."""
    layer = FFM(features=4, memory_size=3, context_size=2)
    x = jax.random.normal(jax.random.key(0), (5, 1, 2))
    start = jnp.zeros((5, 1), bool).at[3].set(True)
    params = layer.init(jax.random.key(1), layer.initialize_carry(1), (x, start))
    _, y = layer.apply(params, layer.initialize_carry(1), (x, start))
    p = jax.tree.map(np.asarray, params["params"])
    xn = np.asarray(x[:, 0], np.float64)
    sig = lambda v: 1 / (1 + np.exp(-v))
    dense = lambda name, v: v @ p[name]["kernel"] + p[name]["bias"]
    gamma = np.exp(-np.abs(p["alpha"])[:, None] + 1j * p["omega"][None, :])
    memory = np.zeros((3, 2), complex)
    for t in range(5):
        trace = dense("pre", xn[t]) * sig(dense("gate_in", xn[t]))
        memory = (0 if start[t, 0] else memory) * gamma + trace[:, None]
        z = dense("mix", np.concatenate([memory.real, memory.imag], axis=-1).reshape(-1))
        z = (z - z.mean()) / np.sqrt(z.var() + 1e-6) * p["norm"]["scale"] + p["norm"]["bias"]
        gate = sig(dense("gate_out", xn[t]))
        expected = z * gate + dense("skip", xn[t]) * (1 - gate)
        np.testing.assert_allclose(np.asarray(y[t, 0]), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "zero_frequency, expected",
    [(False, [np.pi / 4, np.pi / 2, 3 * np.pi / 4, np.pi]), (True, [0.0, np.pi / 4, np.pi / 2, 3 * np.pi / 4])],
)
def test_ffm_context_frequencies(zero_frequency, expected):
    """omega_c = (2 pi / min_period) (c + 1) / C, or c / C with zero_frequency (min_period 2, C = 4)."""
    layer = FFM(features=4, memory_size=2, context_size=4, zero_frequency=zero_frequency)
    x = jnp.zeros((1, 1, 2))
    params = layer.init(jax.random.key(0), layer.initialize_carry(1), (x, jnp.ones((1, 1), bool)))
    np.testing.assert_allclose(np.asarray(params["params"]["omega"]), expected, rtol=1e-6)


def test_output_at_positions_equals_the_full_output_gathered(harness):
    """``positions [R, B]``: the output at those steps (read out there only) is the full
    output at those steps, and the carry is unchanged; positions repeat and go out of order."""
    positions = jnp.asarray([[0, 11, 5], [7, 7, 2], [11, 0, 9], [3, 4, 5]], jnp.int32)  # [R=4, B=3]
    carry_full, y_full = harness.apply(harness.params, harness.identity(), (harness.x, harness.start))
    carry_at, y_at = jax.jit(harness.model.apply)(
        harness.params, harness.identity(), (harness.x, harness.start), positions
    )
    assert y_at.shape == (4, B, H)
    _close(y_at, y_full[positions, jnp.arange(B)[None, :]], tol=1e-6)
    _close(carry_at, carry_full, tol=0)


def test_positions_of_the_wrong_shape_are_refused():
    layer = make_memory("ffm", features=H)
    x, start = jnp.zeros((T, B, F)), jnp.zeros((T, B), bool)
    with pytest.raises(
        ValueError, match=r"positions must be integer time indices \[R, B\] with B = 3 .*received \(4, 2\)"
    ):
        layer.init(jax.random.key(0), layer.initialize_carry(B), (x, start), jnp.zeros((4, 2), jnp.int32))
