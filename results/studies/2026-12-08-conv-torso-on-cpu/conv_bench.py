import time, jax, jax.numpy as jnp, flax.linen as nn
N, H, W, C, O = 4096, 10, 10, 4, 32
x = jax.random.normal(jax.random.key(0), (N, H, W, C))
k = jax.random.normal(jax.random.key(1), (3, 3, C, O)) * 0.1
b = jnp.zeros((O,))
d = jax.random.normal(jax.random.key(2), (H * W * O, 128)) * 0.01

def conv_lax(x, k):
    return jax.lax.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))

def conv_patches(x, k):
    p = jax.lax.conv_general_dilated_patches(x, (3, 3), (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    # p: [N, H, W, C*9], features ordered (C, kh, kw)
    kk = jnp.transpose(k, (2, 0, 1, 3)).reshape(C * 9, O)
    return p @ kk

def conv_shifts(x, k):
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = 0
    for i in range(3):
        for j in range(3):
            out = out + xp[:, i:i + H, j:j + W, :] @ k[i, j]
    return out

def make(conv):
    def loss(k, d, x):
        h = nn.gelu(conv(x, k) + b)
        return jnp.sum((h.reshape(N, -1) @ d) ** 2)
    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))

print(jnp.max(jnp.abs(conv_lax(x, k) - conv_patches(x, k))), jnp.max(jnp.abs(conv_lax(x, k) - conv_shifts(x, k))))
for name, conv in [("lax", conv_lax), ("patches", conv_patches), ("shifts", conv_shifts)]:
    f = make(conv)
    jax.block_until_ready(f(k, d, x))
    ts = []
    for _ in range(3):
        t = time.perf_counter(); jax.block_until_ready(f(k, d, x)); ts.append(time.perf_counter() - t)
    fwd = jax.jit(lambda k, x: conv(x, k))
    jax.block_until_ready(fwd(k, x)); t = time.perf_counter(); jax.block_until_ready(fwd(k, x)); tf = time.perf_counter() - t
    print(name, "fwd+bwd", sorted(ts)[1], "conv fwd", tf)

print("--- inside lax.scan (4 steps) ---")
for name, conv in [("lax", conv_lax), ("patches", conv_patches)]:
    g = make(conv)
    def body(carry, _):
        k, d = carry
        _, (gk, gd) = g(k, d, x)
        return (k - 1e-6 * gk, d - 1e-6 * gd), None
    f = jax.jit(lambda k, d: jax.lax.scan(body, (k, d), None, length=4)[0])
    jax.block_until_ready(f(k, d))
    t = time.perf_counter(); jax.block_until_ready(f(k, d)); print(name, "scan of 4, per step", (time.perf_counter() - t) / 4)
