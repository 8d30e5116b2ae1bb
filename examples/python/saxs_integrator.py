"""The integrator stage of the SAXS pipeline, in Python: the same protocol
as saxs_go/main.go (frames in, radial profiles out; type 1 = data, type 2 =
end of stream), so saxs_pipeline.py can run its two stages as two Python
processes too.

    python saxs_integrator.py FRAMES_URI PROFILES_URI WIDTH HEIGHT
"""

import sys

import numpy as np

import psyne

TYPE_FRAME, TYPE_END = 1, 2
RING_SIZE = 8 << 20


def radial_profile(img: np.ndarray) -> np.ndarray:
    """The mean of the pixels at each integer distance from the centre."""
    h, w = img.shape
    y, x = np.indices(img.shape)
    r = np.hypot(x - (w - 1) / 2, y - (h - 1) / 2).astype(np.int64)
    return np.bincount(r.ravel(), weights=img.ravel()) / np.bincount(r.ravel())


def main() -> None:
    frames_uri, profiles_uri, width, height = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    with psyne.Channel(frames_uri, RING_SIZE) as frames, psyne.Channel(profiles_uri, RING_SIZE) as profiles:
        n = 0
        while True:
            with frames.recv_view(timeout=30) as view:
                if view.msg_type == TYPE_END:
                    break
                # Zero-copy: the array reads the frame in the shared ring.
                img = np.frombuffer(view, dtype="<f8").reshape(height, width)
                profile = radial_profile(img)
                del img
            profiles.send(profile, TYPE_FRAME, timeout=30)
            n += 1
        profiles.send(b"", TYPE_END, timeout=30)
    print(f"saxs_integrator.py: integrated {n} frames of {width}x{height}")


if __name__ == "__main__":
    main()
