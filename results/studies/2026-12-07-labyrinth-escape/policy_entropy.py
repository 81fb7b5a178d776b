"""Prior and improved-policy entropies of a saved agent over greedy evaluation steps."""
import sys, json, jax, jax.numpy as jnp, numpy as np
from rmuzero.agent.train import load_trained
from rmuzero.agent.acting import invalid_actions
from rmuzero.envs.wrappers import wrap_env
from rmuzero.envs.sources import make_environment
from rmuzero.search import select_action

agent, params, step_dir = load_trained(sys.argv[1])
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 300
c = agent.config.env
task = make_environment(c.suite, c.name, difficulty=c.difficulty, params=c.params, kwargs=c.kwargs, factory=c.factory)
env = wrap_env(task, num_envs=32, prev_action=c.prev_action, prev_reward=c.prev_reward)
model = agent.model

def ent(p):
    p = jnp.clip(p, 1e-12, 1.0)
    return -(p * jnp.log(p)).sum(-1)

@jax.jit
def run(params, key):
    state, step = env.reset(key)
    carry = model.network.initialize_carry(32)
    def body(c, k):
        state, step, carry = c
        k1, k2 = jax.random.split(k)
        carry, latent = model.encode(params, carry, jax.tree.map(lambda x: x[None], step.obs), step.start[None])
        out = model.search(params, k1, latent[0], invalid_actions(step))
        action = select_action(k2, out, temperature=0.0)
        state, step = env.step(state, action)
        prior = jax.nn.softmax(out.prior_logits, -1)
        return (state, step, carry), (ent(prior), ent(out.action_weights), prior.max(-1), out.action_weights.max(-1), action)
    _, outs = jax.lax.scan(body, (state, step, carry), jax.random.split(key, steps))
    return outs

pe, we, pm, wm, actions = (np.asarray(x) for x in run(params, jax.random.PRNGKey(0)))
counts = np.bincount(actions.ravel(), minlength=4) / actions.size
print(json.dumps({"checkpoint": str(step_dir), "steps": steps, "uniform_entropy": float(np.log(model_num := env.num_actions)),
  "prior_entropy_median": float(np.median(pe)), "improved_entropy_median": float(np.median(we)),
  "prior_max_median": float(np.median(pm)), "improved_max_median": float(np.median(wm)),
  "action_frequencies": counts.round(3).tolist()}))
