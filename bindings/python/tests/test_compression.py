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


@pytest.mark.parametrize("algorithm", [psyne.Compression.LZ4, psyne.Compression.ZSTD,
                                       psyne.Compression.SNAPPY])
def test_algorithms_are_unsupported_in_this_build(algorithm):
    # The core has no compression yet: the config must arrive there and be
    # refused as UNSUPPORTED (not silently ignored).
    cfg = psyne.CompressionConfig(algorithm, level=3, min_size_threshold=128)
    with pytest.raises(psyne.Unsupported, match=algorithm.name.capitalize()) as e:
        psyne.Channel("tcp://127.0.0.1:0?role=listen", 1 << 16, compression=cfg)
    assert e.value.code == -6


def test_checksums_round_trip_over_tcp():
    cfg = psyne.CompressionConfig(psyne.Compression.NONE, enable_checksum=True)
    with psyne.Channel("tcp://127.0.0.1:0?role=listen", 1 << 20, compression=cfg) as server:
        with psyne.Channel(f"tcp://{server.local_addr}", 1 << 20, compression=cfg) as client:
            frame = np.random.default_rng(1).normal(size=4096)
            client.send(frame, 5, timeout=WAIT)
            data, t = server.recv(timeout=WAIT)
            assert t == 5 and np.array_equal(np.frombuffer(data), frame)
            assert server.metrics().checksum_failures == 0


def test_checksums_on_shared_memory_are_unsupported(name):
    cfg = psyne.CompressionConfig(psyne.Compression.NONE, enable_checksum=True)
    with pytest.raises(psyne.Unsupported, match="checksum"):
        psyne.Channel(f"memory://{name}", 4096, compression=cfg)
