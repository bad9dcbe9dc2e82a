"""pytest suite of the `groupnorm` Python module (tools/python). Run under ctest; by hand:

    PYTHONPATH=build/<dir>/python /usr/bin/python3 -m pytest tests/python/test_module.py
"""
import concurrent.futures

import numpy as np
import pytest

import groupnorm


def reference(X, gamma, beta, num_groups, epsilon=1e-5):
    """The NumPy definition, in float64: normalize each (sample, group) slice with its population statistics."""
    X = np.asarray(X, dtype=np.float64)
    N, C = X.shape[:2]
    g = X.reshape(N, num_groups, -1)
    mean = g.mean(axis=2, keepdims=True)
    var = g.var(axis=2, keepdims=True)
    y = ((g - mean) / np.sqrt(var + epsilon)).reshape(X.shape)
    bshape = (1, C) + (1,) * (X.ndim - 2)
    if gamma is not None:
        y = y * np.asarray(gamma, dtype=np.float64).reshape(bshape)
    if beta is not None:
        y = y + np.asarray(beta, dtype=np.float64).reshape(bshape)
    return y


def bits(a):
    return np.ascontiguousarray(a).view(np.uint32 if a.dtype == np.float32 else np.uint16)


def test_seed_example():
    # The NumPy seed: group_normalization(X, gamma, beta, num_groups, epsilon) with (1, C, 1, 1) parameters.
    np.random.seed(0)
    X = np.random.randn(2, 6, 4, 4).astype(np.float32)
    gamma = np.random.randn(1, 6, 1, 1).astype(np.float32)
    beta = np.random.randn(1, 6, 1, 1).astype(np.float32)
    Y = groupnorm.group_normalization(X, gamma, beta, 3, 1e-5)
    assert Y.shape == X.shape and Y.dtype == np.float32
    np.testing.assert_allclose(Y, reference(X, gamma, beta, 3), rtol=0, atol=1e-5)
    # gamma / beta of shape (C,) give the same bits; defaults are epsilon=1e-5.
    Y2 = groupnorm.group_normalization(X, gamma.ravel(), beta.ravel(), num_groups=3)
    assert np.array_equal(bits(Y), bits(Y2))


@pytest.mark.parametrize("seed", range(12))
def test_random_shapes_match_float64_reference(seed):
    rng = np.random.default_rng(seed)
    rank = int(rng.integers(2, 6))
    groups = int(rng.choice([1, 2, 3, 4, 8]))
    channels = groups * int(rng.integers(1, 6))
    shape = (int(rng.integers(1, 4)), channels) + tuple(int(rng.integers(1, 9)) for _ in range(rank - 2))
    X = (rng.standard_normal(shape) * rng.uniform(0.1, 10) + rng.uniform(-5, 5)).astype(np.float32)
    gamma = rng.standard_normal(channels).astype(np.float32)
    beta = rng.standard_normal(channels).astype(np.float32)
    eps = float(rng.choice([1e-5, 1e-3, 0.1]))
    Y = groupnorm.group_normalization(X, gamma, beta, groups, eps)
    np.testing.assert_allclose(Y, reference(X, gamma, beta, groups, eps), rtol=0, atol=1e-5)


def test_large_parallel_shape_matches_reference():
    rng = np.random.default_rng(42)
    X = rng.standard_normal((2, 64, 48, 48)).astype(np.float32)
    gamma = rng.standard_normal(64).astype(np.float32)
    beta = rng.standard_normal(64).astype(np.float32)
    for groups in (1, 32):
        Y = groupnorm.group_normalization(X, gamma, beta, groups)
        np.testing.assert_allclose(Y, reference(X, gamma, beta, groups), rtol=0, atol=1e-5)


def test_absent_gamma_beta_and_empty_batch():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((3, 4, 5)).astype(np.float32)
    np.testing.assert_allclose(groupnorm.group_normalization(X, None, None, 2), reference(X, None, None, 2),
                               rtol=0, atol=1e-5)
    empty = np.zeros((0, 4, 3, 3), np.float32)
    out = groupnorm.group_normalization(empty, None, None, 2)
    assert out.shape == (0, 4, 3, 3) and out.dtype == np.float32


def test_in_place_with_out_equal_x():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((2, 8, 6, 6)).astype(np.float32)
    gamma = rng.standard_normal(8).astype(np.float32)
    beta = rng.standard_normal(8).astype(np.float32)
    expected = groupnorm.group_normalization(X, gamma, beta, 4)
    before = X.__array_interface__["data"][0]
    result = groupnorm.group_normalization(X, gamma, beta, 4, out=X)
    assert result is X
    assert X.__array_interface__["data"][0] == before
    assert np.array_equal(bits(X), bits(expected))


def test_out_array_is_filled_and_returned():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((2, 4, 3)).astype(np.float32)
    out = np.empty_like(X)
    assert groupnorm.group_normalization(X, None, None, 2, out=out) is out
    np.testing.assert_allclose(out, reference(X, None, None, 2), rtol=0, atol=1e-5)


def test_c_contiguous_float32_is_not_copied():
    # If X were copied, a partially overlapping out could not be detected: the library sees X's own memory.
    base = np.zeros(2 * 72, np.float32)
    X = base[:72].reshape(2, 4, 3, 3)
    out = base[36:108].reshape(2, 4, 3, 3)
    with pytest.raises(ValueError, match="overlaps x"):
        groupnorm.group_normalization(X, None, None, 2, out=out)
    assert not base.any()  # nothing written


def test_other_inputs_are_converted():
    rng = np.random.default_rng(4)
    X64 = rng.standard_normal((2, 6, 5, 4))
    ref = reference(X64.astype(np.float32), None, None, 3)
    Y = groupnorm.group_normalization(X64, None, None, 3)
    assert Y.dtype == np.float32
    np.testing.assert_allclose(Y, ref, rtol=0, atol=1e-5)
    # Non-contiguous float32 (a transposed view), big-endian float32, a list, integers.
    Xt = np.ascontiguousarray(X64.astype(np.float32).transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    assert not Xt.flags.c_contiguous
    np.testing.assert_allclose(groupnorm.group_normalization(Xt, None, None, 3), ref, rtol=0, atol=1e-5)
    np.testing.assert_allclose(groupnorm.group_normalization(X64.astype(">f4"), None, None, 3), ref, rtol=0,
                               atol=1e-5)
    np.testing.assert_allclose(groupnorm.group_normalization(X64.tolist(), None, None, 3), ref, rtol=0, atol=1e-5)
    Xi = np.arange(48, dtype=np.int32).reshape(2, 4, 6)
    np.testing.assert_allclose(groupnorm.group_normalization(Xi, [1, 2, 3, 4], [0, 0, 1, 1], 2),
                               reference(Xi, [1, 2, 3, 4], [0, 0, 1, 1], 2), rtol=0, atol=1e-5)


def test_float16_gives_float16():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((2, 8, 7, 7)).astype(np.float16)
    gamma = rng.standard_normal(8).astype(np.float32)
    Y = groupnorm.group_normalization(X, gamma, None, 4)
    assert Y.dtype == np.float16
    np.testing.assert_allclose(Y.astype(np.float64), reference(X, gamma, None, 4), rtol=2e-3, atol=2e-3)
    out = np.empty_like(X)
    groupnorm.group_normalization(X, gamma, None, 4, out=out)
    assert np.array_equal(bits(out), bits(Y))
    groupnorm.group_normalization(X, gamma, None, 4, out=X)
    assert np.array_equal(bits(X), bits(Y))


def test_thread_count_does_not_change_bits():
    rng = np.random.default_rng(6)
    X = (rng.standard_normal((1, 64, 64, 64)) * 3 + 7).astype(np.float32)
    gamma = rng.standard_normal(64).astype(np.float32)
    beta = rng.standard_normal(64).astype(np.float32)
    for groups in (1, 8):
        results = [groupnorm.group_normalization(X, gamma, beta, groups, threads=t) for t in (1, 2, 3, 4, None)]
        for r in results[1:]:
            assert np.array_equal(bits(results[0]), bits(r))


def test_concurrent_calls_from_python_threads():
    rng = np.random.default_rng(7)
    inputs = [rng.standard_normal((2, 16, 32, 32)).astype(np.float32) for _ in range(8)]
    expected = [groupnorm.group_normalization(x, None, None, 4, threads=1) for x in inputs]
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(3):
            got = list(pool.map(lambda x: groupnorm.group_normalization(x, None, None, 4), inputs))
            for e, g in zip(expected, got):
                assert np.array_equal(bits(e), bits(g))


def test_hardware_threads_and_version():
    assert groupnorm.hardware_threads() >= 1
    assert isinstance(groupnorm.__version__, str) and groupnorm.__version__


X4 = np.arange(2 * 4 * 3 * 3, dtype=np.float32).reshape(2, 4, 3, 3)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_groups=3), "num_groups = 3 does not divide channels = 4"),
        (dict(num_groups=0), "num_groups = 0"),
        (dict(num_groups=-2), "num_groups = -2, expected at least 1"),
        (dict(num_groups=2, epsilon=-1.0), "epsilon"),
        (dict(num_groups=2, epsilon=float("nan")), "epsilon"),
        (dict(num_groups=2, epsilon=float("inf")), "epsilon"),
        (dict(num_groups=2, gamma=np.ones(3, np.float32)), "gamma has 3 elements, expected 4"),
        (dict(num_groups=2, beta=np.ones(5, np.float32)), "beta has 5 elements, expected 4"),
        (dict(num_groups=2, threads=0), "threads = 0"),
        (dict(num_groups=2, threads=-1), "threads = -1"),
        (dict(num_groups=2, X=np.ones(4, np.float32)), "expected rank >= 2"),
        (dict(num_groups=2, X=np.ones((2, 4), np.complex64)), "dtype complex64"),
        (dict(num_groups=2, gamma=np.ones(4, bool)), "gamma has dtype bool"),
        (dict(num_groups=2, out=np.empty((2, 4, 3, 3), np.float64)), "out has dtype float64, expected float32"),
        (dict(num_groups=2, out=np.empty((2, 4, 9), np.float32)), "out has shape (2, 4, 9), expected (2, 4, 3, 3)"),
        (dict(num_groups=2, out=np.empty((2, 4, 3, 6), np.float32)[..., ::2]), "out is not C-contiguous"),
    ],
)
def test_errors_raise_value_error_with_the_message(kwargs, message):
    args = dict(X=X4, gamma=None, beta=None, epsilon=1e-5)
    args.update(kwargs)
    X = args.pop("X")
    with pytest.raises(ValueError) as info:
        groupnorm.group_normalization(X, args.pop("gamma"), args.pop("beta"), args.pop("num_groups"), **args)
    assert message in str(info.value)
    assert str(info.value).startswith("groupnorm: ")


def test_errors_leave_out_untouched():
    out = np.full_like(X4, 7.0)
    with pytest.raises(ValueError):
        groupnorm.group_normalization(X4, np.ones(3, np.float32), None, 2, out=out)
    with pytest.raises(ValueError):
        groupnorm.group_normalization(X4, None, None, 3, out=out)
    assert (out == 7.0).all()


def test_read_only_out_and_type_errors():
    ro = np.empty_like(X4)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        groupnorm.group_normalization(X4, None, None, 2, out=ro)
    with pytest.raises(TypeError):
        groupnorm.group_normalization(X4, None, None, 2.0)  # num_groups must be an integer
    with pytest.raises(TypeError):
        groupnorm.group_normalization(X4, None, None, 2, out=[0.0] * 72)
    with pytest.raises(TypeError):
        groupnorm.group_normalization(X4, None, None, 2, 1e-5, None)  # out is keyword-only


def test_keywords_built_at_run_time_match_like_literal_ones():
    # Keywords written in source are interned and matched by identity; these are built at run time (not
    # interned), so they take the by-value path and must bind exactly as the literal spelling does.
    x = np.random.default_rng(9).standard_normal((2, 8, 3, 3)).astype(np.float32)
    key = "".join
    plan = groupnorm.Plan(x.shape, **{key(["num_", "groups"]): 4, key(["e", "ps"]): 1e-3})
    assert plan.num_groups == 4 and abs(plan.eps - 1e-3) < 1e-9
    out = np.empty_like(x)
    assert plan(x, **{key(["o", "ut"]): out}) is out
    assert np.array_equal(bits(out), bits(groupnorm.Plan(x.shape, 4, 1e-3)(x)))
    y = groupnorm.group_norm(x, **{key(["num_", "groups"]): 4, key(["thr", "eads"]): 1})
    assert np.array_equal(bits(y), bits(groupnorm.group_norm(x, 4)))
    with pytest.raises(TypeError, match="multiple values for argument 'weight'"):
        plan(x, None, **{key(["wei", "ght"]): None})
    with pytest.raises(TypeError, match="unexpected keyword argument 'outt'"):
        plan(x, **{key(["ou", "tt"]): out})


def test_plan_call_has_its_docstring_and_plans_support_weak_references():
    import weakref

    assert "plan(x, weight=None, bias=None, *, residual=None" in groupnorm.Plan.__call__.__doc__
    plan = groupnorm.Plan((1, 4, 2, 2), 2)
    assert weakref.ref(plan)() is plan
