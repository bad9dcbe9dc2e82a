"""PyTorch drop-in GroupNorm backed by the groupnorm library (forward and backward), through the libtorch
operator ``torch.ops.groupnorm.group_norm`` (libgroupnorm_torch.so, in this package's directory).

Runs the library for CPU tensors of dtype float32, float16 or bfloat16 that are contiguous or channels_last
(read in place, no copy). Any other input (CUDA, other strided views, other dtypes) falls back to
``torch.nn.functional.group_norm`` followed by the activation, with a one-time ``UserWarning`` per reason.
"""
import os
import warnings

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GroupNorm", "group_norm", "replace_group_norms", "library_path"]

library_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "libgroupnorm_torch.so")
if not os.path.exists(library_path):
    raise ImportError(
        f"groupnorm.torch needs the libtorch operator library {library_path}, which was not built: "
        "install libtorch (Debian: apt-get install libtorch-dev, or set Torch_DIR), configure with "
        "-DGROUPNORM_BUILD_TORCH=ON and build the target groupnorm_torch (then `cmake --install` to install it)"
    )
torch.ops.load_library(library_path)
_op = torch.ops.groupnorm.group_norm

_ACTIVATIONS = {None: lambda t: t, "silu": F.silu, "gelu": F.gelu, "relu": F.relu}
_LIBRARY_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_warned = set()


def _check_activation(activation):
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation is {activation!r}; expected None, 'silu', 'gelu' or 'relu'")


def _dense_order(t):
    """'nchw' for contiguous tensors, 'nhwc' for channels_last ones, None for other strides."""
    if t.is_contiguous():
        return "nchw"
    if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last):
        return "nhwc"
    if t.dim() == 5 and t.is_contiguous(memory_format=torch.channels_last_3d):
        return "nhwc"
    return None


def _fallback_reason(x, weight, bias, residual):
    """Why the library cannot run this call (None when it can)."""
    if (x.is_cpu and x.dtype in _LIBRARY_DTYPES and x.is_contiguous() and residual is None
            and (weight is None or weight.is_cpu) and (bias is None or bias.is_cpu)):
        return None  # the common case, checked cheaply: this runs on every call
    tensors = [t for t in (x, weight, bias, residual) if t is not None]
    for t in tensors:
        if t.device.type != "cpu":
            return f"a tensor on {t.device}"
    if x.dtype not in _LIBRARY_DTYPES:
        return f"input dtype {x.dtype}"
    if x.dim() < 2:
        return None  # the operator raises the shape error
    order = _dense_order(x)
    if order is None:
        return "an input that is neither contiguous nor channels_last"
    if residual is not None and (residual.dtype != x.dtype or _dense_order(residual) != order):
        return "a residual whose dtype or memory format differs from the input's"
    return None


def group_norm(x, num_groups, weight=None, bias=None, eps=1e-5, activation=None, residual=None):
    """``activation(GroupNorm(x + residual))`` with the argument order of ``torch.nn.functional.group_norm``.

    activation: None, "silu", "gelu" (erf form) or "relu". residual: optional tensor added to x before
    normalizing. Differentiable in x, weight, bias and residual (first order).
    """
    _check_activation(activation)
    reason = _fallback_reason(x, weight, bias, residual)
    if reason is None:
        return _op(x, num_groups, weight, bias, eps, activation, residual)
    if reason not in _warned:
        _warned.add(reason)
        warnings.warn(
            f"groupnorm.torch: {reason} is not supported by the groupnorm library; "
            "using torch.nn.functional.group_norm instead (warned once)",
            stacklevel=2,
        )
    source = x if residual is None else x + residual
    return _ACTIVATIONS[activation](F.group_norm(source, num_groups, weight, bias, eps))


class GroupNorm(nn.GroupNorm):
    """``torch.nn.GroupNorm`` computed by the groupnorm library, with an optional fused activation.

    Same constructor arguments, parameters and state_dict keys (``weight``, ``bias``) as ``torch.nn.GroupNorm``,
    so state dicts load both ways; ``activation`` ("silu", "gelu", "relu" or None) applies that activation in
    the same pass. ``forward(x, residual=None)`` normalizes ``x + residual`` when a residual is given.
    """

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, activation=None, device=None, dtype=None):
        _check_activation(activation)
        super().__init__(num_groups, num_channels, eps=eps, affine=affine, device=device, dtype=dtype)
        self.activation = activation

    def forward(self, x, residual=None):
        return group_norm(x, self.num_groups, self.weight, self.bias, self.eps, self.activation, residual)

    def extra_repr(self):
        return super().extra_repr() + f", activation={self.activation!r}"


def _fusable_activation(module):
    """The activation name a GroupNorm can absorb for this module, or None."""
    if module._forward_hooks or module._forward_pre_hooks:
        return None  # a hook observes the module's own input or output
    if type(module) is nn.SiLU:
        return "silu"
    if type(module) is nn.ReLU:
        return "relu"
    if type(module) is nn.GELU and module.approximate == "none":
        return "gelu"
    return None


def _converted(norm, activation):
    parameter = norm.weight if norm.affine else None
    new = GroupNorm(
        norm.num_groups,
        norm.num_channels,
        eps=norm.eps,
        affine=norm.affine,
        activation=activation,
        device=parameter.device if parameter is not None else None,
        dtype=parameter.dtype if parameter is not None else None,
    )
    new.load_state_dict(norm.state_dict())
    new.train(norm.training)
    return new


def replace_group_norms(model, activation_fusion=True):
    """Replaces every ``torch.nn.GroupNorm`` in ``model`` (in place; returns ``model``) by ``GroupNorm``.

    With ``activation_fusion``, a SiLU, ReLU or exact GELU module that directly follows a GroupNorm inside an
    ``nn.Sequential`` is fused into it and replaced by ``nn.Identity``: there the order is the container's and
    nothing else sees the GroupNorm's output. Activations called from a ``forward`` (or functional ones) are
    left alone, since the order there cannot be proven from the module tree; so are modules carrying hooks.
    """
    if isinstance(model, nn.GroupNorm) and not isinstance(model, GroupNorm):
        return _converted(model, None)
    for parent in list(model.modules()):
        names = list(parent._modules.keys())
        for i, name in enumerate(names):
            child = parent._modules[name]
            if not isinstance(child, nn.GroupNorm) or isinstance(child, GroupNorm):
                continue
            activation = None
            if activation_fusion and isinstance(parent, nn.Sequential) and i + 1 < len(names):
                if not (child._forward_hooks or child._forward_pre_hooks):
                    activation = _fusable_activation(parent._modules[names[i + 1]])
            parent._modules[name] = _converted(child, activation)
            if activation is not None:
                parent._modules[names[i + 1]] = nn.Identity()
    return model
