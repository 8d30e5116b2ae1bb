"""Every Channel method and every error, on memory:// (one process)."""

import array
import threading

import numpy as np
import pytest

import psyne


def test_enums_have_the_c_values():
    assert [int(m) for m in psyne.Mode] == [0, 1, 2, 3]
    assert [m.name for m in psyne.Mode] == ["SPSC", "SPMC", "MPSC", "MPMC"]
    assert (psyne.ChannelType.SINGLE, psyne.ChannelType.MULTI) == (0, 1)
    assert [(c.name, int(c)) for c in psyne.Compression] == [
        ("NONE", 0), ("LZ4", 1), ("ZSTD", 2), ("SNAPPY", 3)]


def test_exception_hierarchy_and_codes():
    expected = {
        psyne.InvalidArgument: (-1, ValueError),
        psyne.OutOfMemory: (-2, MemoryError),
        psyne.ChannelFull: (-3, None),
        psyne.NoMessage: (-4, None),
        psyne.ChannelStopped: (-5, None),
        psyne.Unsupported: (-6, None),
        psyne.IoError: (-7, OSError),
        psyne.Timeout: (-8, TimeoutError),
        psyne.Cancelled: (-9, None),
    }
    for cls, (code, builtin) in expected.items():
        assert issubclass(cls, psyne.Error)
        assert cls.code == code
        if builtin is not None:
            assert issubclass(cls, builtin)
        e = cls("detail text")
        assert str(e) == "detail text" and e.code == code
    assert psyne.Error.code == -99


def test_defaults_and_properties(name):
    with psyne.Channel(f"memory://{name}") as ch:
        assert ch.uri == f"memory://{name}"
        assert ch.buffer_size == 1 << 20
        assert ch.max_message_size == (1 << 19) - 16
        assert ch.mode is psyne.Mode.SPSC
        assert ch.channel_type is psyne.ChannelType.MULTI
        assert not ch.is_stopped and not ch.closed
        assert ch.local_addr is None
        assert repr(ch) == f'<psyne.Channel uri="memory://{name}" buffer_size=1048576 mode=SPSC channel_type=MULTI>'


def test_send_recv_every_buffer_kind(name):
    with psyne.Channel(f"memory://{name}", 1 << 16) as ch:
        frame = np.arange(16, dtype=np.float64)
        inputs = [b"bytes", bytearray(b"bytearray"), memoryview(b"memoryview"),
                  array.array("i", [1, 2, 3]), frame, b""]
        for i, data in enumerate(inputs):
            ch.send(data, msg_type=i)
        for i, data in enumerate(inputs):
            got, t = ch.recv(timeout=5)
            assert type(got) is bytes and t == i
            assert got == memoryview(data).tobytes()
        assert np.array_equal(np.frombuffer(ch.send(frame) or ch.recv()[0]), frame)


def test_non_contiguous_and_non_buffer_data_are_refused(name):
    with psyne.Channel(f"memory://{name}", 4096) as ch:
        with pytest.raises((BufferError, ValueError)):
            ch.send(np.arange(10.0)[::2])
        with pytest.raises(TypeError):
            ch.send("a str is not bytes")
        with pytest.raises(psyne.NoMessage):
            ch.try_recv()


def test_try_send_full_and_try_recv_empty(name):
    with psyne.Channel(f"memory://{name}", 256) as ch:
        with pytest.raises(psyne.NoMessage) as e:
            ch.try_recv()
        assert e.value.code == -4
        sent = 0
        with pytest.raises(psyne.ChannelFull):
            while True:
                ch.try_send(b"x" * 32, sent)
                sent += 1
        assert sent > 0
        with pytest.raises(psyne.ChannelFull):
            ch.send(b"x" * 32, timeout=0)
        with pytest.raises(psyne.Timeout):
            ch.send(b"x" * 32, timeout=0.05)
        assert ch.metrics().send_blocks >= 2
        for i in range(sent):
            assert ch.try_recv() == (b"x" * 32, i)
        with pytest.raises(psyne.NoMessage):
            ch.recv(timeout=0)
        with pytest.raises(psyne.Timeout) as e:
            ch.recv(timeout=0.05)
        assert isinstance(e.value, TimeoutError) and e.value.code == -8


def test_too_big_is_invalid_argument_and_queues_nothing(name):
    with psyne.Channel(f"memory://{name}", 1024) as ch:
        with pytest.raises(psyne.InvalidArgument, match="larger than the channel's maximum"):
            ch.send(bytes(ch.max_message_size + 1))
        ch.send(bytes(ch.max_message_size))
        assert len(ch.recv()[0]) == ch.max_message_size
        with pytest.raises(psyne.NoMessage):
            ch.try_recv()


@pytest.mark.parametrize("kwargs, match", [
    ({"mode": 4}, "mode"),
    ({"mode": -1}, "mode"),
    ({"channel_type": 2}, "type"),
    ({"buffer_size": -1}, "buffer_size"),
    ({"compression": psyne.CompressionConfig(7)}, "compression type"),
    ({"compression": psyne.CompressionConfig(psyne.Compression.NONE, min_size_threshold=-1)},
     "min_size_threshold"),
    ({"compression": object()}, "compression config"),
])
def test_bad_constructor_arguments(name, kwargs, match):
    with pytest.raises(psyne.InvalidArgument, match=match):
        psyne.Channel(f"memory://{name}", **kwargs)


@pytest.mark.parametrize("uri", ["", "nothing", "bogus://x", "memory://", "tcp://host:notaport",
                                 "memory://x?unknown=1", "ipc://a/b"])
def test_malformed_uris(uri):
    with pytest.raises(psyne.InvalidArgument) as e:
        psyne.Channel(uri)
    assert isinstance(e.value, ValueError) and str(e.value).startswith("invalid argument")


def test_attach_with_size_zero(name):
    with pytest.raises(psyne.InvalidArgument, match=name):
        psyne.Channel(f"memory://{name}", 0)
    with psyne.Channel(f"memory://{name}", 4096, psyne.Mode.MPMC) as a, \
            psyne.Channel(f"memory://{name}", 0) as b:
        assert b.buffer_size == 4096 and b.mode is psyne.Mode.MPMC
        a.send(b"shared", 5)
        assert b.recv(timeout=5) == (b"shared", 5)


@pytest.mark.parametrize("bad", [-1, -0.5, float("nan"), float("inf")])
def test_bad_timeouts(name, bad):
    with psyne.Channel(f"memory://{name}", 4096) as ch:
        with pytest.raises(psyne.InvalidArgument, match="timeout"):
            ch.recv(timeout=bad)
        with pytest.raises(psyne.InvalidArgument, match="timeout"):
            ch.send(b"x", timeout=bad)


def test_msg_type_range_and_single_channels(name):
    with psyne.Channel(f"memory://{name}", 4096) as ch:
        ch.send(b"max", 2**32 - 1)
        assert ch.recv() == (b"max", 2**32 - 1)
        for bad in (-1, 2**32):
            with pytest.raises(psyne.InvalidArgument, match="msg_type"):
                ch.send(b"x", bad)
    with psyne.Channel(f"memory://{name}-single", 4096, channel_type=psyne.ChannelType.SINGLE) as ch:
        assert ch.channel_type is psyne.ChannelType.SINGLE
        with pytest.raises(psyne.InvalidArgument, match="SINGLE"):
            ch.send(b"typed", 3)
        ch.send(b"untyped")
        assert ch.recv() == (b"untyped", 0)


def test_stop_drains_then_raises_and_iteration_ends(name):
    with psyne.Channel(f"memory://{name}", 4096) as ch:
        for i in range(5):
            ch.send(bytes([i]), i)
        ch.stop()
        assert ch.is_stopped
        with pytest.raises(psyne.ChannelStopped):
            ch.send(b"late")
        assert list(ch) == [(bytes([i]), i) for i in range(5)]
        with pytest.raises(psyne.ChannelStopped) as e:
            ch.recv()
        assert e.value.code == -5


def test_iteration_yields_until_stopped_from_another_thread(name):
    with psyne.Channel(f"memory://{name}", 4096) as ch:
        def produce():
            for i in range(100):
                ch.send(i.to_bytes(4, "little"), 1)
            ch.stop()
        t = threading.Thread(target=produce)
        t.start()
        got = [int.from_bytes(d, "little") for d, _ in ch]
        t.join()
        assert got == list(range(100))


def test_close_is_idempotent_and_use_after_close_raises(name):
    ch = psyne.Channel(f"memory://{name}", 4096)
    ch.close()
    ch.close()
    assert ch.closed
    for call in (lambda: ch.send(b"x"), ch.try_recv, ch.recv, ch.recv_view, lambda: ch.reserve(4),
                 ch.stop, ch.metrics, ch.reset_metrics, lambda: ch.is_stopped):
        with pytest.raises(psyne.ChannelStopped, match="closed"):
            call()
    assert ch.uri == f"memory://{name}"  # configuration stays readable


def test_metrics_every_field_and_reset(name):
    with psyne.Channel(f"memory://{name}", 4096) as ch:
        ch.send(b"12345", 1)
        ch.send(b"678", 2)
        m = ch.metrics()
        assert (m.messages_sent, m.bytes_sent, m.queued_bytes > 0) == (2, 8, True)
        ch.recv()
        ch.recv()
        with pytest.raises(psyne.NoMessage):
            ch.try_recv()
        with pytest.raises(psyne.NoMessage):
            ch.try_recv()
        m = ch.metrics()
        d = m.as_dict()
        assert list(d) == [
            "messages_sent", "bytes_sent", "messages_received", "bytes_received", "send_blocks",
            "receive_blocks", "wire_bytes_sent", "wire_bytes_received", "messages_compressed",
            "checksum_failures", "frames_refused", "connects", "reconnects", "peers",
            "queued_bytes", "high_water_bytes"]
        assert (m.messages_received, m.bytes_received, m.receive_blocks) == (2, 8, 2)
        assert (m.wire_bytes_sent, m.wire_bytes_received) == (8, 8)
        assert m.high_water_bytes > 0 and m.queued_bytes == 0
        assert all(d[k] == 0 for k in ("messages_compressed", "checksum_failures", "frames_refused",
                                       "connects", "reconnects", "peers"))
        assert "messages_sent=2" in repr(m)
        ch.reset_metrics()
        assert ch.metrics().as_dict() == dict.fromkeys(d, 0)


def test_mpmc_threads_deliver_each_message_once(name):
    n_producers, per = 4, 500
    with psyne.Channel(f"memory://{name}", 1 << 14, psyne.Mode.MPMC) as ch:
        got, lock = [], threading.Lock()

        def produce(p):
            for i in range(per):
                ch.send(f"{p}:{i}".encode(), p)

        def consume():
            for data, _ in ch:
                with lock:
                    got.append(data)

        consumers = [threading.Thread(target=consume) for _ in range(2)]
        producers = [threading.Thread(target=produce, args=(p,)) for p in range(n_producers)]
        for t in consumers + producers:
            t.start()
        for t in producers:
            t.join()
        ch.stop()
        for t in consumers:
            t.join()
        assert sorted(got) == sorted(f"{p}:{i}".encode() for p in range(n_producers) for i in range(per))


def test_spsc_second_concurrent_receiver_is_refused(name):
    with psyne.Channel(f"memory://{name}", 4096) as ch:
        ch.send(b"held")
        view = ch.recv_view()
        with pytest.raises(psyne.InvalidArgument, match="one receiver"):
            ch.try_recv()
        view.release()
        with pytest.raises(psyne.NoMessage):
            ch.try_recv()


def test_unsupported_scheme_is_unsupported():
    # wss:// (TLS) is not built; ws:// is.
    with pytest.raises(psyne.Unsupported) as e:
        psyne.Channel("wss://127.0.0.1:1/x")
    assert e.value.code == -6


def test_recv_into_a_preallocated_numpy_array(name):
    with psyne.Channel(f"memory://{name}", 1 << 16) as ch:
        out = np.zeros(32)
        for i in range(3):
            ch.send(np.full(32, float(i)), i)
            assert ch.recv_into(out, timeout=5) == (256, i)
            assert np.array_equal(out, np.full(32, float(i)))
        ch.send(b"abc", 9)
        buf = bytearray(8)
        assert ch.recv_into(buf) == (3, 9) and buf[:3] == b"abc"
        with pytest.raises(psyne.NoMessage):
            ch.recv_into(buf, timeout=0)
        with pytest.raises(psyne.Timeout):
            ch.recv_into(buf, timeout=0.05)


def test_recv_into_too_small_keeps_the_message_and_read_only_is_refused(name):
    with psyne.Channel(f"memory://{name}", 4096) as ch:
        ch.send(b"0123456789", 4)
        with pytest.raises(psyne.InvalidArgument, match="needs 10 bytes"):
            ch.recv_into(bytearray(4))
        with pytest.raises((BufferError, TypeError)):
            ch.recv_into(b"read-only bytes....")
        out = bytearray(10)
        assert ch.recv_into(out) == (10, 4) and out == b"0123456789"
