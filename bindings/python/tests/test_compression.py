"""CompressionConfig reaches the core as given."""

import numpy as np
import pytest

import psyne

from conftest import WAIT


def test_compression_config_defaults():
    cfg = psyne.CompressionConfig(psyne.Compression.LZ4)
    assert (cfg.type, cfg.level, cfg.min_size_threshold, cfg.enable_checksum) == (
        psyne.Compression.LZ4, 0, 0, False)


def test_none_is_accepted(name):
    with psyne.Channel(f"memory://{name}", 4096,
                       compression=psyne.CompressionConfig(psyne.Compression.NONE)) as ch:
        ch.send(b"plain")
        assert ch.recv() == (b"plain", 0)


ALGORITHMS = [psyne.Compression.LZ4, psyne.Compression.ZSTD, psyne.Compression.SNAPPY]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_compressed_frames_round_trip_and_a_plain_end_reads_them(name, algorithm):
    cfg = psyne.CompressionConfig(algorithm, level=3, min_size_threshold=128,
                                  enable_checksum=True)
    frame = np.zeros(4096)                       # compressible
    frame[::7] = np.arange(len(frame[::7]))
    with psyne.Channel(f"ipc://{name}", 1 << 20, compression=cfg) as tx, \
            psyne.Channel(f"ipc://{name}", 0) as rx:   # no compression settings
        tx.send(frame, 3, timeout=WAIT)
        tx.send(b"tiny", 4, timeout=WAIT)         # under the threshold: sent plain
        data, t = rx.recv(timeout=WAIT)
        assert t == 3 and np.array_equal(np.frombuffer(data), frame)
        with rx.recv_view(timeout=WAIT) as view:
            assert (bytes(view), view.msg_type) == (b"tiny", 4)
        m = tx.metrics()
        assert m.messages_compressed == 1
        assert m.wire_bytes_sent < frame.nbytes
        assert rx.metrics().checksum_failures == 0


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_compression_over_tcp(algorithm):
    cfg = psyne.CompressionConfig(algorithm, min_size_threshold=64)
    frame = np.ones(8192)
    with psyne.Channel("tcp://127.0.0.1:0?role=listen", 1 << 20) as server:
        with psyne.Channel(f"tcp://{server.local_addr}", 1 << 20, compression=cfg) as client:
            client.send(frame, 5, timeout=WAIT)
            data, t = server.recv(timeout=WAIT)
            assert t == 5 and np.array_equal(np.frombuffer(data), frame)
            assert client.metrics().messages_compressed == 1


def test_checksums_round_trip_over_tcp():
    cfg = psyne.CompressionConfig(psyne.Compression.NONE, enable_checksum=True)
    with psyne.Channel("tcp://127.0.0.1:0?role=listen", 1 << 20, compression=cfg) as server:
        with psyne.Channel(f"tcp://{server.local_addr}", 1 << 20, compression=cfg) as client:
            frame = np.random.default_rng(1).normal(size=4096)
            client.send(frame, 5, timeout=WAIT)
            data, t = server.recv(timeout=WAIT)
            assert t == 5 and np.array_equal(np.frombuffer(data), frame)
            assert server.metrics().checksum_failures == 0


def test_checksums_on_shared_memory_round_trip(name):
    cfg = psyne.CompressionConfig(psyne.Compression.NONE, enable_checksum=True)
    with psyne.Channel(f"memory://{name}", 4096, compression=cfg) as ch:
        ch.send(b"checked", 1)
        assert ch.recv(timeout=WAIT) == (b"checked", 1)
        assert ch.metrics().checksum_failures == 0
