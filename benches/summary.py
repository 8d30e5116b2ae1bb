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

print()
RATIOS = [
    ("SPSC 64 B: rtrb / psyne copy (target >= 1.5)", ("spsc_64B", "rtrb_push_pop"), ("spsc_64B", "psyne_copy")),
    ("SPSC 64 B: crossbeam-channel / psyne copy (target >= 3)", ("spsc_64B", "crossbeam_channel_bounded"), ("spsc_64B", "psyne_copy")),
    ("SPSC 4 KiB: rtrb chunk / psyne reserve (target >= 1.2)", ("spsc_4KiB", "rtrb_chunk"), ("spsc_4KiB", "psyne_reserve")),
    ("ping-pong: rtrb / psyne (target >= 1)", ("pingpong_64B_rtrb",), ("pingpong_64B_psyne",)),
    ("MPMC 2x2: ArrayQueue / psyne (target >= 1)", ("mpmc_2x2_64B", "crossbeam_array_queue"), ("mpmc_2x2_64B", "psyne")),
]
for label, peer, ours in RATIOS:
    a, b = median(*peer), median(*ours)
    if a and b:
        print(f"{label:58} {a / b:5.2f}x")
