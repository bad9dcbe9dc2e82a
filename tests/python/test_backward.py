"""pytest suite of groupnorm.group_norm_backward. Run under ctest; by hand:

    PYTHONPATH=build/<dir>/python /usr/bin/python3 -m pytest tests/python/test_backward.py
"""
import numpy as np
import pytest

import groupnorm

try:
    import torch
except ImportError:  # the torch comparison is skipped, with its reason
    torch = None


def reference(x, dy, num_groups, gamma, beta, eps):
    """The float64 backward of GroupNorm (no activation), NCHW, from the formulas of docs/backward.md."""
    x = x.astype(np.float64)
    dy = dy.astype(np.float64)
    n, c = x.shape[:2]
    bshape = (1, c) + (1,) * (x.ndim - 2)
    g = x.reshape(n, num_groups, -1)
    mean = g.mean(axis=2, keepdims=True)
    rstd = 1 / np.sqrt(g.var(axis=2, keepdims=True) + eps)
    xhat = ((g - mean) * rstd).reshape(x.shape)
    axes = (0,) + tuple(range(2, x.ndim))
    dgamma = (dy * xhat).sum(axis=axes)
    dbeta = dy.sum(axis=axes)
    gg = (dy * gamma.reshape(bshape)).reshape(n, num_groups, -1)
    xh = xhat.reshape(n, num_groups, -1)
    dx = rstd * (gg - gg.mean(axis=2, keepdims=True) - xh * (gg * xh).mean(axis=2, keepdims=True))
    return dx.reshape(x.shape), dgamma, dbeta


def data(shape, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 1.5 + 0.3).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    gamma = (1 + 0.5 * rng.standard_normal(shape[1])).astype(np.float32)
    beta = (0.3 * rng.standard_normal(shape[1])).astype(np.float32)
    return x, dy, gamma, beta


@pytest.mark.parametrize("shape,groups", [((2, 6, 7), 3), ((2, 8, 5, 6), 4), ((1, 4, 3, 4, 5), 1)])
def test_matches_float64_reference(shape, groups):
    x, dy, gamma, beta = data(shape)
    dx, dgamma, dbeta = groupnorm.group_norm_backward(x, dy, groups, gamma, beta)
    rdx, rdgamma, rdbeta = reference(x, dy, groups, gamma, beta, 1e-5)
    # float32 arithmetic over at most a few hundred terms: 1e-4 relative to the output's scale.
    np.testing.assert_allclose(dx, rdx, rtol=0, atol=1e-4 * np.abs(rdx).max())
    np.testing.assert_allclose(dgamma, rdgamma, rtol=0, atol=1e-4 * np.abs(rdgamma).max())
    np.testing.assert_allclose(dbeta, rdbeta, rtol=0, atol=1e-4 * np.abs(rdbeta).max())


def test_gradients_not_asked_for_are_none_and_threads_do_not_change_bits():
    x, dy, gamma, beta = data((2, 32, 40, 40))
    dx, dgamma, dbeta = groupnorm.group_norm_backward(x, dy, 8, gamma, dgamma=False, dbeta=False)
    assert dgamma is None and dbeta is None and dx.shape == x.shape and dx.dtype == np.float32
    for t in (1, 2, 3):
        dx_t, dgamma_t, dbeta_t = groupnorm.group_norm_backward(x, dy, 8, gamma, threads=t)
        assert np.array_equal(dx_t.view(np.uint32), dx.view(np.uint32))
        assert dgamma_t is not None and dbeta_t is not None


def test_backward_threads_above_the_hardware_are_capped_without_a_warning(capfd):
    x, dy, gamma, beta = data((2, 32, 40, 40))
    dx, dgamma, _ = groupnorm.group_norm_backward(x, dy, 8, gamma, threads=1)
    dx_many, dgamma_many, _ = groupnorm.group_norm_backward(x, dy, 8, gamma, threads=4096)
    assert np.array_equal(dx_many.view(np.uint32), dx.view(np.uint32))
    assert np.array_equal(dgamma_many.view(np.uint32), dgamma.view(np.uint32))
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""


def test_nhwc_float16_and_activation_match_nchw():
    x, dy, gamma, beta = data((2, 12, 5, 7))
    nchw = groupnorm.group_norm_backward(x, dy, 3, gamma, beta, activation="silu")
    to_nhwc = (0, 2, 3, 1)
    nhwc = groupnorm.group_norm_backward(x.transpose(to_nhwc), dy.transpose(to_nhwc), 3, gamma, beta,
                                         layout="nhwc", activation="silu")
    np.testing.assert_allclose(nhwc[0].transpose(0, 3, 1, 2), nchw[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(nhwc[1], nchw[1], rtol=1e-4, atol=1e-4)
    half = groupnorm.group_norm_backward(x.astype(np.float16), dy.astype(np.float16), 3, gamma, beta)
    assert half[0].dtype == np.float16 and half[1].dtype == np.float32


def test_bad_arguments_raise_value_error():
    x, dy, gamma, beta = data((2, 6, 7))
    with pytest.raises(ValueError, match="num_groups = 4 does not divide channels = 6"):
        groupnorm.group_norm_backward(x, dy, 4)
    with pytest.raises(ValueError, match="dy's shape differs"):
        groupnorm.group_norm_backward(x, dy[:1], 3)
    with pytest.raises(ValueError, match="mean is given and rstd is absent"):
        groupnorm.group_norm_backward(x, dy, 3, mean=np.zeros(6, np.float32))
    with pytest.raises(ValueError, match="activation = 'tanh'"):
        groupnorm.group_norm_backward(x, dy, 3, activation="tanh")


@pytest.mark.skipif(torch is None, reason="torch is not installed")
def test_matches_torch_autograd():
    x, dy, gamma, beta = data((2, 16, 9, 9))
    xt = torch.from_numpy(x).double().requires_grad_()
    gt = torch.from_numpy(gamma).double().requires_grad_()
    bt = torch.from_numpy(beta).double().requires_grad_()
    torch.nn.functional.group_norm(xt, 4, gt, bt, 1e-5).backward(torch.from_numpy(dy).double())
    dx, dgamma, dbeta = groupnorm.group_norm_backward(x, dy, 4, gamma, beta)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=0, atol=1e-4 * xt.grad.abs().max().item())
    np.testing.assert_allclose(dgamma, gt.grad.numpy(), rtol=0, atol=1e-4 * gt.grad.abs().max().item())
    np.testing.assert_allclose(dbeta, bt.grad.numpy(), rtol=0, atol=1e-4 * bt.grad.abs().max().item())
