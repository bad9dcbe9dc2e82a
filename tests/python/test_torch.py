"""pytest suite of the PyTorch integration: the libtorch operator torch.ops.groupnorm.group_norm and the Python
module groupnorm.torch (GroupNorm, group_norm, replace_group_norms). Run under ctest; by hand:

    PYTHONPATH=build/<dir>/python /usr/bin/python3 -m pytest tests/python/test_torch.py
"""
import math
import warnings

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (Debian: apt-get install python3-torch)")
import groupnorm.torch as gnt  # ctest registers this suite only when the operator was built
F = torch.nn.functional
nn = torch.nn

ACTIVATIONS = {None: lambda z: z, "silu": F.silu, "gelu": F.gelu, "relu": F.relu}

# (shape, num_groups): ranks 3-5, G = 1, G = C, UNet-like channel counts.
SHAPES = [((2, 32, 8, 8), 8), ((1, 64, 5, 7), 32), ((3, 6, 10), 3), ((2, 16, 3, 4, 5), 4), ((2, 12, 7, 7), 1),
          ((1, 24, 6, 6), 24)]

# Storage rounding of each dtype (half an ulp relative, 2^-p), scaled by 4 for the few float32 operations that
# follow the statistics; float32 outputs carry a few float32 roundings on values of magnitude <= ~10.
TOLERANCE = {torch.float32: 1e-5, torch.float16: 4 * 2.0**-11, torch.bfloat16: 4 * 2.0**-8}


def reference_forward(x, num_groups, weight, bias, eps, activation=None, residual=None):
    """act(GroupNorm(x + residual)) in float64, from the definition."""
    x = x.double() + (0 if residual is None else residual.double())
    n, c = x.shape[:2]
    g = x.reshape(n, num_groups, -1)
    mean = g.mean(-1, keepdim=True)
    var = g.var(-1, unbiased=False, keepdim=True)
    y = ((g - mean) / torch.sqrt(var + eps)).reshape(x.shape)
    shape = (1, c) + (1,) * (x.dim() - 2)
    if weight is not None:
        y = y * weight.double().reshape(shape)
    if bias is not None:
        y = y + bias.double().reshape(shape)
    return ACTIVATIONS[activation](y)


def activation_derivative(z, activation):
    if activation is None:
        return torch.ones_like(z)
    if activation == "relu":
        return (z > 0).double()
    if activation == "silu":
        s = torch.sigmoid(z)
        return s * (1 + z * (1 - s))
    return 0.5 * (1 + torch.erf(z / math.sqrt(2))) + z * torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def reference_backward(x, dy, num_groups, weight, bias, eps, activation=None):
    """(dx, dweight, dbias) in float64 from the closed-form GroupNorm backward."""
    x, dy = x.double(), dy.double()
    n, c = x.shape[:2]
    w = torch.ones(c, dtype=torch.float64) if weight is None else weight.double()
    b = torch.zeros(c, dtype=torch.float64) if bias is None else bias.double()
    g = x.reshape(n, num_groups, -1)
    mean = g.mean(-1, keepdim=True)
    rstd = 1 / torch.sqrt(g.var(-1, unbiased=False, keepdim=True) + eps)
    xhat = ((g - mean) * rstd).reshape(n, c, -1)
    dz = dy.reshape(n, c, -1) * activation_derivative(xhat * w[:, None] + b[:, None], activation)
    dbias = dz.sum((0, 2))
    dweight = (dz * xhat).sum((0, 2))
    gg = (dz * w[:, None]).reshape(n, num_groups, -1)
    xh = xhat.reshape(n, num_groups, -1)
    dx = rstd * (gg - gg.mean(-1, keepdim=True) - xh * (gg * xh).mean(-1, keepdim=True))
    return dx.reshape(x.shape), dweight, dbias


def close(actual, expected, tol):
    """|actual - expected| <= tol * (1 + |expected|) elementwise, in float64."""
    actual, expected = actual.double(), expected.double()
    bound = tol * (1 + expected.abs())
    worst = ((actual - expected).abs() / bound).max().item() if actual.numel() else 0.0
    assert actual.shape == expected.shape and worst <= 1.0, f"error {worst:.3g}x the tolerance {tol:g}"


def sample(shape, dtype=torch.float32, seed=0, channels_last=False):
    gen = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=gen) * 3 + 1).to(dtype)
    c = shape[1]
    w, b = torch.randn(c, generator=gen), torch.randn(c, generator=gen)
    if channels_last:
        x = x.to(memory_format=torch.channels_last if x.dim() == 4 else torch.channels_last_3d)
    return x, w, b


def test_reference_backward_matches_central_finite_differences():
    # The closed form the library is checked against, checked itself: d<dy, act(GN(x))>/dx by central differences
    # of the float64 forward, and against autograd of that forward for weight and bias.
    x, w, b = (t.double() for t in sample((2, 4, 3, 3), seed=1))
    dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    for activation in ACTIVATIONS:
        dx, dw, db = reference_backward(x, dy, 2, w, b, 1e-5, activation)
        h = 1e-6
        numeric = torch.empty_like(x).reshape(-1)
        for i in range(x.numel()):
            e = torch.zeros(x.numel(), dtype=torch.float64)
            e[i] = h
            plus = reference_forward(x + e.reshape(x.shape), 2, w, b, 1e-5, activation)
            minus = reference_forward(x - e.reshape(x.shape), 2, w, b, 1e-5, activation)
            numeric[i] = ((plus - minus) * dy).sum() / (2 * h)
        # Central differences at h = 1e-6 carry O(h^2) truncation and ~1e-10 cancellation error.
        close(dx, numeric.reshape(x.shape), 1e-6)
        wr, br = w.clone().requires_grad_(), b.clone().requires_grad_()
        (reference_forward(x, 2, wr, br, 1e-5, activation) * dy).sum().backward()
        close(dw, wr.grad, 1e-10)
        close(db, br.grad, 1e-10)


def test_operator_is_registered_and_callable():
    x, w, b = sample((2, 32, 8, 8))
    y = torch.ops.groupnorm.group_norm(x, 8, w, b, 1e-5, "silu", None)
    close(y, reference_forward(x, 8, w, b, 1e-5, "silu"), TOLERANCE[torch.float32])
    # Schema defaults: weight, bias, eps, activation and residual may be omitted.
    close(torch.ops.groupnorm.group_norm(x, 8), reference_forward(x, 8, None, None, 1e-5), TOLERANCE[torch.float32])


# Large enough (>= 32768 elements) that runs on more than one thread are cut into units of groups run on
# PyTorch's own threads: one sample in halves or thirds, three samples in halves (2 threads) or whole (3),
# two samples of G = 3 whole (2 threads) or in thirds (3); G = 1, B = 1 stays one plan split over the arena.
SPLIT_SHAPES = [((1, 64, 32, 32), 32), ((3, 24, 40, 40), 8), ((2, 12, 50, 70), 3), ((1, 8, 64, 64), 1)]


def raw_bits(t):
    return t.view(torch.int16 if t.element_size() == 2 else torch.int32)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape,groups", SPLIT_SHAPES)
def test_operator_gives_the_same_bits_at_every_thread_count_as_the_library(shape, groups, dtype):
    import groupnorm
    import numpy as np
    x, w, b = sample(shape, dtype)
    r = sample(shape, dtype, seed=1)[0]
    before = torch.get_num_threads()
    runs = []
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            runs.append(torch.ops.groupnorm.group_norm_forward(x, groups, w, b, 1e-5, "silu", r))
    finally:
        torch.set_num_threads(before)
    for run in runs[1:]:
        for got, want in zip(run, runs[0]):  # y, mean, rstd, sum
            assert torch.equal(raw_bits(got), raw_bits(want))
    # The whole problem as one plan, through the library's own Python entry point (NumPy has no bfloat16).
    if dtype == torch.float32:
        y = groupnorm.group_norm(x.numpy(), groups, w.numpy(), b.numpy(), 1e-5, activation="silu",
                                 residual=r.numpy())
        assert np.array_equal(np.ascontiguousarray(y).view(np.int32), runs[0][0].numpy().view(np.int32))


# One sample: the backward's units of groups on PyTorch's threads (G = 32, G = 3 in thirds); two samples and
# G = 1 stay one call.
BACKWARD_SPLIT_SHAPES = [((1, 64, 32, 32), 32), ((1, 12, 60, 60), 3), ((2, 24, 40, 40), 8), ((1, 8, 64, 64), 1)]


@pytest.mark.parametrize("activation", [None, "silu"])
@pytest.mark.parametrize("shape,groups", BACKWARD_SPLIT_SHAPES)
def test_operator_backward_gives_the_same_bits_at_every_thread_count(shape, groups, activation):
    x, w, b = sample(shape)
    dy = sample(shape, seed=2)[0]
    _, mean, rstd, _ = torch.ops.groupnorm.group_norm_forward(x, groups, w, b, 1e-5, activation, None)
    before = torch.get_num_threads()
    runs = []
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            runs.append(torch.ops.groupnorm.group_norm_backward(dy, x, groups, w, b, mean, rstd, 1e-5, activation,
                                                                [True, True, True]))
    finally:
        torch.set_num_threads(before)
    for run in runs[1:]:
        for got, want in zip(run, runs[0]):  # dx, dweight, dbias
            assert torch.equal(raw_bits(got), raw_bits(want))
    dx, dw, db = reference_backward(x, dy, groups, w, b, 1e-5, activation)
    close(runs[0][0], dx, 1e-4)  # float32 gradient arithmetic, as in the parity test


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("shape,groups", SHAPES)
def test_module_matches_torch_group_norm_outputs_and_gradients(shape, groups, channels_last):
    if channels_last and len(shape) == 3:
        pytest.skip("torch has no channels_last memory format for rank-3 tensors")
    x, w, b = sample(shape, channels_last=channels_last)
    ours, theirs = gnt.GroupNorm(groups, shape[1]), nn.GroupNorm(groups, shape[1])
    with torch.no_grad():
        for m in (ours, theirs):
            m.weight.copy_(w)
            m.bias.copy_(b)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = ours(xa), theirs(xb)
    assert ya.stride() == yb.stride()
    close(ya, yb, TOLERANCE[torch.float32])
    dy = torch.randn(shape, generator=torch.Generator().manual_seed(3))
    ya.backward(dy)
    yb.backward(dy)
    # Both sides are float32 backward passes (sums over up to 4 x 8 x 8 x 8 values); 1e-4 covers their
    # reduction-order differences relative to unit-scale gradients.
    close(xa.grad, xb.grad, 1e-4)
    close(ours.weight.grad, theirs.weight.grad, 1e-4)
    close(ours.bias.grad, theirs.bias.grad, 1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("channels_last", [False, True])
def test_forward_and_gradients_match_float64_reference(dtype, activation, channels_last):
    x, w, b = sample((2, 16, 6, 5), dtype, seed=4, channels_last=channels_last)
    dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(5)).to(dtype)
    xr, wr, br = x.clone().requires_grad_(), w.clone().requires_grad_(), b.clone().requires_grad_()
    y = gnt.group_norm(xr, 4, wr, br, 1e-5, activation)
    assert y.dtype == dtype and y.stride() == x.stride()
    close(y, reference_forward(x, 4, w, b, 1e-5, activation), TOLERANCE[dtype])
    y.backward(dy)
    dx, dw, db = reference_backward(x, dy, 4, w, b, 1e-5, activation)
    tol = max(TOLERANCE[dtype], 1e-4)  # float32 gradient arithmetic, as in the parity test
    close(xr.grad, dx, tol)
    # dweight / dbias sum 2 x 30 products per channel; relative to their scale (~sqrt(60)), float32 sums and a
    # 16-bit dy carry the dtype's storage tolerance.
    scale = dw.abs().max().item() + db.abs().max().item()
    close(wr.grad / scale, dw / scale, tol)
    close(br.grad / scale, db / scale, tol)


def test_residual_is_normalized_with_the_input_and_receives_the_input_gradient():
    x, w, b = sample((2, 32, 4, 4), seed=6)
    r = torch.randn(x.shape, generator=torch.Generator().manual_seed(7))
    xr, rr = x.clone().requires_grad_(), r.clone().requires_grad_()
    y = gnt.group_norm(xr, 8, w, b, 1e-5, "silu", rr)
    close(y, reference_forward(x, 8, w, b, 1e-5, "silu", r), TOLERANCE[torch.float32])
    dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(8))
    y.backward(dy)
    dx, _, _ = reference_backward(x + r, dy, 8, w, b, 1e-5, "silu")
    close(xr.grad, dx, 1e-4)
    assert torch.equal(xr.grad, rr.grad)


def test_state_dict_round_trips_with_torch_group_norm():
    theirs = nn.GroupNorm(4, 16)
    with torch.no_grad():
        theirs.weight.normal_()
        theirs.bias.normal_()
    ours = gnt.GroupNorm(4, 16, activation="silu")
    ours.load_state_dict(theirs.state_dict())
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight", "bias"]
    back = nn.GroupNorm(4, 16)
    back.load_state_dict(ours.state_dict())
    assert torch.equal(back.weight, theirs.weight) and torch.equal(back.bias, theirs.bias)
    assert dict(gnt.GroupNorm(4, 16, affine=False).state_dict()) == {}


def test_training_step_matches_torch_group_norm():
    torch.manual_seed(9)
    reference = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.GroupNorm(4, 16), nn.SiLU(), nn.Conv2d(16, 4, 1))
    ours = gnt.replace_group_norms(__import__("copy").deepcopy(reference))
    x = torch.randn(2, 8, 8, 8)
    for model in (reference, ours):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        model(x).square().mean().backward()
        optimizer.step()
    for (name, a), (_, b) in zip(reference.named_parameters(), ours.named_parameters()):
        close(b, a, 1e-5)  # one step of lr 0.1 on float32 gradients that agree to ~1e-6


def test_replace_group_norms_fuses_sequential_silu_and_keeps_outputs():
    torch.manual_seed(10)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = nn.GroupNorm(8, 32)  # followed by a functional SiLU: not provable, left unfused
            self.seq = nn.Sequential(nn.GroupNorm(8, 32), nn.SiLU(), nn.Conv2d(32, 32, 3, padding=1),
                                     nn.GroupNorm(4, 32), nn.GELU(approximate="tanh"))

        def forward(self, x):
            return self.seq(F.silu(self.norm(x)))

    model = Block().eval()
    x = torch.randn(1, 32, 8, 8)
    expected = model(x)
    gnt.replace_group_norms(model)
    assert isinstance(model.norm, gnt.GroupNorm) and model.norm.activation is None
    assert model.seq[0].activation == "silu" and isinstance(model.seq[1], nn.Identity)
    assert model.seq[3].activation is None and isinstance(model.seq[4], nn.GELU)  # tanh GELU is not fusable
    assert not any(type(m) is nn.GroupNorm for m in model.modules())
    close(model(x), expected, 1e-5)

    hooked = nn.Sequential(nn.GroupNorm(2, 8), nn.SiLU())
    hooked[1].register_forward_hook(lambda *args: None)
    gnt.replace_group_norms(hooked)
    assert hooked[0].activation is None and isinstance(hooked[1], nn.SiLU)
    unfused = gnt.replace_group_norms(nn.Sequential(nn.GroupNorm(2, 8), nn.SiLU()), activation_fusion=False)
    assert unfused[0].activation is None and isinstance(unfused[1], nn.SiLU)


def test_inference_mode_and_no_grad_run_the_library():
    x, w, b = sample((1, 32, 8, 8))
    with torch.inference_mode():
        close(gnt.group_norm(x, 8, w, b), reference_forward(x, 8, w, b, 1e-5), TOLERANCE[torch.float32])
    with torch.no_grad():
        y = gnt.group_norm(x, 8, w.requires_grad_(), b)
        assert y.grad_fn is None


def test_unsupported_inputs_fall_back_to_torch_with_one_warning():
    x, w, b = sample((2, 8, 4, 6))
    strided = x[:, :, :, ::2]
    gnt._warned.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = gnt.group_norm(strided, 4, w, b, activation="silu")
        gnt.group_norm(strided, 4, w, b)
        double = gnt.group_norm(x.double(), 4, w.double(), b.double())
    messages = [str(c.message) for c in caught]
    assert len(messages) == 2, messages  # one per reason, not per call
    assert "neither contiguous nor channels_last" in messages[0] and "torch.float64" in messages[1]
    close(first, reference_forward(strided, 4, w, b, 1e-5, "silu"), TOLERANCE[torch.float32])
    assert double.dtype == torch.float64
    close(double, reference_forward(x, 4, w, b, 1e-5), 1e-12)


def test_bad_arguments_raise_value_errors_naming_them():
    x, w, b = sample((2, 8, 4, 4))
    with pytest.raises(ValueError, match="activation is 'tanh'"):
        gnt.group_norm(x, 4, activation="tanh")
    with pytest.raises(ValueError, match="num_groups is 3"):
        gnt.group_norm(x, 3)
    with pytest.raises(ValueError, match=r"weight has shape \[4\]"):
        gnt.group_norm(x, 4, w[:4])
    with pytest.raises(ValueError, match="activation is \"tanh\""):
        torch.ops.groupnorm.group_norm(x, 4, None, None, 1e-5, "tanh", None)
    with pytest.raises(ValueError, match="strides"):
        torch.ops.groupnorm.group_norm(x[:, :, :, ::2], 4)
