"""Memoroids: linear recurrent layers computed by the resettable scan.

Dimensions: T time, B batch, F input features, H output features, and each
model's own state sizes (M memory, C context, N state, K heads, D head size).

Every layer follows one calling convention (docs/design.md section 3)::

    carry = layer.initialize_carry(batch_size)        # identity state, leaves [B, ...]
    carry, y = layer.apply(params, carry, (x, start))  # x [T, B, F], start [T, B] bool
                                                       # y [T, B, H]; carry after step T

``start[t]`` resets the state to the identity before ``x[t]`` is consumed. Each
layer is ``f`` (input map to monoid elements), a monoid (``combine`` and
``identity``), and ``g`` (readout); ``rmuzero.networks.scan.resettable_scan``
does the rest, so every layer shares one reset rule and one scan.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from rmuzero.networks import scan as scan_lib

Carry = Any


class FFMState(NamedTuple):
    """FFM memory: ``memory [..., M, C]`` complex64 and ``steps [...]`` int32."""

    memory: chex.Array
    steps: chex.Array


class DiagonalState(NamedTuple):
    """State of ``h_t = a_t * h_{t-1} + b_t``: ``decay`` and ``state`` ``[..., N]``."""

    decay: chex.Array
    state: chex.Array


class LogDiagonalState(NamedTuple):
    """Log-space ``h_t = a_t h_{t-1} + b_t`` with ``h, a, b > 0``: logs, ``[..., H]``."""

    log_decay: chex.Array
    log_state: chex.Array


class AttentionState(NamedTuple):
    """Linear attention sums: ``values [..., K, D, D]``, ``keys [..., K, D]``."""

    values: chex.Array
    keys: chex.Array


@dataclasses.dataclass(frozen=True)
class FFMMonoid:
    """``(X, t) • (X', t') = (X exp(t' (-|alpha| (+) i omega)) + X', t + t')``, identity (0, 0)."""

    log_decay: chex.Array  # [M, C] complex64: -|alpha| (+) i omega

    def combine(self, a: FFMState, b: FFMState) -> FFMState:
        decay = jnp.exp(b.steps[..., None, None].astype(jnp.float32) * self.log_decay)
        return FFMState(a.memory * decay + b.memory, a.steps + b.steps)

    def identity(self, like: FFMState) -> FFMState:
        return FFMState(jnp.zeros((), like.memory.dtype), jnp.zeros((), like.steps.dtype))


@dataclasses.dataclass(frozen=True)
class DiagonalMonoid:
    """``(a, h) • (a', h') = (a a', a' h + h')``, identity (1, 0). LRU and S5."""

    def combine(self, a: DiagonalState, b: DiagonalState) -> DiagonalState:
        return DiagonalState(a.decay * b.decay, b.decay * a.state + b.state)

    def identity(self, like: DiagonalState) -> DiagonalState:
        return DiagonalState(jnp.ones((), like.decay.dtype), jnp.zeros((), like.state.dtype))


@dataclasses.dataclass(frozen=True)
class LogDiagonalMonoid:
    """:class:`DiagonalMonoid` in log space (minGRU): identity (0, -inf)."""

    def combine(self, a: LogDiagonalState, b: LogDiagonalState) -> LogDiagonalState:
        return LogDiagonalState(a.log_decay + b.log_decay, jnp.logaddexp(b.log_decay + a.log_state, b.log_state))

    def identity(self, like: LogDiagonalState) -> LogDiagonalState:
        return LogDiagonalState(jnp.zeros((), like.log_decay.dtype), jnp.full((), -jnp.inf, like.log_state.dtype))


@dataclasses.dataclass(frozen=True)
class SumMonoid:
    """Elementwise addition, identity 0 (linear attention's running sums)."""

    def combine(self, a: AttentionState, b: AttentionState) -> AttentionState:
        return jax.tree.map(jnp.add, a, b)

    def identity(self, like: AttentionState) -> AttentionState:
        return jax.tree.map(lambda x: jnp.zeros((), x.dtype), like)


class _Memoroid(nn.Module):
    """Shared ``__call__``: check shapes, input map, resettable scan, readout."""

    features: int = 128
    scan: scan_lib.Strategy = "auto"
    chunk_size: int = 64

    def monoid(self):
        raise NotImplementedError

    def input_map(self, x: chex.Array) -> Carry:
        raise NotImplementedError

    def readout(self, states: Carry, x: chex.Array) -> chex.Array:
        raise NotImplementedError

    @nn.compact
    def __call__(
        self, carry: Carry, inputs: tuple[chex.Array, chex.Array], positions: chex.Array | None = None
    ) -> tuple[Carry, chex.Array]:
        """``positions [R, B]``, if given: the output only at those steps, ``y [R, B, H]`` (the
        readout is per step, so it runs only there; the carry is still the one after step T)."""
        x, start = inputs
        scan_lib.check_inputs(type(self).__name__, carry, x, start)
        scan_lib.check_positions(type(self).__name__, positions, x)
        elements = self.input_map(x)
        states = scan_lib.resettable_scan(
            self.monoid(), carry, elements, start, strategy=self.scan, chunk_size=self.chunk_size
        )
        y = self.readout(*scan_lib.at_positions((states, x), positions))
        return jax.tree.map(lambda s: s[-1], states), y


class FFM(_Memoroid):
    """Fast and Forgetful Memory (Morad et al., 2023), one layer.

    Memory ``X [B, M, C]`` complex64 decays by ``exp(-|alpha_m| + i omega_c)``
    per step. ``alpha`` and ``omega`` are trainable. Trace ``m`` is initialised
    to forget to ``forgotten_at`` after a horizon log-spaced in ``[min_period,
    max_period]``; the context frequencies are evenly spaced from zero,
    ``omega_c = (2 pi / min_period) c / C`` (``zero_frequency``, the default since
    2026-12-04: context 0 a plain decaying sum, the others of periods
    ``min_period C / c``), or with ``zero_frequency=False`` up to the fastest one,
    ``omega_c = (2 pi / min_period) (c + 1) / C`` (periods from ``min_period`` up).

    Why these defaults (``scripts/bench_recall.py``, supervised recall of the
    symbol seen k steps ago, T = 104, width 128, 1000 Adam updates, 2-core
    CPU): the reference initialisation (C = 4 periods linear in [2, 1024], so
    three of four contexts are nearly constant over 100 steps) reached 0.50
    accuracy at k = 31 (chance 0.25) where an LRU reached 1.00: decaying traces
    cannot tell lag 31 from lag 30. Evenly spaced frequencies with M = 16, C = 16
    (the same cost) reached 1.00 at k = 31 and 0.97-1.00 at k = 63; log-spaced
    periods 0.83 / 0.67. With period 1 (``omega = 2 pi``) the fastest context
    would alias to a constant, so ``min_period`` is 2.

    Why a zero frequency: context 0 is then a plain decaying sum, which counts
    (CountRecall), and the fastest context (period 2) goes. In the supervised
    count probe (``bench_recall.py --task count``, T = 52, 2 seeds) it reached
    0.73 / 0.76 accuracy after 500 updates where the frequencies from period 2
    reached 0.19 / 0.24 (both about 0.96 after 2000), with recall at lag 31 and
    63 unchanged. In the agent (docs/experiments/2026-12-04-zero-frequency.md) CountRecall Easy
    reached 0.5 at 200k / 225k / 200k env steps (seeds 0 / 1 / 2; without it
    525k, then not within 1M twice) and RepeatPrevious Hard 0.9 at 200k / 180k
    (without it 520k / 700k); Easy took 25% more env steps (median of 8 seeds).
    The frequencies are trained parameters: only the initialisation differs, so
    a checkpoint saved without it restores unchanged.
    """

    memory_size: int = 16
    context_size: int = 16
    min_period: float = 2.0
    max_period: float = 1024.0
    forgotten_at: float = 0.01
    zero_frequency: bool = True

    def _decay_init(self, key, shape):
        del key
        horizons = jnp.logspace(math.log10(self.min_period), math.log10(self.max_period), shape[0])
        return (-math.log(self.forgotten_at) / horizons).astype(jnp.float32)

    def _frequency_init(self, key, shape):
        del key
        # float32, not weakly typed: a weak-typed parameter becomes strong after the first
        # optimizer step, and every jitted function taking it would compile twice.
        first = 0 if self.zero_frequency else 1
        steps = jnp.arange(first, shape[0] + first)
        return ((2.0 * math.pi / self.min_period) * steps / shape[0]).astype(jnp.float32)

    def monoid(self) -> FFMMonoid:
        alpha = self.param("alpha", self._decay_init, (self.memory_size,))
        omega = self.param("omega", self._frequency_init, (self.context_size,))
        log_decay = (-jnp.abs(alpha))[:, None] + 1j * omega[None, :]
        return FFMMonoid(log_decay.astype(jnp.complex64))

    def input_map(self, x: chex.Array) -> FFMState:
        pre = nn.Dense(self.memory_size, name="pre")(x)
        gate = nn.sigmoid(nn.Dense(self.memory_size, name="gate_in")(x))
        trace = (pre * gate).astype(jnp.complex64)
        memory = jnp.broadcast_to(trace[..., None], trace.shape + (self.context_size,))
        return FFMState(memory, jnp.ones(x.shape[:2], jnp.int32))

    def readout(self, states: FFMState, x: chex.Array) -> chex.Array:
        memory = states.memory
        flat = jnp.concatenate([memory.real, memory.imag], axis=-1).reshape(memory.shape[:2] + (-1,))
        z = nn.LayerNorm(name="norm")(nn.Dense(self.features, name="mix")(flat))
        gate = nn.sigmoid(nn.Dense(self.features, name="gate_out")(x))
        skip = nn.Dense(self.features, name="skip")(x)
        return z * gate + skip * (1.0 - gate)

    @nn.nowrap
    def initialize_carry(self, batch_size: int) -> FFMState:
        return FFMState(
            jnp.zeros((batch_size, self.memory_size, self.context_size), jnp.complex64),
            jnp.zeros((batch_size,), jnp.int32),
        )


def _gated_output(features: int, z: chex.Array) -> chex.Array:
    """GELU then a gated linear unit: the readout of the diagonal SSM layers."""
    z = nn.gelu(z)
    return nn.Dense(features, name="out")(z) * nn.sigmoid(nn.Dense(features, name="out_gate")(z))


class _DiagonalSSM(_Memoroid):
    """Shared by LRU and S5: complex diagonal recurrence with a real readout."""

    state_size: int = 64

    def monoid(self) -> DiagonalMonoid:
        return DiagonalMonoid()

    def transition(self, num_inputs: int) -> tuple[chex.Array, chex.Array]:
        """Returns ``(decay [N] complex64, input matrix [N, F] complex64)``."""
        raise NotImplementedError

    def input_map(self, x: chex.Array) -> DiagonalState:
        decay, input_matrix = self.transition(x.shape[-1])
        driven = jnp.einsum("nf,tbf->tbn", input_matrix, x.astype(jnp.complex64))
        return DiagonalState(jnp.broadcast_to(decay, driven.shape), driven)

    def readout(self, states: DiagonalState, x: chex.Array) -> chex.Array:
        scale = 1.0 / math.sqrt(self.state_size)
        c_re = self.param("c_re", nn.initializers.normal(scale), (self.state_size, self.features))
        c_im = self.param("c_im", nn.initializers.normal(scale), (self.state_size, self.features))
        h = states.state
        z = h.real @ c_re - h.imag @ c_im  # Re(C h)
        z = z + nn.Dense(self.features, use_bias=False, name="feedthrough")(x)
        return _gated_output(self.features, z)

    @nn.nowrap
    def initialize_carry(self, batch_size: int) -> DiagonalState:
        shape = (batch_size, self.state_size)
        return DiagonalState(jnp.ones(shape, jnp.complex64), jnp.zeros(shape, jnp.complex64))


class LRU(_DiagonalSSM):
    """Linear Recurrent Unit (Orvieto et al., 2023).

    ``lambda = exp(-exp(nu_log) + i exp(theta_log))`` with ``|lambda|`` initialised
    uniformly on the ring ``[r_min, r_max]``; inputs are normalised by
    ``exp(gamma_log) = sqrt(1 - |lambda|^2)``.
    """

    r_min: float = 0.9
    r_max: float = 0.999
    max_phase: float = 2.0 * math.pi

    def transition(self, num_inputs: int) -> tuple[chex.Array, chex.Array]:
        def nu_init(key, shape):
            u = jax.random.uniform(key, shape)
            return jnp.log(-0.5 * jnp.log(u * (self.r_max**2 - self.r_min**2) + self.r_min**2))

        def theta_init(key, shape):
            return jnp.log(self.max_phase * jax.random.uniform(key, shape, minval=1e-4))

        nu_log = self.param("nu_log", nu_init, (self.state_size,))
        theta_log = self.param("theta_log", theta_init, (self.state_size,))
        modulus = jnp.exp(-jnp.exp(nu_log))
        gamma_log = self.param("gamma_log", lambda key, shape: jnp.log(jnp.sqrt(1.0 - modulus**2)), (self.state_size,))
        decay = jnp.exp(-jnp.exp(nu_log) + 1j * jnp.exp(theta_log))
        scale = 1.0 / math.sqrt(2 * num_inputs)
        b_re = self.param("b_re", nn.initializers.normal(scale), (self.state_size, num_inputs))
        b_im = self.param("b_im", nn.initializers.normal(scale), (self.state_size, num_inputs))
        input_matrix = (b_re + 1j * b_im) * jnp.exp(gamma_log)[:, None]
        return decay.astype(jnp.complex64), input_matrix.astype(jnp.complex64)


class S5(_DiagonalSSM):
    """Diagonal complex state-space layer (Smith et al., 2023), ZOH-discretised.

    ``Lambda = -exp(log_neg_real) + i imag`` (S4D-Lin initialisation: real
    -0.5, imaginary ``pi n``), a learnt step ``Delta`` per state,
    ``Lambda_bar = exp(Lambda Delta)``, ``B_bar = (Lambda_bar - 1) / Lambda B``.
    """

    min_step: float = 1e-3
    max_step: float = 1e-1

    def transition(self, num_inputs: int) -> tuple[chex.Array, chex.Array]:
        log_neg_real = self.param(
            "log_neg_real", lambda key, shape: jnp.full(shape, math.log(0.5), jnp.float32), (self.state_size,)
        )
        imag = self.param(
            "imag", lambda key, shape: math.pi * jnp.arange(shape[0], dtype=jnp.float32), (self.state_size,)
        )

        def log_step_init(key, shape):
            return jax.random.uniform(key, shape, minval=math.log(self.min_step), maxval=math.log(self.max_step))

        log_step = self.param("log_step", log_step_init, (self.state_size,))
        scale = 1.0 / math.sqrt(num_inputs)
        b_re = self.param("b_re", nn.initializers.normal(scale), (self.state_size, num_inputs))
        b_im = self.param("b_im", nn.initializers.normal(scale), (self.state_size, num_inputs))
        eigenvalues = -jnp.exp(log_neg_real) + 1j * imag
        decay = jnp.exp(eigenvalues * jnp.exp(log_step))
        input_matrix = ((decay - 1.0) / eigenvalues)[:, None] * (b_re + 1j * b_im)
        return decay.astype(jnp.complex64), input_matrix.astype(jnp.complex64)


class LinearAttention(_Memoroid):
    """Causal linear attention (Katharopoulos et al., 2020) with ``K`` heads.

    State: ``S = sum phi(k) v^T [K, D, D]`` and the running key sum
    ``z = sum phi(k) [K, D]`` (the whole sum, not only the latest key);
    ``y = phi(q) S / (phi(q) . z + eps)``, ``phi = elu + 1``.
    """

    num_heads: int = 8
    epsilon: float = 1e-6

    @property
    def head_size(self) -> int:
        if self.features % self.num_heads:
            raise ValueError(
                f"LinearAttention: features ({self.features}) must be divisible by num_heads ({self.num_heads})"
            )
        return self.features // self.num_heads

    def monoid(self) -> SumMonoid:
        return SumMonoid()

    def _heads(self, x: chex.Array, name: str) -> chex.Array:
        y = nn.Dense(self.features, name=name)(x)
        return y.reshape(y.shape[:-1] + (self.num_heads, self.head_size))

    def input_map(self, x: chex.Array) -> AttentionState:
        keys = nn.elu(self._heads(x, "key")) + 1.0
        values = self._heads(x, "value")
        return AttentionState(keys[..., :, None] * values[..., None, :], keys)

    def readout(self, states: AttentionState, x: chex.Array) -> chex.Array:
        queries = nn.elu(self._heads(x, "query")) + 1.0
        numerator = jnp.einsum("tbkd,tbkde->tbke", queries, states.values)
        denominator = jnp.einsum("tbkd,tbkd->tbk", queries, states.keys)[..., None] + self.epsilon
        y = (numerator / denominator).reshape(x.shape[:2] + (self.features,))
        return nn.Dense(self.features, name="out")(y)

    @nn.nowrap
    def initialize_carry(self, batch_size: int) -> AttentionState:
        return AttentionState(
            jnp.zeros((batch_size, self.num_heads, self.head_size, self.head_size), jnp.float32),
            jnp.zeros((batch_size, self.num_heads, self.head_size), jnp.float32),
        )


def _log_g(x: chex.Array) -> chex.Array:
    """``log g(x)`` with ``g(x) = x + 1/2`` for ``x >= 0`` and ``sigmoid(x)`` below."""
    return jnp.where(x >= 0, jnp.log(jnp.maximum(x, 0.0) + 0.5), -jax.nn.softplus(-x))


class MinGRU(_Memoroid):
    """Minimal GRU in log space (Feng et al., 2024, "Were RNNs all we needed?").

    ``h_t = (1 - z_t) h_{t-1} + z_t g(h~_t)`` with ``z = sigmoid(W_z x)``,
    ``h~ = W_h x``; computed as logs so the scan is stable. The carry is
    ``(log prod(1 - z), log h)``; its identity (and initial state) is
    ``(0, -inf)``, i.e. ``h = 0``.
    """

    def monoid(self) -> LogDiagonalMonoid:
        return LogDiagonalMonoid()

    def input_map(self, x: chex.Array) -> LogDiagonalState:
        gate_logits = nn.Dense(self.features, name="gate")(x)
        candidate = nn.Dense(self.features, name="candidate")(x)
        log_decay = -jax.nn.softplus(gate_logits)  # log(1 - z)
        log_input = -jax.nn.softplus(-gate_logits) + _log_g(candidate)  # log(z g(h~))
        return LogDiagonalState(log_decay, log_input)

    def readout(self, states: LogDiagonalState, x: chex.Array) -> chex.Array:
        del x
        return nn.Dense(self.features, name="out")(jnp.exp(states.log_state))

    @nn.nowrap
    def initialize_carry(self, batch_size: int) -> LogDiagonalState:
        shape = (batch_size, self.features)
        return LogDiagonalState(jnp.zeros(shape, jnp.float32), jnp.full(shape, -jnp.inf, jnp.float32))
