"""Stacks of memory layers and the ``make_memory`` factory.

Dimensions: T time, B batch, F input features, H features.

``MemoryStack`` projects the input to ``H``, then runs ``num_layers`` memory
layers as pre-norm residual blocks (``h = h + layer(LayerNorm(h))``) and ends
with a LayerNorm. Its carry is a tuple with one entry per layer. It follows the
same calling convention as every layer (docs/design.md section 3).
"""

from __future__ import annotations

from typing import Any, Mapping

import chex
import flax.linen as nn
from flax.core import FrozenDict

from rmuzero.networks import memoroids, rnn
from rmuzero.networks import scan as scan_lib

MEMORY_MODELS: Mapping[str, type[nn.Module]] = FrozenDict(
    {
        "ffm": memoroids.FFM,
        "gru": rnn.GRU,
        "linear_attention": memoroids.LinearAttention,
        "lru": memoroids.LRU,
        "lstm": rnn.LSTM,
        "mingru": memoroids.MinGRU,
        "s5": memoroids.S5,
    }
)


def memory_class(name: str) -> type[nn.Module]:
    """The layer class registered as ``name``; ValueError listing the valid names."""
    if name not in MEMORY_MODELS:
        raise ValueError(f"unknown memory model {name!r}; valid: {', '.join(sorted(MEMORY_MODELS))}")
    return MEMORY_MODELS[name]


def _build_layer(name: str, features: int, kwargs: Mapping[str, Any]):
    """An unbound layer, for validating options and building carries."""
    cls = memory_class(name)
    try:
        return cls(features=features, **dict(kwargs), parent=None)
    except TypeError as error:
        fields = sorted(f for f in cls.__dataclass_fields__ if f not in ("parent", "name"))
        raise ValueError(f"bad option for memory model {name!r}: {error}; valid options: {', '.join(fields)}") from None


class MemoryStack(nn.Module):
    """``num_layers`` residual memory layers of one kind.

    Attributes:
      memory: registered layer name (``rmuzero.networks.MEMORY_MODELS``).
      features: width ``H`` of the residual stream and of every layer.
      num_layers: number of memory layers.
      layer_kwargs: extra options of the layer class (e.g. ``memory_size`` for
        FFM, ``scan`` for every memoroid).
    """

    memory: str = "ffm"
    features: int = 128
    num_layers: int = 1
    layer_kwargs: Mapping[str, Any] = FrozenDict()

    @nn.compact
    def __call__(self, carry: tuple, inputs: tuple[chex.Array, chex.Array], positions: chex.Array | None = None):
        """``positions [R, B]``, if given: the output at those steps only, ``[R, B, H]`` (every
        layer but the last still reads out every step: the next layer's input)."""
        x, start = inputs
        if not isinstance(carry, tuple) or len(carry) != self.num_layers:
            raise ValueError(
                f"MemoryStack: carry must be a tuple of {self.num_layers} layer carries "
                f"(from initialize_carry); received {type(carry).__name__} of length "
                f"{len(carry) if isinstance(carry, (tuple, list)) else 'n/a'}"
            )
        scan_lib.check_inputs("MemoryStack", carry, x, start)
        scan_lib.check_positions("MemoryStack", positions, x)
        h = nn.Dense(self.features, name="input")(x)
        new_carry = []
        for index, layer_carry in enumerate(carry):
            layer = memory_class(self.memory)(features=self.features, name=f"layer_{index}", **dict(self.layer_kwargs))
            normed = nn.LayerNorm(name=f"norm_{index}")(h)
            last = index == self.num_layers - 1
            layer_carry, y = layer(layer_carry, (normed, start), positions if last else None)
            h = (scan_lib.at_positions(h, positions) if last else h) + y
            new_carry.append(layer_carry)
        return tuple(new_carry), nn.LayerNorm(name="out_norm")(h)

    @nn.nowrap
    def initialize_carry(self, batch_size: int) -> tuple:
        """Identity carry of every layer, leaves ``[B, ...]``."""
        layer = _build_layer(self.memory, self.features, self.layer_kwargs)
        return tuple(layer.initialize_carry(batch_size) for _ in range(self.num_layers))


def make_memory(name: str, *, features: int = 128, num_layers: int = 1, **layer_kwargs) -> MemoryStack:
    """A :class:`MemoryStack` of the memory model ``name``, usable with defaults alone.

    Args:
      name: one of ``ffm``, ``gru``, ``linear_attention``, ``lru``, ``lstm``,
        ``mingru``, ``s5``.
      features: width ``H``.
      num_layers: number of residual memory layers.
      **layer_kwargs: options of the layer class, e.g. ``memory_size=32`` for
        ``ffm`` or ``scan="associative"`` for any memoroid.

    Raises:
      ValueError: unknown name, non-positive sizes, or an option the layer lacks.
    """
    memory_class(name)
    if features < 1 or num_layers < 1:
        raise ValueError(
            f"features and num_layers must be positive integers; received features={features}, num_layers={num_layers}"
        )
    _build_layer(name, features, layer_kwargs)  # validates the options now, not at trace time
    return MemoryStack(memory=name, features=features, num_layers=num_layers, layer_kwargs=FrozenDict(layer_kwargs))
