#!/usr/bin/env python3
"""Per-call time of the groupnorm Python entry points, beside torch.nn.functional.group_norm when torch is
importable, with the budgets of the Python surface:

    PYTHONPATH=build/ci/python /usr/bin/python3 tools/bench_python.py [--shape B,C,H,W,G] [--threads N]

Each figure is the median over --repeats samples of the mean time of a loop of calls sized to last >= 2 ms.
"""
import argparse
import sys
import timeit

import numpy as np

import groupnorm

BUDGETS_US = {"group_norm(out=)": 2.0, "Plan call (out=)": 1.5}


def per_call_us(fn, repeats):
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()  # loops of >= 0.2 s
    number = max(1, number // 100)  # ~2 ms samples, many of them
    samples = timer.repeat(repeat=repeats, number=number)
    return float(np.median(samples)) / number * 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="1,32,8,8,8", help="B,C,H,W,G (default: the tiny shape 1,32,8,8,8)")
    ap.add_argument("--threads", type=int, default=None, help="threads= of the groupnorm calls (default: all)")
    ap.add_argument("--repeats", type=int, default=101, help="samples per figure (default 101)")
    a = ap.parse_args()
    b, c, h, w, g = (int(v) for v in a.shape.split(","))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((b, c, h, w)).astype(np.float32)
    weight = rng.uniform(0.5, 1.5, c).astype(np.float32)
    bias = rng.uniform(-1, 1, c).astype(np.float32)
    y = np.empty_like(x)
    plan = groupnorm.Plan(x.shape, g)
    t = a.threads

    rows = [
        ("group_norm(out=)", lambda: groupnorm.group_norm(x, g, weight, bias, out=y, threads=t)),
        ("group_norm", lambda: groupnorm.group_norm(x, g, weight, bias, threads=t)),
        ("Plan call (out=)", lambda: plan(x, weight, bias, out=y, threads=t)),
        ("group_normalization", lambda: groupnorm.group_normalization(x, weight, bias, g, threads=t)),
    ]
    try:
        import torch
        import torch.nn.functional as F

        xt, wt, bt = torch.from_numpy(x), torch.from_numpy(weight), torch.from_numpy(bias)
        yt = torch.empty_like(xt)
        if t is not None:
            torch.set_num_threads(t)
        rows.append(("torch F.group_norm", lambda: F.group_norm(xt, g, wt, bt)))
        rows.append(("group_norm(torch, out=)", lambda: groupnorm.group_norm(xt, g, wt, bt, out=yt, threads=t)))
    except ImportError:
        print("torch not importable: PyTorch rows skipped")

    print(f"shape {b}x{c}x{h}x{w} G={g}, threads={t or 'all'}, groupnorm {groupnorm.__version__}")
    failed = False
    for name, fn in rows:
        us = per_call_us(fn, a.repeats)
        budget = BUDGETS_US.get(name)
        verdict = ""
        if budget is not None:
            verdict = f"   budget {budget:.2f} us: {'met' if us <= budget else 'NOT MET'}"
            failed |= us > budget
        print(f"{name:<26} {us:9.3f} us{verdict}")
    return 0 if not failed else 3


if __name__ == "__main__":
    sys.exit(main())
