"""Value, reward and policy targets for K-step unrolls from every position of a window.

The one place that owns the target math. Dimensions:
  B  batch of windows
  L  window length (positions 0..L-1)
  K  number of unroll steps (each root has K + 1 prediction steps k = 0..K)
  A  number of actions
  n  TD steps of the n-step return

Per-step record convention (docs/design.md section 2), for position j of a window:
  start_t[j]            o_j begins an episode (memory is cleared before o_j);
  reward_t[j]           reward of the transition taken from o_j (action a_j);
  discount_t[j]         discount of that transition (0 on termination);
  bootstrap_value_t[j]  value of o_j from a target network;
  policy_t[j]           search policy at o_j.
So `start_t[j + 1]` set means the transition from o_j ended o_j's episode; its
reward is the episode's last (terminal) reward and o_{j+1} belongs to the next
episode.

Choices made here:
  * Episode boundaries come from the start flags only: the next observation
    belongs to a new episode. An episode that terminated (discount 0 on its
    last transition: every POPGym task) has value 0 after its end and
    nothing is bootstrapped. An episode cut by a time limit (discount 1 on
    its last transition j, e.g. gymnax's CartPole-v1 at 500 steps) bootstraps
    where it was cut: r_j + gamma v_j, the value of o_j standing in for that
    of the final observation, which is never stored (the time limit is not
    part of the task). See `truncated_ends`.
  * At the right edge of the window the return bootstraps from the last
    position available: if j + n >= L while j's episode goes on, the n-step
    return uses m' = L - 1 - j rewards and gamma^{m'} v_{L-1}; at j = L - 1 it
    is v_{L-1} itself. Except when the window's last transition terminates
    (discount_t[L-1] == 0, the next episode's start flag unseen at L): then the
    episode's end is known, r_{L-1} is the last reward and nothing is
    bootstrapped, exactly as if a start flag stood at L. Without this, a
    sequence that ends with its episode would learn the terminal observation's
    value from itself instead of from the terminal reward.
  * Beyond the end of t's episode an unroll is absorbing: value 0, reward 0,
    uniform policy. Those targets are exact (they do not depend on data past
    the window); beyond the window inside an episode the targets are unknown,
    filled with the same absorbing values and flagged by `in_window`.

Single-window functions take `_t` arrays of rank 1 ([L]) or 2 ([L, A]);
`batched_unroll_targets` vmaps them over B.
"""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp

from rmuzero.validation import is_int, is_real


@chex.dataclass(frozen=True)
class UnrollTargets:
    """Targets for the unroll of K steps from every root position t of a window.

    Entry [t, k] belongs to prediction step k of the unroll rooted at o_t, i.e.
    to position t + k. Batched versions have a leading B axis.

    Which entries are known: value/policy where `in_episode & in_window` (data)
    or `~in_episode` (absorbing: 0 / uniform, exact even past the window);
    reward where `reward_mask` (data) or, for k >= 1, where step k - 1 is
    already past the episode's end (absorbing 0). Entries with `in_episode &
    ~in_window` are unknown and must be masked out.
    """

    value: chex.Array  # [L, K+1] value target of o_{t+k}; 0 outside t's episode or the window
    reward: chex.Array  # [L, K+1] r_{t+k-1} (reward of dynamics step k); 0 at k = 0 and where masked
    policy: chex.Array  # [L, K+1, A] search policy at o_{t+k}; uniform outside t's episode/window
    in_episode: chex.Array  # [L, K+1] bool: no start flag in (t, t+k] (flags past L count as unset)
    in_window: chex.Array  # [L, K+1] bool: t + k < L
    reward_mask: chex.Array  # [L, K+1] bool: k >= 1 and the transition from o_{t+k-1} is in
    #                          t's episode and in the window (the episode's last transition is)


def _check_int(name: str, value, minimum: int) -> None:
    if not is_int(value) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def _check_unit(name: str, value) -> None:
    if not is_real(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")


def _check_window(reward_t, discount_t, start_t, bootstrap_value_t, policy_t=None) -> None:
    """Raises a one-line ValueError unless the arrays form one window of length L."""
    arrays = dict(reward=reward_t, discount=discount_t, start=start_t, bootstrap_value=bootstrap_value_t)
    expected = "reward [L], discount [L], start [L] bool, bootstrap_value [L]"
    if policy_t is not None:
        arrays["policy"] = policy_t
        expected += ", policy [L, A]"
    shapes = {name: tuple(jnp.shape(x)) for name, x in arrays.items()}
    ok = all(len(shapes[name]) == 1 for name in ("reward", "discount", "start", "bootstrap_value"))
    ok = ok and shapes["reward"][0] >= 1
    ok = ok and len({shapes[name][0] for name in shapes}) == 1
    if policy_t is not None:
        ok = ok and len(shapes["policy"]) == 2 and shapes["policy"][1] >= 1
    if not ok:
        got = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise ValueError(f"expected one window: {expected} with L >= 1; got {got}")
    if jnp.asarray(start_t).dtype != jnp.bool_:
        raise ValueError(f"start must be a bool array, got dtype {jnp.asarray(start_t).dtype}")


def _first_episode_mask(
    start_t: chex.Array, ends_at_edge: chex.Array, idx: chex.Array, ahead: chex.Array
) -> chex.Array:
    """[L, M] bool: no start flag at positions (j, j + i].

    idx = j + i ([L, M]), ahead = i ([1, M]). A flag stands at L when the window's
    last transition terminates (`ends_at_edge`); flags further out count as unset.
    """
    length = start_t.shape[0]
    flag = (start_t[jnp.minimum(idx, length - 1)] & (idx < length)) | ((idx == length) & ends_at_edge)
    return jnp.cumsum(flag & (ahead >= 1), axis=1) == 0


def truncated_ends(start_t: chex.Array, discount_t: chex.Array) -> chex.Array:
    """[L] bool: the transition from o_j ended its episode by truncation (a start flag at
    j + 1 after a transition of discount > 0). Unknown at the window's last position (False)."""
    following = jnp.concatenate([start_t[1:], jnp.zeros((1,), bool)])
    return following & (discount_t > 0)


def _ends_at_edge(discount_t: chex.Array) -> chex.Array:
    """[] bool: the window's last transition terminates its episode."""
    return discount_t[-1] == 0


def n_step_value_targets(
    reward_t: chex.Array,
    discount_t: chex.Array,
    start_t: chex.Array,
    bootstrap_value_t: chex.Array,
    *,
    td_steps: int,
    discount_factor: float,
) -> chex.Array:
    """n-step return of every position of one window: [L] -> [L].

    z_j = sum_{i<m} gamma^i (prod_{l<i} d_{j+l}) r_{j+i}
          + [bootstrap] gamma^m (prod_{l<m} d_{j+l}) v_{j+m},
    with m = n, cut to the steps left in j's episode (no bootstrap then, except
    gamma^m (prod_{l<m} d_{j+l}) v_{j+m-1} when the episode was truncated after
    j + m - 1) or to L - 1 - j at the window's edge (bootstrap v_{L-1}); see the
    module docstring.
    """
    _check_int("td_steps", td_steps, 1)
    _check_unit("discount_factor", discount_factor)
    _check_window(reward_t, discount_t, start_t, bootstrap_value_t)
    chex.assert_rank([reward_t, discount_t, start_t, bootstrap_value_t], 1)
    length = reward_t.shape[0]
    root = jnp.arange(length)[:, None]  # [L, 1] position j
    ahead = jnp.arange(td_steps + 1)[None, :]  # [1, n+1] steps i ahead of j
    idx = root + ahead  # [L, n+1]
    clipped = jnp.minimum(idx, length - 1)
    ends_at_edge = _ends_at_edge(discount_t)
    same_episode = _first_episode_mask(start_t, ends_at_edge, idx, ahead)  # [L, n+1]
    # Rewards before the bootstrap: n, cut at the window's edge (one more when the last
    # transition terminates: its reward is known and nothing follows it).
    horizon = jnp.minimum(td_steps, length - 1 - root + ends_at_edge.astype(root.dtype))  # [L, 1]
    discount_ji = discount_t[clipped].astype(jnp.float32)
    discount_before = jnp.concatenate(  # prod_{l<i} d_{j+l}
        [jnp.ones((length, 1), jnp.float32), jnp.cumprod(discount_ji, axis=1)[:, :-1]], axis=1
    )
    weight = jnp.power(jnp.float32(discount_factor), ahead.astype(jnp.float32)) * discount_before
    rewards = jnp.where(same_episode & (ahead < horizon), weight * reward_t[clipped], 0.0)
    # The bootstrap at the horizon, or at a truncated end j + i inside it (gamma^{i+1} (prod_{l<=i} d)
    # v_{j+i}); the two never meet, so without truncations the array, and its sum, are what they were.
    truncated = truncated_ends(start_t, discount_t)[clipped]
    cut = jnp.where(
        same_episode & (ahead < horizon) & truncated,
        weight * discount_factor * discount_ji * bootstrap_value_t[clipped],
        0.0,
    )
    bootstrap = jnp.where(same_episode & (ahead == horizon), weight * bootstrap_value_t[clipped], cut)
    return rewards.sum(axis=1) + bootstrap.sum(axis=1)


def lambda_value_targets(
    reward_t: chex.Array,
    discount_t: chex.Array,
    start_t: chex.Array,
    bootstrap_value_t: chex.Array,
    *,
    td_lambda: float,
    discount_factor: float,
) -> chex.Array:
    """TD(lambda) return of every position of one window: [L] -> [L].

    G_{L-1} = v_{L-1} (r_{L-1} when the last transition terminates);
    G_j = r_j + gamma d_j ((1 - lambda) v_{j+1} + lambda G_{j+1}), with the bracket
    replaced by 0 when o_{j+1} starts a new episode (by v_j when the episode was
    truncated after j). lambda = 0 equals the 1-step return and lambda = 1 the
    n-step return with n >= L - 1.
    """
    _check_unit("td_lambda", td_lambda)
    _check_unit("discount_factor", discount_factor)
    _check_window(reward_t, discount_t, start_t, bootstrap_value_t)
    chex.assert_rank([reward_t, discount_t, start_t, bootstrap_value_t], 1)

    def backward(g_tp1, inputs):
        r_t, d_t, start_tp1, v_tp1, cut_value = inputs
        continuation = (1.0 - td_lambda) * v_tp1 + td_lambda * g_tp1
        g_t = r_t + discount_factor * d_t * jnp.where(start_tp1, cut_value, continuation)
        return g_t, g_t

    v_t = bootstrap_value_t.astype(jnp.float32)
    cut_value = jnp.where(truncated_ends(start_t, discount_t), v_t, 0.0)
    g_last = jnp.where(_ends_at_edge(discount_t), reward_t[-1].astype(jnp.float32), v_t[-1])
    _, g_head = jax.lax.scan(
        backward,
        g_last,
        (reward_t[:-1].astype(jnp.float32), discount_t[:-1].astype(jnp.float32), start_t[1:], v_t[1:], cut_value[:-1]),
        reverse=True,
    )
    return jnp.concatenate([g_head, g_last[None]])


def unroll_targets(
    reward_t: chex.Array,
    discount_t: chex.Array,
    start_t: chex.Array,
    bootstrap_value_t: chex.Array,
    policy_t: chex.Array,
    *,
    num_unroll_steps: int,
    discount_factor: float,
    td_steps: int | None = None,
    td_lambda: float | None = None,
) -> UnrollTargets:
    """Targets of the K-step unroll from every position of one window.

    Args:
      reward_t, discount_t: [L] float, of the transition taken from o_t.
      start_t: [L] bool, o_t begins an episode.
      bootstrap_value_t: [L] target-network values of o_t.
      policy_t: [L, A] search policies at o_t.
      num_unroll_steps: K >= 0.
      discount_factor: gamma in [0, 1].
      td_steps: n >= 1 for n-step value targets, or
      td_lambda: lambda in [0, 1] for TD(lambda) targets (give exactly one).

    Returns:
      `UnrollTargets` with fields of shape [L, K+1] (policy [L, K+1, A]).
    """
    _check_int("num_unroll_steps", num_unroll_steps, 0)
    if (td_steps is None) == (td_lambda is None):
        raise ValueError(
            f"give exactly one of td_steps (n-step) or td_lambda (TD(lambda)), got "
            f"td_steps={td_steps!r}, td_lambda={td_lambda!r}"
        )
    _check_window(reward_t, discount_t, start_t, bootstrap_value_t, policy_t)
    chex.assert_rank([reward_t, discount_t, start_t, bootstrap_value_t, policy_t], [1, 1, 1, 1, 2])
    if td_steps is not None:
        value_t = n_step_value_targets(
            reward_t, discount_t, start_t, bootstrap_value_t, td_steps=td_steps, discount_factor=discount_factor
        )
    else:
        value_t = lambda_value_targets(
            reward_t, discount_t, start_t, bootstrap_value_t, td_lambda=td_lambda, discount_factor=discount_factor
        )

    length, num_actions = policy_t.shape
    root = jnp.arange(length)[:, None]  # [L, 1] root t
    step = jnp.arange(num_unroll_steps + 1)[None, :]  # [1, K+1] unroll step k
    idx = root + step  # [L, K+1] position t + k
    clipped = jnp.minimum(idx, length - 1)
    in_window = idx < length
    in_episode = _first_episode_mask(start_t, _ends_at_edge(discount_t), idx, step)
    valid = in_episode & in_window

    # Dynamics step k predicts the reward of the transition from o_{t+k-1}: valid when
    # o_{t+k-1} is in t's episode and in the window (step k - 1 of the same unroll).
    true_column = jnp.ones((length, 1), bool)
    previous_in_episode = jnp.concatenate([true_column, in_episode[:, :-1]], axis=1)
    previous_in_window = jnp.concatenate([true_column, in_window[:, :-1]], axis=1)
    reward_mask = (step >= 1) & previous_in_episode & previous_in_window
    previous = jnp.clip(idx - 1, 0, length - 1)

    uniform = jnp.full((num_actions,), 1.0 / num_actions, jnp.float32)
    return UnrollTargets(
        value=jnp.where(valid, value_t[clipped], 0.0),
        reward=jnp.where(reward_mask, reward_t[previous].astype(jnp.float32), 0.0),
        policy=jnp.where(valid[..., None], policy_t[clipped].astype(jnp.float32), uniform),
        in_episode=in_episode,
        in_window=in_window,
        reward_mask=reward_mask,
    )


def batched_unroll_targets(
    reward: chex.Array,
    discount: chex.Array,
    start: chex.Array,
    bootstrap_value: chex.Array,
    policy: chex.Array,
    *,
    num_unroll_steps: int,
    discount_factor: float,
    td_steps: int | None = None,
    td_lambda: float | None = None,
) -> UnrollTargets:
    """`unroll_targets` vmapped over windows: [B, L] (policy [B, L, A]) -> fields [B, L, K+1]."""
    shapes = [tuple(jnp.shape(x)) for x in (reward, discount, start, bootstrap_value, policy)]
    if [len(s) for s in shapes] != [2, 2, 2, 2, 3] or len({s[:2] for s in shapes}) != 1:
        raise ValueError(
            "expected a batch of windows: reward, discount, start, bootstrap_value [B, L] and "
            f"policy [B, L, A]; got {', '.join(str(s) for s in shapes)}"
        )
    one_window = functools.partial(
        unroll_targets,
        num_unroll_steps=num_unroll_steps,
        discount_factor=discount_factor,
        td_steps=td_steps,
        td_lambda=td_lambda,
    )
    return jax.vmap(one_window)(reward, discount, start, bootstrap_value, policy)


RETURN_SCALE_TOLERANCE = 0.01  # partial returns up to 1 + this keep the scale at 1 (float sums of 1/N)


def return_scale(reward: chex.Array, start: chex.Array) -> chex.Array:
    """``[]`` float32: the scale that reward and value targets are divided by, from the replay.

    ``m`` is the largest ``|r_first + ... + r_j|`` over every stored episode's partial
    sums (``reward``, ``start`` ``[B, N]`` in buffer order; an episode that runs across the
    buffer's wrap point counts as two). The scale is 1 while ``m <= 1 +
    RETURN_SCALE_TOLERANCE`` (every POPGym task, whose returns lie in [-1, 1]: its
    targets are exactly those without a scale), else the power of two at or above ``m``
    (CartPole's 500: 512), so that returns, and the values below them, fit the supports
    whatever a suite pays. Powers of two change rarely as returns grow, and each change
    halves the targets exactly.
    """
    chex.assert_rank([reward, start], 2)

    def combine(left, right):
        left_sum, left_reset = left
        right_sum, right_reset = right
        return jnp.where(right_reset, right_sum, left_sum + right_sum), left_reset | right_reset

    partial, _ = jax.lax.associative_scan(combine, (reward.astype(jnp.float32), start), axis=1)
    largest = jnp.max(jnp.abs(partial))
    power = jnp.exp2(jnp.ceil(jnp.log2(jnp.maximum(largest, 1.0))))
    return jnp.where(largest <= 1.0 + RETURN_SCALE_TOLERANCE, jnp.float32(1.0), power)
