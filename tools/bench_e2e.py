"""End-to-end benchmark: diffusion ResBlocks and a small VAE-decoder stack in PyTorch, run with PyTorch's
GroupNorm + SiLU and with groupnorm.torch's fused GroupNorm (after replace_group_norms), in inference mode.

For each case and thread count it prints the whole-model time of both and the time spent in GroupNorm + SiLU
inside the model (module hooks) with its share of the total: medians of interleaved repetitions, as wall time
and as process CPU time (the steadier figure on a shared machine: a preempted forward loses wall time, not CPU
time).

    PYTHONPATH=build/<dir>/python /usr/bin/python3 tools/bench_e2e.py [--threads 1,2] [--reps 7] [--cases ...]
"""
import argparse
import copy
import os
import statistics
import sys
import time

import torch
from torch import nn

from groupnorm.torch import replace_group_norms

# Modules whose time is "GroupNorm + SiLU": PyTorch's pair, and the library's GroupNorm (fused or not).
GN_SILU_MODULES = (nn.GroupNorm, nn.SiLU)


class ResBlock(nn.Module):
    """GN -> SiLU -> Conv3x3 -> GN -> SiLU -> Conv3x3, plus the skip (1x1 conv when channels change)."""

    def __init__(self, cin, cout, groups=32):
        super().__init__()
        self.in_layers = nn.Sequential(nn.GroupNorm(groups, cin), nn.SiLU(), nn.Conv2d(cin, cout, 3, padding=1))
        self.out_layers = nn.Sequential(nn.GroupNorm(groups, cout), nn.SiLU(), nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        return self.skip(x) + self.out_layers(self.in_layers(x))


def vae_decoder_stack(channels=128):
    """Two ResBlocks, a nearest 2x upsample with its conv, one more ResBlock, and the output GN/SiLU/conv."""
    return nn.Sequential(
        ResBlock(channels, channels),
        ResBlock(channels, channels),
        nn.Upsample(scale_factor=2.0, mode="nearest"),
        nn.Conv2d(channels, channels, 3, padding=1),
        ResBlock(channels, channels // 2),
        nn.GroupNorm(32, channels // 2),
        nn.SiLU(),
        nn.Conv2d(channels // 2, 3, 3, padding=1),
    )


CASES = {
    "resblock-320x64x64": (lambda: ResBlock(320, 320), (1, 320, 64, 64)),
    "resblock-256x128x128": (lambda: ResBlock(256, 256), (1, 256, 128, 128)),
    "vae-decoder-128x64x64": (vae_decoder_stack, (1, 128, 64, 64)),
}


def time_once(model, x):
    """(wall seconds, process CPU seconds) of one forward. On a shared machine the CPU time is the steadier
    figure: a preempted forward loses wall time but not CPU time."""
    wall, cpu = time.perf_counter(), time.process_time()
    model(x)
    return time.perf_counter() - wall, time.process_time() - cpu


def gn_silu_seconds(model, x):
    """(wall, process CPU) seconds spent inside GroupNorm and SiLU modules during one forward, from hooks."""
    spent = [0.0, 0.0]
    start = {}

    def before(module, args):
        start[module] = (time.perf_counter(), time.process_time())

    def after(module, args, output):
        wall, cpu = start.pop(module)
        spent[0] += time.perf_counter() - wall
        spent[1] += time.process_time() - cpu

    handles = []
    for m in model.modules():
        if isinstance(m, GN_SILU_MODULES):
            handles += [m.register_forward_pre_hook(before), m.register_forward_hook(after)]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return tuple(spent)


def run_case(name, threads, reps, channels_last):
    build, shape = CASES[name]
    torch.manual_seed(0)
    reference = build().eval()
    ours = replace_group_norms(copy.deepcopy(reference))
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    reference, ours = reference.to(memory_format=fmt), ours.to(memory_format=fmt)
    x = torch.randn(shape).to(memory_format=fmt)
    torch.set_num_threads(threads)
    with torch.inference_mode():
        # Agreement first: a benchmark of a wrong result is worthless. Outputs are O(1); float32 convolutions
        # over 320 x 9 inputs amplify the GroupNorm's ~1e-6 relative differences to ~1e-4 at most.
        error = (ours(x) - reference(x)).abs().max().item()
        assert error < 1e-3, f"{name}: outputs differ by {error}"
        times = {"torch": [], "groupnorm": []}
        for _ in range(reps):  # interleaved, so load drift hits both alike
            times["torch"].append(time_once(reference, x))
            times["groupnorm"].append(time_once(ours, x))
        parts = {"torch": [], "groupnorm": []}
        for _ in range(reps):
            parts["torch"].append(gn_silu_seconds(reference, x))
            parts["groupnorm"].append(gn_silu_seconds(ours, x))
    for clock, index in (("wall", 0), ("cpu", 1)):
        block = {k: statistics.median(t[index] for t in v) for k, v in times.items()}
        part = {k: statistics.median(t[index] for t in v) for k, v in parts.items()}
        print(
            f"{name:22s} {threads}t {clock:4s} | block torch {block['torch'] * 1e3:8.1f} ms"
            f"  groupnorm {block['groupnorm'] * 1e3:8.1f} ms  x{block['torch'] / block['groupnorm']:.3f}"
            f" | GN+SiLU torch {part['torch'] * 1e3:6.2f} ms ({100 * part['torch'] / block['torch']:4.1f}%)"
            f"  groupnorm {part['groupnorm'] * 1e3:6.2f} ms ({100 * part['groupnorm'] / block['groupnorm']:4.1f}%)"
            f"  x{part['torch'] / part['groupnorm']:.2f}",
            flush=True,
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2", help="comma-separated torch.set_num_threads values")
    parser.add_argument("--reps", type=int, default=7, help="timed repetitions per variant (median reported)")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of: " + ", ".join(CASES))
    parser.add_argument("--channels-last", action="store_true", help="run the models in channels_last")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, "
          f"{'channels_last' if args.channels_last else 'contiguous'}, median of {args.reps}")
    for name in args.cases.split(","):
        if name not in CASES:
            sys.exit(f"bench_e2e: unknown case {name!r}; expected one of {', '.join(CASES)}")
        for threads in (int(t) for t in args.threads.split(",")):
            run_case(name, threads, args.reps, args.channels_last)


if __name__ == "__main__":
    main()
