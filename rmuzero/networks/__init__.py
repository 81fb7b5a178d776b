"""Memory models, the history encoder, and the agent's network heads.

Every memory model and the encoder share one calling convention (T time, B
batch, F features, H output features)::

    carry = model.initialize_carry(batch_size)          # pytree of [B, ...]
    carry, y = model.apply(params, carry, (x, start))   # x [T, B, F], start [T, B] bool
"""

from rmuzero.networks.encoder import HistoryEncoder
from rmuzero.networks.memoroids import FFM, LRU, S5, LinearAttention, MinGRU
from rmuzero.networks.muzero import MuZeroNetwork
from rmuzero.networks.rnn import GRU, LSTM
from rmuzero.networks.scan import STRATEGIES, resettable_scan
from rmuzero.networks.stack import MEMORY_MODELS, MemoryStack, make_memory

__all__ = [
    "FFM",
    "GRU",
    "HistoryEncoder",
    "LRU",
    "LSTM",
    "LinearAttention",
    "MEMORY_MODELS",
    "MemoryStack",
    "MinGRU",
    "MuZeroNetwork",
    "S5",
    "STRATEGIES",
    "make_memory",
    "resettable_scan",
]
