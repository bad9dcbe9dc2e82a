#!/usr/bin/env python3
"""Static instruction counts of the kernels' hot loops per 16-lane vector, for each kernel family (docs/arm.md):

    python3 tools/loop_counts.py [--x86 build/ci] [--arm build/aarch64]

For each kernel function (found by its demangled name in the family's objects), the innermost loops are the
backward branches whose range holds no other backward branch. Calls to loop-free functions of the same object
(helpers the compiler did not inline) add the callee's instructions once per call; other calls are reported.
The hot loop is the innermost one that loads (moments, backward) or stores (apply) the most data bytes (not the
stack, not rip-relative constants); its count is divided by the elements the source loop handles per iteration.
"""
import argparse
import glob
import re
import subprocess
import sys

NS = "groupnorm::detail::(anonymous namespace)::"
# (row, object prefix, alternatives (each a list of name fragments that must all appear), elements per iteration
#  of the source loop (16-lane vectors: lib/simd/wide.hpp kWidth), bytes that pick the loop: "load"/"store")
ROWS = [
    ("moments NCHW, f32", "kernels", [["::deviation_sums<1, " + NS + "source<float, false> >"]], 32, "load"),
    ("moments NHWC, f32", "kernels", [["::nhwc_dev_strip<4ul, " + NS + "source<float, false> >"],
                                      ["::nhwc_pass<" + NS + "source<float, false> >"],
                                      ["::nhwc_moments<float, false>("]], 64, "load"),
    ("apply NCHW, f32", "kernels", [["::apply<float, false, false, (groupnorm::activation)0>("]], 16, "store"),
    ("apply NHWC, f32", "kernels", [["::nhwc_apply_tile<float, false, false, (groupnorm::activation)0>("],
                                    ["::nhwc_apply<float, false, false, (groupnorm::activation)0>("]], 64, "store"),
    ("apply NCHW + SiLU, f32", "kernels", [["::apply<float, false, false, (groupnorm::activation)2>("]], 16, "store"),
    ("apply NCHW + GELU, f32", "kernels", [["::apply<float, false, false, (groupnorm::activation)3>("]], 16, "store"),
    ("apply NCHW, f16", "kernels", [["::apply<groupnorm::f16, false, false, (groupnorm::activation)0>("]], 16, "store"),
    ("apply NCHW, bf16", "kernels", [["::apply<groupnorm::bf16, false, false, (groupnorm::activation)0>("]], 16, "store"),
    ("backward sums NCHW, f32", "backward", [["::rows_sums<float, (groupnorm::activation)0>("],
                                             ["::row_sums<float, (groupnorm::activation)0>("]], 32, "load"),
]
FAMILIES = [("scalar", "x86"), ("avx2", "x86"), ("avx512", "x86"), ("neon", "arm"), ("scalar", "arm")]

X86_WIDTH = {"x": 16, "y": 32, "z": 64}
ARM_WIDTH = {"q": 16, "d": 8, "s": 4, "h": 2, "b": 1, "x": 8, "w": 4}


def functions(objdump, paths):
    """{demangled name: [(address, mnemonic, operands)]} of every function in the objects."""
    out = {}
    for path in paths:
        text = subprocess.run([objdump, "-d", "-C", "--no-show-raw-insn", path], capture_output=True,
                              text=True, check=True).stdout
        name = None
        for line in text.splitlines():
            head = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
            if head:
                name = head.group(1)
                out.setdefault(name, [])
                continue
            ins = re.match(r"^\s+([0-9a-f]+):\s+(\S+)\s*([^<#]*)(?:<(.*)>)?", line)
            if name and ins:
                ops = ins.group(3).strip()
                if ins.group(2) in ("call", "bl") and ins.group(4):
                    ops = "<" + ins.group(4) + ">"  # the callee, for call_cost
                out[name].append((int(ins.group(1), 16), ins.group(2), ops))
    return out


def innermost_loops(body):
    """[(start, end)] index ranges closed by a backward branch, holding no other one."""
    index = {a: i for i, (a, _, _) in enumerate(body)}
    loops = []
    for i, (addr, mnem, ops) in enumerate(body):
        target = re.match(r"^([0-9a-f]+)\b", ops.split(",")[-1].strip())
        if (mnem.startswith("j") or mnem.startswith("b") or mnem in ("cbz", "cbnz", "tbz", "tbnz")) and target:
            t = int(target.group(1), 16)
            if t <= addr and t in index:
                loops.append((index[t], i))
    return [(s, e) for s, e in loops if not any(s <= s2 and e2 <= e and (s2, e2) != (s, e) for s2, e2 in loops)]


def expand(funcs, body, depth=3):
    """The loop's instructions with those of the loop-free functions it calls, once per call (the compiler's
    out-of-line helpers: loads, conversions, activations); and the count of calls it cannot follow."""
    out, unknown = [], 0
    for ins in body:
        out.append(ins)
        if ins[1] not in ("call", "bl"):
            continue
        callee = funcs.get(ins[2].strip("<>"))
        if callee and depth and not innermost_loops(callee):
            more, u = expand(funcs, callee, depth - 1)
            out += more
            unknown += u
        else:
            unknown += 1
    return out, unknown


def memory_bytes(arch, mnem, ops, kind):
    """Bytes an instruction loads or stores (kind) from a data stream; 0 for stack, constants, other kinds."""
    if arch == "x86":
        parts = re.split(r",(?![^(]*\))", ops)
        if not any("(" in p for p in parts) or "%rip" in ops or "%rsp" in ops or "%rbp" in ops:
            return 0
        store = "(" in parts[-1]
        if store != (kind == "store") or mnem.startswith(("vbroadcast", "vpbroadcast", "prefetch", "lea", "cmp")):
            return 0
        reg = parts[0] if store else parts[-1]
        if mnem.endswith("ss") or mnem == "vmovd":
            return 4
        m = re.search(r"%([xyz])mm", reg)
        if m:
            half = mnem in ("vcvtph2ps", "vcvtps2ph", "vpmovzxwd", "vpmovsxwd", "vpmovdw", "vextracti128",
                            "vextractf128", "vextracti32x8", "vextractf32x8")
            return X86_WIDTH[m.group(1)] // (2 if half else 1)
        m = re.search(r"%(\w+)", reg)
        return {"ax": 2, "bx": 2, "cx": 2, "dx": 2, "si": 2, "di": 2}.get(m.group(1), 0) if m else 0
    if "[sp" in ops or not mnem.startswith("st" if kind == "store" else "ld"):
        return 0
    regs = re.findall(r"\b([qdshbxw])\d+\b", ops.split("[")[0])
    m = re.search(r"v\d+\.(\d+)([bhsd])", ops)
    if m:  # ld1 {v0.4s}: lanes x lane size per register
        return len(re.findall(r"v\d+\.", ops.split("[")[0])) * int(m.group(1)) * {"b": 1, "h": 2, "s": 4, "d": 8}[m.group(2)]
    if mnem in ("ldrh", "strh", "ldurh", "sturh"):
        return 2 * len(regs)
    return sum(ARM_WIDTH[r] for r in regs if r not in "xw")  # general registers: pointers and counters


def moved(arch, ins, kind):
    return sum(memory_bytes(arch, m, o, kind) for _, m, o in ins)


def hot_loop(arch, funcs, body, kind):
    """The innermost loop moving the most bytes of the streams (the main body, not a tail), expanded; then the
    shortest."""
    loops = [expand(funcs, body[s:e + 1]) for s, e in innermost_loops(body)]
    return max(loops, key=lambda lu: (moved(arch, lu[0], kind), -len(lu[0])), default=None)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--x86", default="build/ci", help="x86 build directory")
    ap.add_argument("--arm", default="build/aarch64", help="aarch64 build directory")
    a = ap.parse_args()
    tools = {"x86": ("objdump", a.x86), "arm": ("aarch64-linux-gnu-objdump", a.arm)}
    columns = [f"{f} ({arch})" for f, arch in FAMILIES]
    print("| hot loop | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    cache = {}
    for row, prefix, fragments, elements, kind in ROWS:
        cells = []
        for family, arch in FAMILIES:
            objdump, build = tools[arch]
            key = (arch, prefix, family)
            if key not in cache:
                paths = glob.glob(f"{build}/lib/**/{prefix}_{family}*.o", recursive=True)
                cache[key] = functions(objdump, paths) if paths else {}
            funcs = cache[key]
            # The loop may sit in the function or in a helper the compiler did not inline: the best of them.
            loops = [hot_loop(arch, funcs, body, kind) for n, body in funcs.items()
                     if any(all(f in n for f in alt) for alt in fragments)]
            loops = [lu for lu in loops if lu is not None]
            if not loops:
                cells.append("n/a")
                continue
            ins, unknown = max(loops, key=lambda lu: (moved(arch, lu[0], kind), -len(lu[0])))
            note = f" +{unknown} calls" if unknown else ""
            cells.append(f"{len(ins) * 16 / elements:.0f}{note}")
        print(f"| {row} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
