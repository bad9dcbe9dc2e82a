#!/usr/bin/python3
"""PyTorch's CPU GroupNorm backward on the `groupnorm bench` suite: the peer of `groupnorm bench --direction
backward`.

Times aten::native_group_norm_backward (dx, dgamma, dbeta from the saved mean and rstd: exactly the work of
plan::run_backward with saved statistics) at each thread count, median of interleaved samples, float32 NCHW.
With --groupnorm BINARY, also runs `BINARY bench --direction backward` on the same shapes and prints the
speed-up per shape, and torch's time over the bench's copy floor: the speed-up a backward running at the
floor would have, the most any implementation can reach on the machine. Needs /usr/bin/python3 with torch
(Debian's python3-torch).
"""
import argparse
import json
import math
import statistics
import subprocess
import time

import torch

SUITE = [
    ("sd_unet_64x64_c320", 1, 320, 64, 64, 32),
    ("sd_unet_32x32_c640", 1, 640, 32, 32, 32),
    ("sd_unet_16x16_c1280", 1, 1280, 16, 16, 32),
    ("sd_unet_8x8_c1280_b2", 2, 1280, 8, 8, 32),
    ("sd_vae_256x256_c256", 1, 256, 256, 256, 32),
    ("det_fpn_b2_c256_100x152", 2, 256, 100, 152, 32),
    ("layernorm_g1_b1_c64_128x128", 1, 64, 128, 128, 1),
    ("instnorm_gC_b4_c64_56x56", 4, 64, 56, 56, 64),
    ("tiny_b1_c32_8x8", 1, 32, 8, 8, 8),
]


def time_torch(b, c, h, w, g, threads, seconds):
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(42)
    x = torch.randn(b, c, h, w, generator=gen) * 2 + 0.5
    dy = torch.randn(b, c, h, w, generator=gen)
    gamma = 1 + 0.1 * torch.randn(c, generator=gen)
    beta = 0.1 * torch.randn(c, generator=gen)
    _, mean, rstd = torch.ops.aten.native_group_norm(x, gamma, beta, b, c, h * w, g, 1e-5)

    def run():
        torch.ops.aten.native_group_norm_backward(dy, x, mean, rstd, gamma, b, c, h * w, g, [True, True, True])

    for _ in range(3):
        run()
    k = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(k):
            run()
        if time.perf_counter() - t0 >= 50e-6 or k >= 1 << 20:
            break
        k *= 2
    samples = []
    start = time.perf_counter()
    while len(samples) < 7 or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        for _ in range(k):
            run()
        samples.append((time.perf_counter() - t0) / k)
    return statistics.median(samples)


def time_groupnorm(binary, shape, threads, seconds):
    name, b, c, h, w, g = shape
    out = subprocess.run(
        [binary, "bench", "--direction", "backward", "--shape", f"{b},{c},{h},{w},{g}", "--threads", str(threads),
         "--seconds", str(seconds), "--json", "/dev/stdout"],
        check=True, capture_output=True, text=True).stdout
    rows, _ = json.JSONDecoder().raw_decode(out[out.index("["):])  # the geomean line may follow
    return rows[0]["median_us"] * 1e-6, rows[0]["floor_median_us"] * 1e-6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, action="append", help="thread counts (default 1 and 2)")
    parser.add_argument("--seconds", type=float, default=0.25, help="sampling time per row")
    parser.add_argument("--groupnorm", help="path of the groupnorm tool, to print the speed-up")
    args = parser.parse_args()
    threads = args.threads or [1, 2]
    print(f"torch {torch.__version__}")
    print(f"{'shape':30s} {'thr':>4s} {'torch_us':>10s}" +
          (f" {'groupnorm_us':>13s} {'speedup':>8s} {'floor_us':>10s} {'torch/floor':>11s}" if args.groupnorm else ""))
    for t in threads:
        logs, bound_logs = [], []
        for shape in SUITE:
            theirs = time_torch(*shape[1:], t, args.seconds)
            line = f"{shape[0]:30s} {t:4d} {theirs * 1e6:10.2f}"
            if args.groupnorm:
                ours, floor = time_groupnorm(args.groupnorm, shape, t, args.seconds)
                logs.append(math.log(theirs / ours))
                bound_logs.append(math.log(theirs / floor))
                line += f" {ours * 1e6:13.2f} {theirs / ours:8.2f} {floor * 1e6:10.2f} {theirs / floor:11.2f}"
            print(line, flush=True)
        if logs:
            plural = "s" if t > 1 else ""
            print(f"geomean speed-up over torch at {t} thread{plural}: {math.exp(sum(logs) / len(logs)):.2f}")
            # torch / floor: the speed-up of a backward that ran at the copy floor, the most any kernel can gain.
            print(f"geomean torch / copy floor at {t} thread{plural}: "
                  f"{math.exp(sum(bound_logs) / len(bound_logs)):.2f}")


if __name__ == "__main__":
    main()
