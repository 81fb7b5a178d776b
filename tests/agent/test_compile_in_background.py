"""train() compiles the evaluation programs on a thread while the first training call compiles;
the first evaluation must then find them compiled (jax's compile events, counted)."""

import jax
import jax.numpy as jnp
from jax import monitoring

from rmuzero.agent.train import _compile_in_background

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_events: list[str] = []
monitoring.register_event_duration_secs_listener(lambda name, duration, **kwargs: _events.append(name))


def _compilations(call) -> int:
    _events.clear()
    jax.block_until_ready(call())
    return _events.count(COMPILE_EVENT)


def _program(offset: float):
    return jax.jit(lambda x, key: jnp.sin(x + offset).sum() + jax.random.normal(key))


def test_a_call_after_the_background_compilation_compiles_nothing():
    x = jax.device_put(jnp.arange(4.0), jax.devices()[0])  # committed, like the training state
    key = jax.random.PRNGKey(0)  # uncommitted, like the evaluation key
    compiled, fresh = _program(1.0), _program(2.0)
    _compile_in_background([(compiled, (x, key))]).join()
    assert _compilations(lambda: compiled(x, key)) == 0
    assert _compilations(lambda: fresh(x, key)) == 1  # the count sees a compilation when there is one


def test_arguments_are_read_before_the_caller_donates_them():
    x = jnp.arange(4.0) + 0  # a committed jit output
    donate = jax.jit(lambda v: v * 2, donate_argnums=0)
    program = _program(3.0)
    thread = _compile_in_background([(program, (x, jax.random.PRNGKey(1)))])
    y = donate(x)  # x's buffer may be gone before the thread lowers
    thread.join()
    assert _compilations(lambda: program(y, jax.random.PRNGKey(1))) == 0


def test_a_failing_compilation_is_left_to_the_call():
    program = jax.jit(lambda x: x.reshape(3))  # 4 elements: cannot reshape
    _compile_in_background([(program, (jnp.arange(4.0),))]).join()  # no exception escapes the thread
    try:
        program(jnp.arange(4.0))
    except TypeError as error:
        assert "reshape" in str(error)
    else:
        raise AssertionError("the call should raise what the thread swallowed")
