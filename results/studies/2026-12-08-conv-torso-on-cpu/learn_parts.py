import sys, time, jax
from rmuzero import cli
from rmuzero.agent.agent import make_agent
overrides = ["env=gymnax", "env.name=Breakout-MinAtar"] + sys.argv[1:]
config = cli.agent_config(cli.compose(overrides))
agent = make_agent(config)
state = jax.jit(agent.init)(jax.random.PRNGKey(0))
collect = jax.jit(agent.collect)
while not bool(agent.replay.can_sample(state.replay)):
    state, _ = collect(state)
sample = jax.jit(agent.sample_batch); learn = jax.jit(agent.learn)
def timed(f, *a):
    jax.block_until_ready(f(*a)); ts = []
    for _ in range(3):
        t = time.perf_counter(); out = jax.block_until_ready(f(*a)); ts.append(time.perf_counter() - t)
    return sorted(ts)[1], out
ts, batch = timed(sample, state, jax.random.PRNGKey(1))
tl, _ = timed(learn, state, batch)
print(overrides[2:], f"sample_batch {ts:.3f} s  learn {tl:.3f} s  (one update of {config.system.batch_size} sequences)")
