"""GroupNorm from Python on a NumPy array. Run with /usr/bin/python3 (Debian's, which has NumPy)."""
import numpy as np

import groupnorm

x = np.random.default_rng(0).standard_normal((2, 32, 8, 8), dtype=np.float32)
gamma = np.ones(32, dtype=np.float32)
beta = np.zeros(32, dtype=np.float32)

y = groupnorm.group_normalization(x, gamma, beta, num_groups=8, epsilon=1e-5)

# The same in float64 NumPy: each (sample, group) slice has mean 0 and variance 1 afterwards.
g = x.astype(np.float64).reshape(2, 8, -1)
ref = ((g - g.mean(-1, keepdims=True)) / np.sqrt(g.var(-1, keepdims=True) + 1e-5)).reshape(x.shape)
print("max |y - ref| =", float(np.abs(y - ref).max()))
assert np.allclose(y, ref, atol=1e-5)
