// Compiled (not run) by `npm run typecheck`: index.d.ts describes the API
// as the tests use it, and refuses what it should.
import { Channel, PsyneError, View, Reservation, Message, Metrics, ErrorCode, codes } from '..';

async function usage(): Promise<void> {
  const ch = new Channel('ipc://types', { bufferSize: 1 << 20, mode: 'spsc', type: 'multi', compression: { type: 'none' } });
  ch.send(Buffer.from('x'), 1);
  ch.send('text');
  await ch.sendAsync(new Uint8Array(4), 2, { timeout: 100, signal: AbortSignal.timeout(50) });
  const m: Message | null = ch.tryRecv();
  if (m) {
    const b: Buffer = m.data;
    const t: number = m.type;
    void b;
    void t;
  }
  const got: Message = await ch.recv({ timeout: 10 });
  void got;
  const v: View = await ch.recvView();
  const len: number = v.data.length + v.length;
  void len;
  v.release();
  const r: Reservation = ch.reserve(16);
  r.data.fill(0);
  r.send(3);
  ch.reserve(1).cancel();
  for await (const { data, type } of ch) {
    void data;
    void type;
  }
  const mt: Metrics = ch.metrics();
  const n: number = mt.messagesSent + mt.highWaterBytes;
  void n;
  const addr: string | null = ch.localAddress;
  void addr;
  ch.stop();
  ch.close();
  try {
    ch.send('x');
  } catch (e) {
    if (e instanceof PsyneError) {
      const c: ErrorCode = e.code;
      const errno: number = e.errno;
      void c;
      void errno;
    }
  }
  const full: number = codes.CHANNEL_FULL;
  void full;
  // @ts-expect-error: not a mode
  new Channel('memory://x', { mode: 'fifo' });
  // @ts-expect-error: not a code
  const bad: ErrorCode = 'FULL';
  void bad;
}
void usage;
