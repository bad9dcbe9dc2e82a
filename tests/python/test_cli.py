"""`groupnorm run` on files written and read by NumPy itself (np.save / np.load), under ctest.

GROUPNORM_TOOL names the groupnorm executable; the module tests share the same core, so the CLI and the module
must agree bit for bit.
"""
import os
import subprocess

import numpy as np
import pytest

import groupnorm

TOOL = os.environ.get("GROUPNORM_TOOL")
pytestmark = pytest.mark.skipif(not TOOL, reason="GROUPNORM_TOOL is not set")


def run(*args):
    return subprocess.run([TOOL, "run", *map(str, args)], capture_output=True, text=True)


def reference(X, gamma, beta, num_groups, epsilon=1e-5):
    X = np.asarray(X, dtype=np.float64)
    g = X.reshape(X.shape[0], num_groups, -1)
    y = ((g - g.mean(axis=2, keepdims=True)) / np.sqrt(g.var(axis=2, keepdims=True) + epsilon)).reshape(X.shape)
    bshape = (1, X.shape[1]) + (1,) * (X.ndim - 2)
    return y * np.asarray(gamma, np.float64).reshape(bshape) + np.asarray(beta, np.float64).reshape(bshape)


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(123)
    X = (rng.standard_normal((2, 32, 20, 20)) * 2 - 1).astype(np.float32)
    gamma = rng.standard_normal(32).astype(np.float32)
    beta = rng.standard_normal(32).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "gamma.npy", gamma)
    np.save(tmp_path / "beta.npy", beta)
    return tmp_path, X, gamma, beta


def test_round_trip_matches_reference_and_module(data):
    d, X, gamma, beta = data
    r = run("--x", d / "x.npy", "--gamma", d / "gamma.npy", "--beta", d / "beta.npy", "--groups", 8,
            "--out", d / "y.npy")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    Y = np.load(d / "y.npy")
    assert Y.dtype == np.float32 and Y.shape == X.shape
    np.testing.assert_allclose(Y, reference(X, gamma, beta, 8), rtol=0, atol=1e-5)
    assert np.array_equal(Y.view(np.uint32), groupnorm.group_normalization(X, gamma, beta, 8).view(np.uint32))
    # The file is exactly what np.save writes for the same array.
    np.save(d / "resaved.npy", Y)
    assert (d / "y.npy").read_bytes() == (d / "resaved.npy").read_bytes()


def test_format_2_input(data):
    d, X, gamma, beta = data
    with open(d / "x2.npy", "wb") as f:
        np.lib.format.write_array(f, X, version=(2, 0))
    assert run("--x", d / "x2.npy", "--groups", 4, "--out", d / "y2.npy").returncode == 0
    assert run("--x", d / "x.npy", "--groups", 4, "--out", d / "y1.npy").returncode == 0
    assert (d / "y1.npy").read_bytes() == (d / "y2.npy").read_bytes()


def test_float16_and_bfloat16_bits(data):
    d, X, gamma, beta = data
    np.save(d / "xh.npy", X.astype(np.float16))
    assert run("--x", d / "xh.npy", "--groups", 8, "--out", d / "yh.npy").returncode == 0
    Yh = np.load(d / "yh.npy")
    assert Yh.dtype == np.float16
    np.testing.assert_array_equal(Yh.view(np.uint16),
                                  groupnorm.group_normalization(X.astype(np.float16), None, None, 8).view(np.uint16))

    # bfloat16 as raw uint16 bits (truncation of float32 is exact for values with 8 significant bits).
    xb = (X.view(np.uint32) >> 16).astype(np.uint16)
    np.save(d / "xb.npy", xb)
    r = run("--x", d / "xb.npy", "--groups", 8, "--out", d / "yb.npy")
    assert r.returncode == 0, r.stderr
    yb = np.load(d / "yb.npy")
    assert yb.dtype == np.uint16
    as_f32 = lambda b: (b.astype(np.uint32) << 16).view(np.float32)
    np.testing.assert_allclose(as_f32(yb), reference(as_f32(xb), np.ones(32), np.zeros(32), 8), rtol=1e-2, atol=1e-2)


def test_stats_npz_loads_in_numpy(data):
    d, X, gamma, beta = data
    r = run("--x", d / "x.npy", "--groups", 4, "--out", d / "y.npy", "--stats", d / "s.npz", "--mean", d / "m.npy")
    assert r.returncode == 0, r.stderr
    with np.load(d / "s.npz") as z:
        assert sorted(z.files) == ["mean", "rstd"]
        mean, rstd = z["mean"], z["rstd"]
    g = X.astype(np.float64).reshape(2, 4, -1)
    np.testing.assert_allclose(mean, g.mean(axis=2), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(rstd, 1 / np.sqrt(g.var(axis=2) + 1e-5), rtol=1e-5)
    assert np.array_equal(np.load(d / "m.npy"), mean)


def test_threads_do_not_change_the_file(data):
    d, X, gamma, beta = data
    outs = []
    for t in (1, 2, 4):
        assert run("--x", d / "x.npy", "--groups", 1, "--threads", t, "--out", d / f"y{t}.npy").returncode == 0
        outs.append((d / f"y{t}.npy").read_bytes())
    assert outs[0] == outs[1] == outs[2]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda X: np.asfortranarray(X), "Fortran-ordered"),
        (lambda X: X.astype(">f4"), "big-endian"),
        (lambda X: X.astype(np.float64), "unsupported dtype '<f8'"),
        (lambda X: X[0, 0, 0], "expected rank >= 2"),
    ],
)
def test_numpy_files_the_reader_rejects(data, make, message):
    d, X, gamma, beta = data
    np.save(d / "bad.npy", make(X))
    r = run("--x", d / "bad.npy", "--groups", 4, "--out", d / "y.npy")
    assert r.returncode == 2
    assert message in r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("groupnorm run: ")
    assert not (d / "y.npy").exists()
    assert not [p for p in os.listdir(d) if ".tmp-" in p]


def test_wrong_gamma_length(data):
    d, X, gamma, beta = data
    np.save(d / "g5.npy", gamma[:5])
    r = run("--x", d / "x.npy", "--gamma", d / "g5.npy", "--groups", 4, "--out", d / "y.npy")
    assert r.returncode == 2 and "gamma has shape (5,), expected (32,)" in r.stderr
    assert not (d / "y.npy").exists()
