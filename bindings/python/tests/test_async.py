"""asyncio: recv_async/send_async wait without blocking the event loop."""

import asyncio
import threading
import time

import pytest

import psyne

from conftest import WAIT


def test_event_loop_keeps_running_during_recv_async(name):
    async def main():
        with psyne.Channel(f"memory://{name}", 4096) as ch:
            ticks = 0

            async def ticker():
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0.005)

            tick_task = asyncio.create_task(ticker())
            recv_task = asyncio.create_task(ch.recv_async(timeout=WAIT))
            await asyncio.sleep(0.3)
            assert not recv_task.done()
            before = ticks
            assert before >= 10  # the loop ran while recv_async waited
            # A sender on another thread wakes it.
            threading.Thread(target=ch.send, args=(b"async", 6)).start()
            got = await asyncio.wait_for(recv_task, WAIT)
            tick_task.cancel()
            return got

    assert asyncio.run(main()) == (b"async", 6)


def test_recv_async_fast_path_timeout_and_zero(name):
    async def main():
        with psyne.Channel(f"memory://{name}", 4096) as ch:
            ch.send(b"ready", 1)
            assert await ch.recv_async() == (b"ready", 1)
            with pytest.raises(psyne.NoMessage):
                await ch.recv_async(timeout=0)
            t0 = time.monotonic()
            with pytest.raises(psyne.Timeout):
                await ch.recv_async(timeout=0.1)
            assert time.monotonic() - t0 >= 0.09

    asyncio.run(main())


def test_send_async_waits_for_room(name):
    async def main():
        with psyne.Channel(f"memory://{name}", 256) as ch:
            n = 0
            while True:
                try:
                    ch.try_send(b"z" * 32, n)
                    n += 1
                except psyne.ChannelFull:
                    break
            with pytest.raises(psyne.ChannelFull):
                await ch.send_async(b"z", timeout=0)
            send_task = asyncio.create_task(ch.send_async(b"last", n, timeout=WAIT))
            await asyncio.sleep(0.1)
            assert not send_task.done()
            got = [await ch.recv_async(timeout=WAIT) for _ in range(n)]
            await asyncio.wait_for(send_task, WAIT)
            assert await ch.recv_async(timeout=WAIT) == (b"last", n)
            assert [t for _, t in got] == list(range(n))

    asyncio.run(main())


def test_cancelling_recv_async_wakes_its_worker_and_loses_nothing(name):
    async def main():
        with psyne.Channel(f"memory://{name}", 4096) as ch:
            task = asyncio.create_task(ch.recv_async())
            await asyncio.sleep(0.1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # The worker has returned: the single consumer side is free again.
            ch.send(b"after", 2)
            assert ch.recv(timeout=WAIT) == (b"after", 2)
            # wait_for's timeout goes through the same path.
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(ch.recv_async(), 0.1)
            ch.send(b"again", 3)
            assert await ch.recv_async(timeout=WAIT) == (b"again", 3)

    asyncio.run(main())
