"""pytest suite of groupnorm.group_norm and groupnorm.Plan: every option against a float64 reference, the
same bits as the C ABI, zero-copy buffers (NumPy, memoryview, torch via DLPack) and errors that name the
argument and write nothing. Run under ctest; by hand:

    PYTHONPATH=build/<dir>/python /usr/bin/python3 -m pytest tests/python/test_group_norm.py
"""
import ctypes
import itertools
import math
import os

import numpy as np
import pytest

import groupnorm

ACTIVATIONS = [None, "relu", "silu", "gelu"]
STORAGE = {"float32": np.float32, "float16": np.float16, "bfloat16": np.uint16}


def to_bf16(a):
    """float32 -> bfloat16 bits (round to nearest even), as uint16."""
    u = np.ascontiguousarray(a, np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def from_storage(a, dtype):
    if dtype == "bfloat16":
        return (a.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    return a.astype(np.float64)


def encode(a, dtype):
    return to_bf16(a) if dtype == "bfloat16" else np.ascontiguousarray(a, STORAGE[dtype])


def storage_ulp(v, dtype):
    mant, emin = {"float32": (23, -126), "float16": (10, -14), "bfloat16": (7, -126)}[dtype]
    e = np.frexp(np.abs(v))[1] - 1
    return np.ldexp(1.0, np.maximum(e, emin) - mant)


def activate(z, act):
    if act == "relu":
        return np.maximum(z, 0)
    if act == "silu":
        return z / (1 + np.exp(-z))
    if act == "gelu":
        return 0.5 * z * np.vectorize(math.erfc)(-z / math.sqrt(2))
    return z


def reference(x, groups, weight, bias, eps, layout, act, residual):
    """float64 GroupNorm of x (+ residual) in `layout`; returns (y, mean, rstd)."""
    v = x + (residual if residual is not None else 0)
    if layout == "nhwc":
        v = np.moveaxis(v, -1, 1)
    n, c = v.shape[:2]
    g = v.reshape(n, groups, -1)
    mean = g.mean(axis=2)
    rstd = 1 / np.sqrt(g.var(axis=2) + eps)
    z = ((g - mean[..., None]) * rstd[..., None]).reshape(v.shape)
    bshape = (1, c) + (1,) * (v.ndim - 2)
    if weight is not None:
        z = z * weight.astype(np.float64).reshape(bshape)
    if bias is not None:
        z = z + bias.astype(np.float64).reshape(bshape)
    if layout == "nhwc":
        z = np.moveaxis(z, 1, -1)
    return z, activate(z, act), mean, rstd


def check_close(got, z, want, dtype):
    # 1e-5 (1 + |z|): the suite's f32 GroupNorm bound (tests/core/test_reference.cpp), times 1.2 for the
    # activations' slope (GELU's is at most 1.13); one storage ulp: the activation's float error (<= 1 ulp,
    # test_activation.cpp) and the 16-bit rounding (1/2 ulp); 1e-6: outputs near 0, where the fp32 pipeline's
    # absolute error exceeds a 16-bit subnormal ulp (test_features.cpp).
    tol = 1.2e-5 * (1 + np.abs(z)) + storage_ulp(want, dtype) + 1e-6
    err = np.abs(from_storage(got, dtype) - want)
    assert (err <= tol).all(), f"max error {err.max()} at {np.unravel_index(err.argmax(), err.shape)}"


def bits(a):
    a = np.ascontiguousarray(a)
    return a.view({4: np.uint32, 2: np.uint16}[a.dtype.itemsize])


CASES = list(itertools.product(["nchw", "nhwc"], STORAGE, ACTIVATIONS, [False, True], [False, True], [False, True]))


@pytest.mark.parametrize("layout, dtype, act, residual, affine, stats", CASES)
def test_group_norm_and_plan_match_the_float64_reference_for_every_option(layout, dtype, act, residual, affine,
                                                                          stats):
    rng = np.random.default_rng(hash((layout, dtype, act, residual, affine, stats)) % 2**32)
    shape = (2, 12, 5, 3) if layout == "nchw" else (2, 5, 3, 12)
    x = encode(rng.standard_normal(shape) * 2 + 0.5, dtype)
    r = encode(rng.standard_normal(shape), dtype) if residual else None
    w = rng.uniform(0.5, 1.5, 12).astype(np.float32) if affine else None
    b = rng.uniform(-1, 1, 12).astype(np.float32) if affine else None
    kw = dict(layout=layout, activation=act, residual=r, return_sum=residual, return_stats=stats)
    if dtype == "bfloat16":
        kw["dtype"] = "bfloat16"
    result = groupnorm.group_norm(x, 4, w, b, 1e-5, **kw)
    parts = list(result) if (residual or stats) else [result]
    y = parts.pop(0)
    xs, rs = from_storage(x, dtype), (from_storage(r, dtype) if residual else None)
    z, want, mean, rstd = reference(xs, 4, w, b, 1e-5, layout, act, rs)
    assert y.shape == x.shape and y.dtype == x.dtype
    check_close(y, z, want, dtype)
    if residual:
        s = parts.pop(0)
        assert (np.abs(from_storage(s, dtype) - (xs + rs)) <= 0.5 * storage_ulp(xs + rs, dtype)).all()
    if stats:
        m, q = parts
        assert m.shape == (2, 4) and q.shape == (2, 4)
        # saved statistics: float32 of the double merge (test_features.cpp's 1e-5 bound)
        assert (np.abs(m - mean) <= 1e-5 * (1 + np.abs(mean))).all()
        assert (np.abs(q - rstd) <= 1e-5 * rstd).all()

    # The Plan with the same options writes the same bits, into out= and in place.
    plan = groupnorm.Plan(shape, 4, 1e-5, layout=layout, dtype=dtype, activation=act, residual=residual)
    out = np.empty_like(x)
    got = plan(x, w, b, residual=r, out=out)
    assert got is out and np.array_equal(bits(out), bits(y))
    xy = x.copy()
    plan(xy, w, b, residual=r, out=xy)
    assert np.array_equal(bits(xy), bits(y))


def c_abi():
    """libgroupnorm as the module loaded it (its path from /proc/self/maps): dlopen returns the same copy."""
    with open("/proc/self/maps") as maps:
        path = next(word for word in maps.read().split() if "libgroupnorm" in word)
    lib = ctypes.CDLL(path)
    lib.gn_group_norm_f32.restype = ctypes.c_int
    return lib


def test_group_norm_gives_the_bits_of_the_c_abi():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 64, 33, 31)).astype(np.float32)
    w, b = rng.standard_normal(64).astype(np.float32), rng.standard_normal(64).astype(np.float32)
    lib = c_abi()
    y = np.empty_like(x)
    ptr = lambda a: a.ctypes.data_as(ctypes.c_void_p)
    assert lib.gn_group_norm_f32(ptr(x), ptr(y), ptr(w), ptr(b), ctypes.c_size_t(2), ctypes.c_size_t(64),
                                 ctypes.c_size_t(33 * 31), ctypes.c_size_t(8), ctypes.c_float(1e-5), 0) == 0
    for threads in (None, 1, 2, 1000):
        assert np.array_equal(bits(groupnorm.group_norm(x, 8, w, b, threads=threads)), bits(y))
    assert np.array_equal(bits(groupnorm.Plan(x.shape, 8)(x, w, b)), bits(y))


def test_zero_copy_for_memoryview_and_out():
    x = np.random.default_rng(4).standard_normal((2, 8, 16)).astype(np.float32)
    out = np.zeros_like(x)
    got = groupnorm.group_norm(memoryview(x), 2, out=memoryview(out))
    assert isinstance(got, memoryview)
    assert np.array_equal(bits(out), bits(groupnorm.group_norm(x, 2)))
    # out=x: in place on x's own memory.
    y = groupnorm.group_norm(x, 2)
    assert groupnorm.group_norm(x, 2, out=x) is x and np.array_equal(bits(x), bits(y))


def test_torch_tensors_are_used_without_a_copy():
    torch = pytest.importorskip("torch")
    x = torch.randn(2, 8, 4, 4)
    out = torch.empty_like(x)
    assert groupnorm.group_norm(x, 4, out=out) is out
    expected = torch.nn.functional.group_norm(x, 4).numpy()
    # The torch comparison: float32 against float32, 1e-5 (1 + |y|) as the suite's bound.
    assert np.all(np.abs(out.numpy() - expected) <= 1e-5 * (1 + np.abs(expected)))
    xb = x.to(torch.bfloat16)
    yb = torch.empty_like(xb)
    groupnorm.group_norm(xb, 4, out=yb)
    ref = groupnorm.group_norm(xb.view(torch.int16).numpy().view(np.uint16), 4, dtype="bfloat16")
    assert np.array_equal(yb.view(torch.int16).numpy().view(np.uint16), ref)
    with pytest.raises(ValueError, match="contiguous"):
        groupnorm.group_norm(x.transpose(2, 3), 4)


X = np.arange(2 * 4 * 3 * 3, dtype=np.float32).reshape(2, 4, 3, 3)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda o: groupnorm.group_norm(X, 3, out=o), ValueError, "num_groups = 3 does not divide channels = 4"),
        (lambda o: groupnorm.group_norm(X, 2, np.ones(3, np.float32), out=o), ValueError,
         "weight has 3 elements, expected 4"),
        (lambda o: groupnorm.group_norm(X, 2, None, np.ones(4), out=o), ValueError, "bias has dtype float64"),
        (lambda o: groupnorm.group_norm(X.astype(np.float64), 2, out=o), ValueError, "x has dtype float64"),
        (lambda o: groupnorm.group_norm(X.view(np.uint16), 2, out=o), ValueError, "dtype='bfloat16'"),
        (lambda o: groupnorm.group_norm(X[:, :, ::2], 2, out=o), ValueError, "numpy.ascontiguousarray"),
        (lambda o: groupnorm.group_norm(X, 2, outt=o), TypeError, "unexpected keyword argument 'outt'"),
        (lambda o: groupnorm.group_norm(X, 2.0, out=o), TypeError, "num_groups must be an integer"),
        (lambda o: groupnorm.group_norm(X, 2, layout="nwhc", out=o), ValueError, "layout = 'nwhc'"),
        (lambda o: groupnorm.group_norm(X, 2, activation="swish", out=o), ValueError, "activation = 'swish'"),
        (lambda o: groupnorm.group_norm(X, 2, out=o, return_sum=True), ValueError, "return_sum=True needs"),
        (lambda o: groupnorm.group_norm(X, 2, out=o, threads=0), ValueError, "threads = 0"),
        (lambda o: groupnorm.group_norm(X, 2, out=o, residual=X[:1]), ValueError, "residual has shape (1, 4, 3, 3)"),
        (lambda o: groupnorm.group_norm(X, 2, out=o[:1]), ValueError, "out has shape (1, 4, 3, 3)"),
        (lambda o: groupnorm.group_norm("x", 2, out=o), TypeError, "x must be an array"),
        (lambda o: groupnorm.group_norm(X, 2, eps=-1.0, out=o), ValueError, "epsilon = -1"),
        (lambda o: groupnorm.Plan(X.shape, 2)(X[0], out=o), ValueError, "x has shape (4, 3, 3), expected (2, 4, 3, 3)"),
        (lambda o: groupnorm.Plan(X.shape, 2, dtype="float16")(X, out=o), ValueError, "expected float16"),
        (lambda o: groupnorm.Plan(X.shape, 2, residual=True)(X, out=o), ValueError, "residual is missing"),
        (lambda o: groupnorm.Plan(X.shape, 2)(X, residual=X, out=o), ValueError, "residual given"),
        (lambda o: groupnorm.Plan(X.shape, 2)(X, wieght=None, out=o), TypeError, "unexpected keyword argument"),
        (lambda o: groupnorm.Plan(X.shape, 2)(X, None, None, None, out=o), TypeError, "at most 3 positional"),
        (lambda o: groupnorm.Plan((2, 4), 3), ValueError, "num_groups = 3 does not divide channels = 4"),
        (lambda o: groupnorm.Plan(X.shape, 2, dtype="float64"), ValueError, "dtype = 'float64'"),
    ],
)
def test_errors_name_the_argument_never_print_the_array_and_write_nothing(call, error, message):
    out = np.full_like(X, 7.0)
    with pytest.raises(error) as info:
        call(out)
    assert message in str(info.value)
    assert len(str(info.value)) < 400  # a message, not an array dump
    assert (out == 7.0).all()


def test_read_only_out_is_rejected():
    ro = np.empty_like(X)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out is read-only"):
        groupnorm.group_norm(X, 2, out=ro)


def test_threads_above_the_hardware_are_capped_without_a_warning(capfd):
    x = np.random.default_rng(5).standard_normal((1, 64, 64, 64)).astype(np.float32)
    y = groupnorm.group_norm(x, 8, threads=1)
    assert np.array_equal(bits(groupnorm.group_norm(x, 8, threads=4096)), bits(y))
    assert np.array_equal(bits(groupnorm.Plan(x.shape, 8)(x, threads=4096)), bits(y))
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""


def test_plan_describes_itself():
    p = groupnorm.Plan([2, 5, 7, 12], 3, 1e-3, layout="nhwc", dtype="bfloat16", activation="gelu", residual=True)
    assert p.shape == (2, 5, 7, 12) and p.num_groups == 3 and p.layout == "nhwc" and p.dtype == "bfloat16"
    assert p.activation == "gelu" and p.residual is True and abs(p.eps - 1e-3) < 1e-9
    assert repr(p) == ("groupnorm.Plan((2, 5, 7, 12), 3, eps=0.001, layout='nhwc', dtype='bfloat16', "
                       "activation='gelu', residual=True)")


def test_package_has_docs_stub_and_marker():
    import pydoc

    text = pydoc.render_doc(groupnorm, renderer=pydoc.plaintext)
    for name in ("group_norm", "Plan", "group_normalization", "return_stats"):
        assert name in text
    folder = os.path.dirname(groupnorm.__file__)
    assert os.path.exists(os.path.join(folder, "__init__.pyi")) and os.path.exists(os.path.join(folder, "py.typed"))
