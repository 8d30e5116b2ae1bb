#!/usr/bin/env python3
"""Prints the medians of the last criterion run (ns per message) and the
ratios the core issue's targets are stated in.

    cargo bench --manifest-path benches/Cargo.toml
    python3 benches/summary.py
"""
import glob
import json
import os

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "target", "criterion")


def median(*bench):
    path = os.path.join(ROOT, *bench, "new", "estimates.json")
    try:
        with open(path) as f:
            return json.load(f)["median"]["point_estimate"]
    except OSError:
        return None


paths = glob.glob(os.path.join(ROOT, "*", "new", "estimates.json"))
paths += glob.glob(os.path.join(ROOT, "*", "*", "new", "estimates.json"))
for path in sorted(paths):
    bench = os.path.relpath(os.path.dirname(os.path.dirname(path)), ROOT).split(os.sep)
    print(f"{'/'.join(bench):48} {median(*bench):10.1f} ns")


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


print()
print(f"CPU: {cpu_model()}, {os.cpu_count()} logical CPUs")
print()
RATIOS = [
    ("SPSC 64 B: rtrb / psyne copy (target >= 1.5)", ("spsc_64B", "rtrb_push_pop"), ("spsc_64B", "psyne_copy")),
    ("SPSC 64 B: crossbeam-channel / psyne copy (target >= 3)", ("spsc_64B", "crossbeam_channel_bounded"), ("spsc_64B", "psyne_copy")),
    ("SPSC 4 KiB: rtrb chunk / psyne reserve (target >= 1.2)", ("spsc_4KiB", "rtrb_chunk"), ("spsc_4KiB", "psyne_reserve")),
    ("ping-pong: rtrb / psyne (target >= 1)", ("pingpong_64B_rtrb",), ("pingpong_64B_psyne",)),
    ("MPMC 2x2: ArrayQueue / psyne (target >= 1)", ("mpmc_2x2_64B", "crossbeam_array_queue"), ("mpmc_2x2_64B", "psyne")),
    # The C face (c/bench_c.c through include/psyne.h).
    ("C: SPSC 64 B: rtrb / C side reserve", ("spsc_64B", "rtrb_push_pop"), ("spsc_64B", "c_side_reserve")),
    ("C: SPSC 64 B: rtrb / C side copy", ("spsc_64B", "rtrb_push_pop"), ("spsc_64B", "c_side_copy")),
    ("C: SPSC 64 B: Rust reserve / C side reserve", ("spsc_64B", "psyne_reserve"), ("spsc_64B", "c_side_reserve")),
    ("C: SPSC 64 B: C side copy / C side fused", ("spsc_64B", "c_side_copy"), ("spsc_64B", "c_side_fused")),
    ("C: SPSC 64 B: C channel reserve / C side reserve", ("spsc_64B", "c_channel_reserve"), ("spsc_64B", "c_side_reserve")),
    ("C: SPSC 4 KiB: rtrb chunk / C side reserve", ("spsc_4KiB", "rtrb_chunk"), ("spsc_4KiB", "c_side_reserve")),
    ("C: ping-pong: Rust psyne / C side copy (target >= 1/1.1 = 0.91)", ("pingpong_64B_psyne",), ("pingpong_64B_c_side_copy",)),
    ("C: ping-pong: Rust psyne / C side reserve", ("pingpong_64B_psyne",), ("pingpong_64B_c_side_reserve",)),
    ("C: ping-pong: Rust psyne / C side fused", ("pingpong_64B_psyne",), ("pingpong_64B_c_side_fused",)),
    ("C: ping-pong: rtrb / C side copy", ("pingpong_64B_rtrb",), ("pingpong_64B_c_side_copy",)),
]
for label, peer, ours in RATIOS:
    a, b = median(*peer), median(*ours)
    if a and b:
        print(f"{label:58} {a / b:5.2f}x")
