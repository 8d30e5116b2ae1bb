"""Views and reservations: zero-copy with numpy, and use after release raising."""

import gc

import numpy as np
import pytest

import psyne


def address(buf):
    return np.frombuffer(buf, dtype=np.uint8).__array_interface__["data"][0]


def test_reserve_fill_with_numpy_then_view_reads_the_same_bytes(name):
    frame = np.linspace(0, 1, 512)
    with psyne.Channel(f"memory://{name}", 1 << 16) as ch:
        with ch.reserve(frame.nbytes) as slot:
            assert len(slot) == frame.nbytes
            written_at = address(slot)
            np.frombuffer(slot, dtype=np.float64)[:] = frame
            slot.send(msg_type=11)
        assert slot.finished
        with ch.recv_view(timeout=5) as view:
            assert view.msg_type == 11 and len(view) == frame.nbytes
            assert address(view) == written_at  # the consumer reads the producer's bytes
            arr = np.frombuffer(view, dtype=np.float64)
            assert not arr.flags.writeable
            assert np.array_equal(arr, frame)
            del arr
        assert view.released


def test_memoryview_of_a_view_is_read_only_and_of_a_reservation_writable(name):
    with psyne.Channel(f"memory://{name}", 4096) as ch:
        with ch.reserve(4) as slot:
            m = memoryview(slot)
            assert not m.readonly and m.nbytes == 4
            m[:] = b"abcd"
            m.release()
            slot.send(1)
        view = ch.recv_view()
        m = memoryview(view)
        assert m.readonly and m.tobytes() == b"abcd"
        with pytest.raises(TypeError):
            m[0] = 0
        m.release()
        assert view.tobytes() == b"abcd"
        view.release()


def test_use_after_release_raises(name):
    with psyne.Channel(f"memory://{name}", 4096) as ch:
        ch.send(b"payload", 3)
        view = ch.recv_view()
        view.release()
        view.release()  # idempotent
        for use in (lambda: len(view), lambda: view.msg_type, view.tobytes,
                    lambda: memoryview(view), lambda: np.frombuffer(view)):
            with pytest.raises(ValueError, match="released"):
                use()
        assert "released" in repr(view)


def test_use_after_send_or_cancel_raises(name):
    with psyne.Channel(f"memory://{name}", 4096) as ch:
        slot = ch.reserve(8)
        slot.send()
        with pytest.raises(ValueError, match="sent"):
            slot.send()
        with pytest.raises(ValueError, match="sent"):
            memoryview(slot)
        with pytest.raises(ValueError, match="sent"):
            len(slot)
        slot.cancel()  # a no-op once sent
        assert ch.recv() == (bytes(8), 0)
        slot = ch.reserve(8)
        slot.cancel()
        slot.cancel()
        with pytest.raises(ValueError, match="cancelled"):
            slot.send()
        with pytest.raises(psyne.NoMessage):
            ch.try_recv()


def test_exported_view_refuses_release_with_buffer_error(name):
    with psyne.Channel(f"memory://{name}", 4096) as ch:
        ch.send(np.arange(4, dtype=np.float64))
        view = ch.recv_view()
        arr = np.frombuffer(view, dtype=np.float64)
        with pytest.raises(BufferError, match="exported"):
            view.release()
        assert np.array_equal(arr, np.arange(4.0))  # still valid
        del arr
        gc.collect()
        view.release()


def test_exported_reservation_refuses_send_and_cancel(name):
    with psyne.Channel(f"memory://{name}", 4096) as ch:
        slot = ch.reserve(16)
        arr = np.frombuffer(slot, dtype=np.float64)
        arr[:] = [1.5, 2.5]
        with pytest.raises(BufferError):
            slot.send(2)
        with pytest.raises(BufferError):
            slot.cancel()
        del arr
        slot.send(2)
        data, t = ch.recv()
        assert t == 2 and np.array_equal(np.frombuffer(data), [1.5, 2.5])


def test_reservation_context_cancels_unless_sent(name):
    with psyne.Channel(f"memory://{name}", 4096) as ch:
        with ch.reserve(8) as slot:
            memoryview(slot)[:] = b"12345678"
        assert slot.finished
        with pytest.raises(psyne.NoMessage):
            ch.try_recv()
        with pytest.raises(RuntimeError):
            with ch.reserve(8):
                raise RuntimeError("fails while filling")
        with pytest.raises(psyne.NoMessage):
            ch.try_recv()
        assert ch.metrics().messages_sent == 0


def test_reservation_on_single_channel_refuses_a_type_and_cancels(name):
    with psyne.Channel(f"memory://{name}", 4096, channel_type=psyne.ChannelType.SINGLE) as ch:
        slot = ch.reserve(4)
        with pytest.raises(psyne.InvalidArgument, match="SINGLE"):
            slot.send(5)
        assert slot.finished
        with pytest.raises(psyne.NoMessage):
            ch.try_recv()


def test_reserve_errors(name):
    with psyne.Channel(f"memory://{name}", 256) as ch:
        with pytest.raises(psyne.InvalidArgument):
            ch.reserve(-1)
        with pytest.raises(psyne.InvalidArgument, match="maximum"):
            ch.reserve(ch.max_message_size + 1)
        held = [ch.reserve(64, timeout=0)]
        with pytest.raises((psyne.ChannelFull, psyne.InvalidArgument)):
            for _ in range(8):
                held.append(ch.reserve(64, timeout=0))
        for r in held:
            r.cancel()


def test_recv_view_timeouts(name):
    with psyne.Channel(f"memory://{name}", 4096) as ch:
        with pytest.raises(psyne.NoMessage):
            ch.recv_view(timeout=0)
        with pytest.raises(psyne.Timeout):
            ch.recv_view(timeout=0.05)


def test_close_ends_views_and_reservations(name):
    ch = psyne.Channel(f"memory://{name}", 4096, psyne.Mode.MPMC)
    ch.send(b"one")
    view = ch.recv_view()
    slot = ch.reserve(8)
    ch.close()
    assert view.released and slot.finished
    with pytest.raises(ValueError, match="closed"):
        view.tobytes()
    with pytest.raises(ValueError, match="closed"):
        slot.send()
    view.release()  # no-op once ended
    slot.cancel()


def test_close_keeps_an_exported_view_valid(name):
    frame = np.arange(64, dtype=np.float64)
    ch = psyne.Channel(f"memory://{name}", 1 << 14)
    ch.send(frame)
    view = ch.recv_view()
    arr = np.frombuffer(view, dtype=np.float64)
    ch.close()
    # The array still reads the ring's bytes, which stay mapped for it.
    assert np.array_equal(arr, frame)
    with pytest.raises(ValueError, match="closed"):
        memoryview(view)
    del arr
    gc.collect()
    assert view.released


def test_garbage_collected_view_releases_its_message(name):
    with psyne.Channel(f"memory://{name}", 4096) as ch:
        for i in range(3):
            ch.send(bytes([i]))
        for i in range(3):
            # Each view is dropped at once, which releases it (and the single
            # consumer side it holds: the next receive may start).
            assert ch.recv_view().tobytes() == bytes([i])
        with pytest.raises(psyne.NoMessage):
            ch.try_recv()
