"""Deterministic Group Normalization for CPUs (oneTBB).

    import groupnorm
    y = groupnorm.group_norm(x, 8, weight, bias)              # one call, any C-contiguous buffer
    plan = groupnorm.Plan(x.shape, 8, activation="silu")      # validate once ...
    plan(x, weight, bias, out=y)                              # ... run many times

Results are bitwise identical for every thread count. Buffers are never copied: a non-contiguous or
wrong-dtype input is an error saying how to convert it (group_normalization, the NumPy reference's
signature, converts instead). The GIL is released while the kernel runs.
"""
from ._groupnorm import (
    Plan,
    __version__,
    group_norm,
    group_norm_backward,
    group_normalization,
    hardware_threads,
)

__all__ = ["Plan", "group_norm", "group_norm_backward", "group_normalization", "hardware_threads", "__version__"]
