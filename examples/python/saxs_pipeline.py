"""A SAXS pipeline in miniature: a Python detector stage sends float64
frames over ipc:// to an integrator stage in another process (Go or
Python), which sends back each frame's radial profile, also over ipc://.
No JSON, no copies on the Python side: frames are written straight into the
shared ring (reserve) and profiles read straight out of it (recv_view).

    python saxs_pipeline.py --integrator python            # both stages in Python
    python saxs_pipeline.py --integrator ./saxs_go/saxs_go # Go integrator (build it first:
                                                           #   cd saxs_go && go build)

It checks every profile against numpy and prints a one-line summary.
"""

import argparse
import os
import subprocess
import sys
import time
import uuid

import numpy as np

import psyne

HERE = os.path.dirname(os.path.abspath(__file__))
TYPE_FRAME, TYPE_END = 1, 2
RING_SIZE = 8 << 20  # both stages give the same size: the second attaches


def detector_frame(i: int, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A synthetic scattering image: a Guinier-like fall-off plus noise."""
    y, x = np.indices((height, width))
    q2 = (x - (width - 1) / 2) ** 2 + (y - (height - 1) / 2) ** 2
    rg2 = 200.0 + 10.0 * i
    return 1000.0 * np.exp(-q2 / rg2) + rng.normal(0.0, 1.0, (height, width))


def radial_profile(img: np.ndarray) -> np.ndarray:
    h, w = img.shape
    y, x = np.indices(img.shape)
    r = np.hypot(x - (w - 1) / 2, y - (h - 1) / 2).astype(np.int64)
    return np.bincount(r.ravel(), weights=img.ravel()) / np.bincount(r.ravel())


def run(integrator: str, frames_count: int, width: int, height: int, name: str) -> int:
    frames_uri, profiles_uri = f"ipc://{name}-frames", f"ipc://{name}-profiles"
    rng = np.random.default_rng(7)
    sent = [detector_frame(i, width, height, rng) for i in range(frames_count)]
    # Open both channels before the integrator starts, and keep them open
    # until the end-of-stream marker is back: an ipc ring lives as long as
    # some process has it open.
    with psyne.Channel(frames_uri, RING_SIZE) as frames, psyne.Channel(profiles_uri, RING_SIZE) as profiles:
        if integrator == "python":
            cmd = [sys.executable, os.path.join(HERE, "saxs_integrator.py"),
                   frames_uri, profiles_uri, str(width), str(height)]
        else:
            cmd = [integrator, "-frames", frames_uri, "-profiles", profiles_uri,
                   "-width", str(width), "-height", str(height)]
        stage = subprocess.Popen(cmd)
        start = time.perf_counter()
        checked = 0
        for img in sent:
            with frames.reserve(img.nbytes, timeout=30) as slot:
                np.frombuffer(slot, dtype="<f8").reshape(height, width)[:] = img
                slot.send(TYPE_FRAME)
            # Profiles come back while frames go out (the rings are bounded).
            checked += drain(profiles, sent, checked, wait=0)
        frames.send(b"", TYPE_END, timeout=30)
        checked += drain(profiles, sent, checked, wait=30)
        elapsed = time.perf_counter() - start
        if stage.wait(timeout=30) != 0:
            raise SystemExit(f"the integrator exited with {stage.returncode}")
    if checked != frames_count:
        raise SystemExit(f"{checked} profiles for {frames_count} frames")
    print(f"saxs_pipeline: {frames_count} frames of {width}x{height} float64 through "
          f"{'Python' if integrator == 'python' else os.path.basename(integrator)}, every profile "
          f"matches numpy ({elapsed * 1e3:.1f} ms)")
    return checked


def drain(profiles: psyne.Channel, sent: list, first: int, wait: float) -> int:
    """Checks the profiles that arrived; with wait > 0, until end of stream."""
    n = 0
    while True:
        try:
            view = profiles.recv_view(timeout=wait if wait else 0)
        except psyne.NoMessage:
            return n
        with view:
            if view.msg_type == TYPE_END:
                return n
            got = np.frombuffer(view, dtype="<f8")
            want = radial_profile(sent[first + n])
            if not np.allclose(got, want, rtol=1e-12, atol=1e-9):
                raise SystemExit(f"profile {first + n} differs from numpy's")
            del got
        n += 1


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--integrator", default="python", help='"python" or the path of the Go program')
    p.add_argument("--frames", type=int, default=50)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--height", type=int, default=128)
    p.add_argument("--name", default=f"saxs-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    a = p.parse_args()
    run(a.integrator, a.frames, a.width, a.height, a.name)


if __name__ == "__main__":
    main()
