"""groupnorm.torch in a PyTorch model: swap the GroupNorms of an existing model, check the outputs, train a step.

    PYTHONPATH=build/<dir>/python /usr/bin/python3 examples/torch_module.py
"""
import copy

import torch
from torch import nn

from groupnorm.torch import replace_group_norms

torch.manual_seed(0)
model = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.GroupNorm(32, 64), nn.SiLU(), nn.Conv2d(64, 8, 1))
fast = replace_group_norms(copy.deepcopy(model))  # GroupNorm + SiLU -> one fused module
print(fast)

x = torch.randn(2, 3, 32, 32)
with torch.inference_mode():
    difference = (fast(x) - model(x)).abs().max().item()
print(f"max |difference| against torch.nn.GroupNorm: {difference:.3g}")
assert difference < 1e-4  # float32 GroupNorms agreeing to ~1e-6, through a 1x1 conv over 64 channels

# Training works as with torch.nn.GroupNorm: the backward runs in the library.
optimizer = torch.optim.SGD(fast.parameters(), lr=0.1)
loss = fast(x.to(memory_format=torch.channels_last)).square().mean()  # channels_last: NHWC, no copy
loss.backward()
optimizer.step()
print(f"loss {loss.item():.4f}, GroupNorm weight grad norm {fast[1].weight.grad.norm().item():.4f}")

# The operator itself, as registered with PyTorch's dispatcher.
y = torch.ops.groupnorm.group_norm(x[:, :1].expand(2, 64, 32, 32).contiguous(), 32, None, None, 1e-5, "silu", None)
print(f"torch.ops.groupnorm.group_norm: output {tuple(y.shape)}")
