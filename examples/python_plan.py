"""The Python API: a one-shot group_norm into a preallocated output, and a Plan validated once and called
on new data (NumPy here; memoryview and CPU torch.Tensor work the same, without a copy)."""
import numpy as np

import groupnorm

x = np.random.default_rng(0).standard_normal((2, 32, 16, 16)).astype(np.float32)
skip = np.ones_like(x)
weight = np.full(32, 1.5, np.float32)
bias = np.zeros(32, np.float32)
y = np.empty_like(x)

# One call, torch.nn.functional.group_norm's argument order; out= avoids allocating the result.
groupnorm.group_norm(x, 8, weight, bias, eps=1e-5, out=y)

# A plan: checked once; each call runs it (GIL released, no allocation with out=).
plan = groupnorm.Plan(x.shape, 8, activation="silu", residual=True)
y, mean, rstd = plan(x, weight, bias, residual=skip, out=y, return_stats=True)
print(plan)
print("y[0, 0, 0, :4] =", y[0, 0, 0, :4], "mean[0] =", mean[0])

# Errors name the argument and write nothing.
try:
    groupnorm.group_norm(x[:, :, ::2], 8)
except ValueError as e:
    print("error:", e)
