"""Which of three choices answers right, step by step, on one checkpoint: the search's own action
(it drives the 32 environments, from reset), the greedy choice (argmax of the improved policy)
and the policy head's prior (argmax of its logits); then the model's reward r(s, a),\nthe value after it and their one-step Q for every action. The right answer at a step is the action whose
reward is highest, read by stepping a copy of the environments with each action (scored: steps
where the actions' rewards differ). 103 steps (one Medium episode; Hard's 155 are cut).

    PYTHONPATH=. RMUZERO_COMPILATION_CACHE=off python3 benchmarks/2026-12-04-cpu-batch-16-defaults/answers.py <checkpoint dir>
"""
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import jax, jax.numpy as jnp, numpy as np
from evaluate import load_checkpoint
from rmuzero.agent.acting import invalid_actions
from rmuzero.envs import make_agent_env
path = sys.argv[1]
agent, params, _ = load_checkpoint(path, eval_envs=32)
model, cfg = agent.model, agent.config
E = 32
env = make_agent_env(cfg.env.name, difficulty=cfg.env.difficulty, num_envs=E)
A = env.num_actions

@jax.jit
def step(env_state, st, carry, key):
    carry, latent = model.encode(params, carry, st.obs[None], st.start[None])
    out = model.search(params, key, latent[0], invalid_actions(st))
    rewards = jax.vmap(lambda a: env.step(env_state, jnp.full((E,), a, jnp.int32))[1].reward)(jnp.arange(A))  # [A, E]
    env_state2, st2 = env.step(env_state, out.action.astype(jnp.int32))
    transitions = jax.vmap(lambda a: model.dynamics(params, latent[0], jnp.full((E,), a, jnp.int32)))(jnp.arange(A))
    next_values = jax.vmap(lambda z: model.predict(params, z).value)(transitions.next_latent)  # [A, E]
    return env_state2, st2, carry, (out.action, out.action_weights, out.prior_logits, rewards.T, transitions.reward.T,
                                    next_values.T)

env_state, st = env.reset(jax.random.PRNGKey(5))
carry = model.network.initialize_carry(E)
key = jax.random.PRNGKey(7)
rec = []
for t in range(103):
    key, k = jax.random.split(key)
    env_state, st, carry, r = step(env_state, st, carry, k)
    rec.append(jax.tree.map(np.asarray, r))
act = np.stack([r[0] for r in rec]); w = np.stack([r[1] for r in rec]); lg = np.stack([r[2] for r in rec]); rw = np.stack([r[3] for r in rec]); pr = np.stack([r[4] for r in rec]); nv = np.stack([r[5] for r in rec])
best = rw.argmax(-1); scored = rw.max(-1) > rw.min(-1)  # steps where the answer matters
g = w.argmax(-1); p = lg.argmax(-1)
m = scored
print(path)
print("steps scored", m.sum(), "search right", (act == best)[m].mean().round(3), "greedy right", (g == best)[m].mean().round(3), "prior right", (p == best)[m].mean().round(3))
d = m & (g != act)
print("greedy != search:", d.sum(), "of which greedy == prior argmax", (g == p)[d].mean().round(3), "search right there", (act == best)[d].mean().round(3))
srt = np.sort(lg, -1); print("prior logit gap top1-top2 median", np.median((srt[..., -1] - srt[..., -2])[m]).round(2))
ws = np.sort(w, -1); print("weights top1-top2 median", np.median((ws[..., -1] - ws[..., -2])[m]).round(3), "frac of greedy-wrong steps where top weight < 0.5", (ws[..., -1] < 0.5)[m & (g != best)].mean().round(3))
r = pr.argmax(-1); print("reward model's argmax right", (r == best)[m].mean().round(3),
      "| mean predicted reward, right action", pr[m][np.arange(m.sum()), best[m]].mean().round(4),
      "other actions", ((pr[m].sum(-1) - pr[m][np.arange(m.sum()), best[m]]) / (A - 1)).mean().round(4),
      "| true reward right / wrong", rw[m].max(-1).mean().round(4), rw[m].min(-1).mean().round(4))
q = pr + cfg.system.discount * nv  # one-step Q of every action: the model's reward plus the discounted value after it
print("one-step Q's argmax right", (q.argmax(-1) == best)[m].mean().round(3),
      "| spread (max - min over actions) of the next value, median", np.median((nv.max(-1) - nv.min(-1))[m]).round(4),
      "of the predicted reward", np.median((pr.max(-1) - pr.min(-1))[m]).round(4))
