"""Frames between two Python processes: psyne ipc:// beside the alternatives
a Python user has on one host.

    python bindings/python/benches/bench_ipc.py           # full run (a minute or two)
    python bindings/python/benches/bench_ipc.py --quick   # a few seconds, for the test suite

For each frame size (64 B and 1 MiB numpy float64 frames) a producer process
sends N frames to a consumer process, which either only takes each message
("message": what the transport sustains into Python), or makes it a new numpy
array ("new numpy array": np.frombuffer per frame; multiprocessing.Queue
always yields one), or copies it into one preallocated array ("into one numpy
array": recv_into, for fixed-size frames). Throughput is measured by the consumer from
the first to the last of N frames, after a warm-up. Every contender runs in
the same invocation, one after the other:

- psyne send/recv: ``ch.send(arr)``; ``np.frombuffer(ch.recv()[0])``
- psyne zero-copy: ``ch.reserve`` + fill; ``ch.recv_view`` + ``np.frombuffer``
- multiprocessing.Queue: ``q.put(arr)``; ``q.get()``
- shared_memory + pipe: frames in a shared-memory ring of slots; "slot
  filled" and "slot free" signals over two multiprocessing pipes
- pyzmq PUSH/PULL over ipc:// (copy=False for large frames, as pyzmq advises)

Prints a Markdown table. Figures vary with the machine and its load: compare
rows of one run, not runs.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from multiprocessing import shared_memory

import numpy as np

import psyne

TYPE_FRAME = 1


def frame_of(size: int) -> np.ndarray:
    return np.arange(size // 8, dtype=np.float64)


# ---- producers (run in a spawned process) -------------------------------------


def psyne_copy_producer(uri, ring, size, total, ready):
    arr = frame_of(size)
    with psyne.Channel(uri, ring) as ch:
        ready.wait()
        send = ch.send
        for _ in range(total):
            send(arr, TYPE_FRAME)


def psyne_zero_copy_producer(uri, ring, size, total, ready):
    arr = frame_of(size)
    with psyne.Channel(uri, ring) as ch:
        ready.wait()
        for _ in range(total):
            slot = ch.reserve(size)
            np.frombuffer(slot, dtype=np.float64)[:] = arr
            slot.send(TYPE_FRAME)


def queue_producer(q, size, total, ready):
    arr = frame_of(size)
    ready.wait()
    for _ in range(total):
        q.put(arr)


def shm_producer(shm_name, slots, size, total, full, free, ready):
    shm = shared_memory.SharedMemory(name=shm_name)
    arr = frame_of(size)
    ring = np.ndarray((slots, size // 8), dtype=np.float64, buffer=shm.buf)
    ready.wait()
    credits = slots
    for i in range(total):
        if credits == 0:
            free.recv_bytes()  # the consumer freed a slot
            credits += 1
        ring[i % slots] = arr
        full.send_bytes(b"\x01")
        credits -= 1
    del ring
    shm.close()


def zmq_producer(addr, size, total, ready, done):
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.connect(addr)
    arr = frame_of(size)
    copy = size < 65536
    ready.wait()
    for _ in range(total):
        sock.send(arr, copy=copy)
    # Closing at once lost the last few thousand small messages here (with
    # linger=-1 too): keep the socket until the consumer has them all.
    done.wait()
    sock.close(linger=-1)
    ctx.term()


# ---- consumers (this process) ---------------------------------------------------


def timed(total, warmup, step):
    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(total - warmup):
        step()
    return time.perf_counter() - t0


def check(arr, size):
    assert arr.nbytes == size, (arr.nbytes, size)  # noqa: S101  (cheap, keeps the work honest)


# What the consumer does with each frame: "message" takes it (what the
# transport sustains into Python), "numpy" makes it a numpy array (a new one
# per frame, as np.frombuffer does), "into" copies it into one preallocated
# numpy array (recv_into, for fixed-size frames).
CONSUMER = "numpy"


def run_psyne(size, total, warmup, zero_copy):
    ctx = mp.get_context("spawn")
    uri = f"ipc://bench-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    ring = max(1 << 20, 8 * size)  # 8 frames of 1 MiB: fits the L3 cache with room to spare
    ready = ctx.Event()
    with psyne.Channel(uri, ring) as ch:
        target = psyne_zero_copy_producer if zero_copy else psyne_copy_producer
        p = ctx.Process(target=target, args=(uri, ring, size, total, ready))
        p.start()
        ready.set()
        recv, recv_view = ch.recv, ch.recv_view
        out = np.empty(size // 8)
        if CONSUMER == "into":
            # Both producers' frames land in the preallocated array.
            def step():
                check(out, ch.recv_into(out)[0])
        elif zero_copy and CONSUMER == "numpy":
            def step():
                with recv_view() as v:
                    a = np.frombuffer(v, dtype=np.float64)
                    check(a, size)
                    del a
        elif zero_copy:
            def step():
                recv_view().release()
        elif CONSUMER == "numpy":
            def step():
                check(np.frombuffer(recv()[0], dtype=np.float64), size)
        else:
            step = recv
        took = timed(total, warmup, step)
        p.join()
    return took


def run_queue(size, total, warmup):
    ctx = mp.get_context("spawn")
    q = ctx.Queue(maxsize=64)
    ready = ctx.Event()
    p = ctx.Process(target=queue_producer, args=(q, size, total, ready))
    p.start()
    ready.set()
    get = q.get
    out = np.empty(size // 8)
    if CONSUMER == "into":
        def step():
            out[:] = get()
    else:
        def step():
            check(get(), size)
    took = timed(total, warmup, step)
    p.join()
    return took


def run_shm(size, total, warmup):
    ctx = mp.get_context("spawn")
    slots = max(8, min(1024, (8 << 20) // size))
    shm = shared_memory.SharedMemory(create=True, size=slots * size)
    full_r, full_w = ctx.Pipe(duplex=False)
    free_r, free_w = ctx.Pipe(duplex=False)
    ready = ctx.Event()
    p = ctx.Process(target=shm_producer, args=(shm.name, slots, size, total, full_w, free_r, ready))
    p.start()
    ready.set()
    ring = np.ndarray((slots, size // 8), dtype=np.float64, buffer=shm.buf)
    index = [0]

    out = np.empty(size // 8)

    def step():
        full_r.recv_bytes()  # a slot was filled
        if CONSUMER == "numpy":
            a = ring[index[0] % slots]
            check(a, size)
            del a
        elif CONSUMER == "into":
            out[:] = ring[index[0] % slots]
        index[0] += 1
        free_w.send_bytes(b"\x01")

    took = timed(total, warmup, step)
    p.join()
    del ring
    shm.close()
    shm.unlink()
    for conn in (full_r, full_w, free_r, free_w):
        conn.close()
    return took


def run_zmq(size, total, warmup):
    import zmq

    ctx = mp.get_context("spawn")
    path = os.path.join(tempfile.gettempdir(), f"psyne-bench-{uuid.uuid4().hex[:8]}.sock")
    addr = f"ipc://{path}"
    zctx = zmq.Context()
    sock = zctx.socket(zmq.PULL)
    sock.bind(addr)
    ready, done = ctx.Event(), ctx.Event()
    p = ctx.Process(target=zmq_producer, args=(addr, size, total, ready, done))
    p.start()
    ready.set()
    copy = size < 65536
    out = np.empty(size // 8)
    if CONSUMER == "message":
        step = sock.recv
    elif CONSUMER == "into":
        step = lambda: check(out, sock.recv_into(out))  # noqa: E731
    elif copy:
        step = lambda: check(np.frombuffer(sock.recv(), dtype=np.float64), size)  # noqa: E731
    else:
        def step():
            frame = sock.recv(copy=False)
            check(np.frombuffer(frame.buffer, dtype=np.float64), size)
    took = timed(total, warmup, step)
    done.set()
    p.join()
    sock.close()
    zctx.term()
    if os.path.exists(path):
        os.unlink(path)
    return took


# Fractions of the frame count for the contenders that are 10-100x slower.
SLOW = {"multiprocessing.Queue": 0.1, "shared_memory + pipe": 0.2}

CONSUMER_LABEL = {"message": "message", "numpy": "new numpy array", "into": "into one numpy array"}

CONTENDERS = [
    ("psyne ipc:// send/recv(_into)", lambda s, n, w: run_psyne(s, n, w, zero_copy=False)),
    ("psyne ipc:// zero-copy (reserve/recv_view)", lambda s, n, w: run_psyne(s, n, w, zero_copy=True)),
    ("multiprocessing.Queue", run_queue),
    ("shared_memory + pipe", run_shm),
    ("pyzmq PUSH/PULL ipc://", run_zmq),
]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    ap = argparse.ArgumentParser(description="psyne ipc:// against the Python alternatives")
    ap.add_argument("--quick", action="store_true", help="few frames, one repetition (seconds)")
    ap.add_argument("--repeat", type=int, default=None, help="repetitions per row (median is shown)")
    a = ap.parse_args()
    # (frame size, what the consumer does, frames per run)
    small, large = (20_000, 200) if a.quick else (300_000, 3_000)
    rows = [(64, "message", small), (64, "numpy", small), (64, "into", small),
            (1 << 20, "numpy", large), (1 << 20, "into", large)]
    repeat = a.repeat or (1 if a.quick else 3)
    global CONSUMER

    print(f"# {' '.join([os.path.basename(sys.argv[0])] + sys.argv[1:])}  "
          f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {cpu_model()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, numpy {np.__version__})")
    print()
    print("| frame | consumer | contender | msg/s | GB/s | best psyne vs this |")
    print("|---|---|---|---:|---:|---:|")
    for size, CONSUMER, total in rows:
        rates = {}
        for label, run in CONTENDERS:
            if CONSUMER == "into" and "zero-copy" in label:
                continue  # recv_into copies: the send/recv row is psyne's
            n = max(100, int(total * SLOW.get(label, 1)))  # keep slow rows short
            w = max(10, n // 20)
            took = statistics.median(run(size, n, w) for _ in range(repeat))
            rates[label] = (n - w) / took
        best_psyne = max(r for label, r in rates.items() if label.startswith("psyne"))
        for label in rates:
            r = rates[label]
            ratio = f"{best_psyne / r:.1f}x" if not label.startswith("psyne") else ""
            print(f"| {'64 B' if size == 64 else '1 MiB'} | {CONSUMER_LABEL[CONSUMER]} "
                  f"| {label} | {r:,.0f} | {r * size / 1e9:.3f} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()
