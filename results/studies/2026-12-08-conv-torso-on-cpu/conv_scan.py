import time, jax, jax.numpy as jnp, flax.linen as nn, sys
N, H, W, C, O = 4096, 10, 10, 4, 32
x = jax.random.normal(jax.random.key(0), (N, H, W, C))
k = jax.random.normal(jax.random.key(1), (3, 3, C, O)) * 0.1
d = jax.random.normal(jax.random.key(2), (H * W * O, 128)) * 0.01
def conv_nhwc(x, k):
    return jax.lax.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
def conv_nchw(x, k):
    y = jax.lax.conv_general_dilated(jnp.transpose(x, (0, 3, 1, 2)), jnp.transpose(k, (3, 2, 0, 1)), (1, 1), "SAME")
    return jnp.transpose(y, (0, 2, 3, 1))
def make(conv):
    def loss(k, d, x):
        h = nn.gelu(conv(x, k))
        return jnp.sum((h.reshape(N, -1) @ d) ** 2)
    return jax.value_and_grad(loss, argnums=(0, 1))
for name, conv in [("nhwc", conv_nhwc), ("nchw", conv_nchw)]:
    g = make(conv)
    one = jax.jit(g)
    jax.block_until_ready(one(k, d, x)); t = time.perf_counter(); jax.block_until_ready(one(k, d, x)); t1 = time.perf_counter() - t
    def body(carry, _):
        k, d = carry
        _, (gk, gd) = g(k, d, x)
        return (k - 1e-6 * gk, d - 1e-6 * gd), None
    f = jax.jit(lambda k, d: jax.lax.scan(body, (k, d), None, length=4)[0])
    jax.block_until_ready(f(k, d))
    t = time.perf_counter(); jax.block_until_ready(f(k, d)); print(name, "alone", round(t1, 3), "in scan, per step", round((time.perf_counter() - t) / 4, 3), flush=True)
