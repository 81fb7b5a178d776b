"""rmuzero: recurrent MuZero in JAX with memoroid history encoders."""

__version__ = "0.1.0"
