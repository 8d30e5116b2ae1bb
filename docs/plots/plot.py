#!/usr/bin/env python3
"""Plots of `psyne bench --json`: throughput against message size per
transport, and round-trip latency percentiles, psyne beside its baseline.

    for i in 1 2 3; do target/release/psyne bench --json > docs/plots/bench-$i.json; done
    python3 -m venv /tmp/plotvenv && /tmp/plotvenv/bin/pip install matplotlib
    /tmp/plotvenv/bin/python docs/plots/plot.py docs/plots docs/plots/bench-*.json

writes throughput.svg and latency.svg into the output directory (the first
argument), and prints the Markdown table docs/PERFORMANCE.md shows. With
several runs, every figure is the median of the runs, and the table gives
the range of the psyne/baseline ratio over the runs.
"""
import json
import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: small, searchable files
import matplotlib.pyplot as plt  # noqa: E402

MODES = ["SPSC", "MPMC"]
COLORS = {"psyne": "#1f77b4", "baseline": "#d62728"}


def size_name(n):
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20} MiB"
    if n >= 1024 and n % 1024 == 0:
        return f"{n >> 10} KiB"
    return f"{n} B"


def key(r):
    return (r["transport"], r["mode"], r["size"], r["role"])


def merge(runs):
    """One row per cell and role: medians over the runs where it ran, and
    the psyne/baseline ratio of each run (on psyne rows, `ratios`)."""
    rows = []
    for first in runs[0]["rows"]:
        same = [r for run in runs for r in run["rows"] if key(r) == key(first)]
        ok = [r for r in same if r["status"] == "ok"]
        row = dict(first)
        if ok:
            row["status"] = "ok"
            for f in ("messages_per_sec", "bytes_per_sec"):
                row[f] = statistics.median(r[f] for r in ok)
            row["round_trip"] = {q: statistics.median(r["round_trip"][q] for r in ok)
                                 for q in ("p50_ns", "p99_ns", "p999_ns")}
        rows.append(row)
    for p in rows:
        if p["role"] != "psyne":
            continue
        ratios = []
        for run in runs:
            by = {key(r): r for r in run["rows"]}
            a, b = by.get(key(p)), by.get(key(p)[:3] + ("baseline",))
            if a and b and a["status"] == b["status"] == "ok":
                ratios.append(a["messages_per_sec"] / b["messages_per_sec"])
        p["ratios"] = ratios
    return rows


def load(paths):
    runs = [json.loads(Path(p).read_text()) for p in paths]
    report = dict(runs[0])
    report["runs"] = len(runs)
    loads = [x for r in runs for x in r.get("load_average", [])]
    report["load_average"] = [min(loads), max(loads)] if loads else [float("nan")] * 2
    rows = merge(runs)
    transports = list(dict.fromkeys(r["transport"] for r in rows))
    sizes = sorted({r["size"] for r in rows})
    return report, rows, transports, sizes


def series(rows, transport, mode, role, key):
    pts = []
    for r in rows:
        if (r["transport"], r["mode"], r["role"]) != (transport, mode, role):
            continue
        if r["status"] != "ok":
            continue
        pts.append((r["size"], key(r)))
    pts.sort()
    return [p[0] for p in pts], [p[1] for p in pts]


def baseline_name(rows, transport, mode):
    for r in rows:
        if (r["transport"], r["mode"], r["role"]) == (transport, mode, "baseline"):
            return r["system"]
    return "baseline"


def unsupported(rows, transport):
    return any(r["transport"] == transport and r["role"] == "psyne"
               and r["status"] == "unsupported" for r in rows)


def subtitle(report):
    load = report["load_average"]
    runs = f", median of {report['runs']} runs" if report["runs"] > 1 else ""
    return (f"{report['cpu']}, {report['cpus']} CPUs, load average {load[0]:.1f}–{load[1]:.1f}, "
            f"psyne {report['psyne_version']}{runs}"
            + (" (--quick)" if report["quick"] else ""))


def throughput_plot(report, rows, transports, sizes, out):
    fig, axes = plt.subplots(1, len(transports), figsize=(4 * len(transports), 4), squeeze=False)
    for ax, t in zip(axes[0], transports):
        for mode, style in zip(MODES, ["-", "--"]):
            for role in ["psyne", "baseline"]:
                x, y = series(rows, t, mode, role, lambda r: r["bytes_per_sec"] / 1e9)
                if not x:
                    continue
                label = f"{'psyne' if role == 'psyne' else baseline_name(rows, t, mode)} {mode}"
                ax.plot(x, y, style, marker="o", color=COLORS[role], label=label)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(sizes, [size_name(s) for s in sizes])
        ax.set_title(f"{t}://" + (" (psyne: unsupported)" if unsupported(rows, t) else ""))
        ax.set_xlabel("message size")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("throughput, GB/s (payload)")
    fig.suptitle(f"Throughput against message size — {subtitle(report)}", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "throughput.svg")


def latency_plot(report, rows, transports, sizes, out):
    fig, axes = plt.subplots(len(MODES), len(transports),
                             figsize=(4 * len(transports), 3.6 * len(MODES)), squeeze=False)
    for i, mode in enumerate(MODES):
        for ax, t in zip(axes[i], transports):
            for role in ["psyne", "baseline"]:
                for q, style in [("p50_ns", "-"), ("p99_ns", "--"), ("p999_ns", ":")]:
                    x, y = series(rows, t, mode, role, lambda r, q=q: r["round_trip"][q] / 1e3)
                    if not x:
                        continue
                    name = "psyne" if role == "psyne" else baseline_name(rows, t, mode)
                    ax.plot(x, y, style, marker=".", color=COLORS[role],
                            label=f"{name} {q[:-3].replace('p999', 'p99.9')}")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xticks(sizes, [size_name(s) for s in sizes])
            ax.set_title(f"{t}:// {mode}" + (" (psyne: unsupported)" if unsupported(rows, t) else ""),
                         fontsize=9)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=6)
        axes[i][0].set_ylabel("round trip, µs")
    fig.suptitle(f"Ping-pong round-trip latency percentiles — {subtitle(report)}", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "latency.svg")


def fmt_rate(r):
    if r["status"] != "ok":
        return r["status"]
    m, b = r["messages_per_sec"], r["bytes_per_sec"]
    mm = f"{m / 1e6:.2f} M" if m >= 1e6 else f"{m / 1e3:.1f} k"
    return f"{mm}/s, {b / 1e9:.2f} GB/s"


def fmt_lat(r):
    if r["status"] != "ok":
        return r["status"]
    lt = r["round_trip"]
    return " / ".join(f"{lt[k] / 1e3:.1f}" if lt[k] >= 10_000 else f"{lt[k] / 1e3:.2f}"
                      for k in ("p50_ns", "p99_ns", "p999_ns"))


def tables(rows):
    head = ("| transport | mode | size | psyne | baseline | baseline | psyne / baseline (range) "
            "| psyne RTT p50 / p99 / p99.9 µs | baseline RTT p50 / p99 / p99.9 µs |\n"
            "|---|---|---|---:|---|---:|---:|---:|---:|")
    lines = [head]
    for p, b in zip(rows[0::2], rows[1::2]):
        ratio = "–"
        if p["status"] == "ok" and b["status"] == "ok":
            ratio = f"{p['messages_per_sec'] / b['messages_per_sec']:.2f}×"
            if len(p["ratios"]) > 1:
                ratio += f" ({min(p['ratios']):.2f}–{max(p['ratios']):.2f})"
        lines.append(f"| {p['transport']} | {p['mode']} {p['threads']} | {size_name(p['size'])} "
                     f"| {fmt_rate(p)} | {b['system']} | {fmt_rate(b)} | {ratio} "
                     f"| {fmt_lat(p)} | {fmt_lat(b)} |")
    return "\n".join(lines)


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: plot.py OUTDIR BENCH.json [BENCH.json ...]")
    report, rows, transports, sizes = load(sys.argv[2:])
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    throughput_plot(report, rows, transports, sizes, out)
    latency_plot(report, rows, transports, sizes, out)
    print(tables(rows))


if __name__ == "__main__":
    main()
