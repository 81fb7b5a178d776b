import sys, time, os
sys.path[:0] = ["tests", "tests/agent"]  # run from the repository root
import jax
from rmuzero.agent.agent import make_agent
from rmuzero.agent.config import config_from_dict
import test_reliability as tr
from test_learns_delayed_match import DelayedMatch
agent = make_agent(config_from_dict(tr._config()), environment=DelayedMatch())
state = jax.jit(agent.init)(jax.random.PRNGKey(0))
lowered = jax.jit(agent.train_iteration).lower(state)
t0, w0 = time.process_time(), time.perf_counter(); c = lowered.compile(); t1, w1 = time.process_time(), time.perf_counter()
f = c
s = state
for _ in range(3): s, m = f(s)
jax.block_until_ready(s)
t2 = time.perf_counter()
for _ in range(20): s, m = f(s)
jax.block_until_ready(s); t3 = time.perf_counter()
print(f"{os.environ.get('XLA_FLAGS','')[:120]:120s} compile cpu {t1-t0:6.2f} wall {w1-w0:6.2f} run/iter {(t3-t2)/20*1000:6.1f} ms")
