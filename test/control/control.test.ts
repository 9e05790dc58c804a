import { describe, it, expect, afterEach, beforeEach } from 'vitest';
import { mkdtempSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { connect } from 'node:net';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { ControlServer } from '../../firmware/control/server.js';
import { ControlClient, controlCall } from '../../firmware/control/client.js';
import { ControlError, LineSplitter } from '../../firmware/control/protocol.js';
import { PqError } from '../../firmware/util/errors.js';

let dir: string;
let servers: ControlServer[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pqgate-ctl-'));
});
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

async function start(opts: Partial<ConstructorParameters<typeof ControlServer>[0]> = {}, path = join(dir, 'run', 'ctl.sock')): Promise<ControlServer> {
  const s = new ControlServer({
    path,
    methods: {
      echo: (p) => p,
      add: (p) => {
        const { a, b } = p as { a: number; b: number };
        return a + b;
      },
      slow: async (p) => {
        await new Promise((r) => setTimeout(r, (p as { ms: number }).ms));
        return (p as { ms: number }).ms;
      },
      boom: () => {
        throw new Error('kaboom');
      },
      typed: () => {
        throw new ControlError('ERR_NO_SUCH_TUNNEL', 'no tunnel named x');
      },
      pq: () => {
        throw new PqError('ERR_CONFIG', 'bad config');
      },
      nothing: () => undefined,
    },
    ...opts,
  });
  await s.listen();
  servers.push(s);
  return s;
}

/** Raw line-level conversation, bypassing the client. */
function raw(path: string, send: string | Buffer, expectLines: number): Promise<{ lines: any[]; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    let buf = '';
    let closed = false;
    const finish = () => resolve({ lines: buf.split('\n').filter(Boolean).map((l) => JSON.parse(l)), closed });
    s.on('data', (d) => {
      buf += d.toString();
      if (buf.split('\n').filter(Boolean).length >= expectLines) {
        setTimeout(() => {
          s.destroy();
          finish();
        }, 30);
      }
    });
    s.on('close', () => {
      closed = true;
      finish();
    });
    s.on('error', reject);
    s.write(send);
  });
}

describe('control socket', () => {
  it('round-trips requests and answers pipelined requests in order', async () => {
    const s = await start();
    const c = await ControlClient.connect(s.path);
    try {
      const [x, y, z] = await Promise.all([c.call('slow', { ms: 40 }), c.call('add', { a: 2, b: 3 }), c.call('echo', { hello: ['w', 1] })]);
      expect(x).toBe(40);
      expect(y).toBe(5);
      expect(z).toEqual({ hello: ['w', 1] });
      expect(await c.call('nothing')).toBeNull();
    } finally {
      c.close();
    }
    expect(await controlCall(s.path, 'add', { a: 1, b: 1 })).toBe(2);
  });

  it('creates the socket 0600 in a 0700 directory', async () => {
    const s = await start();
    expect(statSync(s.path).isSocket()).toBe(true);
    expect(statSync(s.path).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'run')).mode & 0o777).toBe(0o700);
  });

  it('reports errors with codes: handler exceptions, typed errors, unknown methods', async () => {
    const s = await start();
    await expect(controlCall(s.path, 'boom')).rejects.toMatchObject({ code: 'ERR_INTERNAL', message: 'kaboom' });
    await expect(controlCall(s.path, 'typed')).rejects.toMatchObject({ code: 'ERR_NO_SUCH_TUNNEL' });
    await expect(controlCall(s.path, 'pq')).rejects.toMatchObject({ code: 'ERR_CONFIG' });
    await expect(controlCall(s.path, 'nope')).rejects.toMatchObject({ code: 'ERR_METHOD_NOT_FOUND' });
    await expect(controlCall(s.path, 'toString')).rejects.toMatchObject({ code: 'ERR_METHOD_NOT_FOUND' });
  });

  it('answers malformed JSON and bad requests with an error and keeps the connection', async () => {
    const s = await start();
    const { lines, closed } = await raw(
      s.path,
      '{not json\n' + '[1,2]\n' + '{"id":1}\n' + '{"id":{"x":1},"method":"echo"}\n' + '{"id":2,"method":"echo","params":7,"extra":1}\n' + '\n' + '{"id":"last","method":"echo","params":"ok"}\r\n',
      6,
    );
    expect(closed).toBe(false);
    expect(lines.map((l) => l.error?.code ?? 'ok')).toEqual(['ERR_PARSE_JSON', 'ERR_INVALID_REQUEST', 'ERR_INVALID_REQUEST', 'ERR_INVALID_REQUEST', 'ERR_INVALID_REQUEST', 'ok']);
    expect(lines[2].id).toBe(1);
    expect(lines[5]).toEqual({ id: 'last', result: 'ok' });
  });

  it('rejects an oversized request and closes that connection, and keeps serving others', async () => {
    const s = await start({ maxRequestBytes: 1024 });
    const big = JSON.stringify({ id: 1, method: 'echo', params: 'x'.repeat(5000) }) + '\n';
    const { lines, closed } = await raw(s.path, big, 1);
    expect(lines).toHaveLength(1);
    expect(lines[0].error.code).toBe('ERR_TOO_LARGE');
    expect(closed).toBe(true);
    // a big request without any newline at all is cut off too
    const r2 = await raw(s.path, Buffer.alloc(4096, 0x41), 1);
    expect(r2.lines[0].error.code).toBe('ERR_TOO_LARGE');
    // the client sees the connection-level error as a rejection
    const c = await ControlClient.connect(s.path);
    await expect(c.call('echo', 'y'.repeat(2000))).rejects.toMatchObject({ code: 'ERR_TOO_LARGE' });
    c.close();
    expect(await controlCall(s.path, 'echo', 'small')).toBe('small');
  });

  it('survives garbage bytes and abrupt disconnects', async () => {
    const s = await start();
    for (let i = 0; i < 5; i++) {
      const sock = connect(s.path);
      await new Promise((r) => sock.on('connect', r));
      sock.write(Buffer.from([0xff, 0xfe, 0x00, 0x0a, 0x7b, 0x22]));
      sock.destroy();
    }
    const { lines } = await raw(s.path, Buffer.concat([Buffer.from([0xc3, 0x28, 0x0a]), Buffer.from('{"id":9,"method":"add","params":{"a":4,"b":5}}\n')]), 2);
    expect(lines[0].error.code).toBe('ERR_PARSE_JSON');
    expect(lines[1]).toEqual({ id: 9, result: 9 });
  });

  it('replaces a stale socket but refuses a live one or a regular file', async () => {
    const path = join(dir, 'stale.sock');
    // a stale socket: left behind by a process killed with SIGKILL
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up')); setInterval(() => {}, 1000)`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise((r) => child.stdout!.once('data', r));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(existsSync(path)).toBe(true);
    const s = await start({}, path);
    expect(await controlCall(path, 'echo', 1)).toBe(1);
    // a second daemon on the same path
    await expect(start({}, path)).rejects.toThrow(/another daemon/);
    const file = join(dir, 'file.sock');
    writeFileSync(file, 'x');
    await expect(start({}, file)).rejects.toThrow(/not a socket/);
    await s.close();
    expect(existsSync(path)).toBe(false);
  });

  it('client: connection errors name the path and hint at the daemon', async () => {
    await expect(controlCall(join(dir, 'none.sock'), 'status')).rejects.toThrow(/cannot connect to .*none\.sock: ENOENT.*daemon running/);
  });

  it('client: times out a request that gets no reply', async () => {
    const s = await start();
    const c = await ControlClient.connect(s.path, { timeoutMs: 50 });
    await expect(c.call('slow', { ms: 500 })).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    c.close();
  });

  it('client: pending calls fail when the server goes away', async () => {
    const s = await start();
    const c = await ControlClient.connect(s.path);
    const p = c.call('slow', { ms: 1000 });
    await s.close();
    await expect(p).rejects.toMatchObject({ code: 'ERR_CONNECTION' });
  });
});

describe('LineSplitter', () => {
  it('joins split chunks and bounds the line length', () => {
    const l = new LineSplitter(10);
    expect(l.push(Buffer.from('ab'))).toEqual([]);
    expect(l.push(Buffer.from('c\nde\r\nf'))).toEqual(['abc', 'de']);
    expect(l.push(Buffer.from('ghij'))).toEqual([]);
    expect(l.overflowed).toBe(false);
    expect(l.push(Buffer.from('klmnop\n'))).toEqual([]);
    expect(l.overflowed).toBe(true);
    // a multi-byte character split across chunks is reassembled
    const u = new LineSplitter(100);
    const e = Buffer.from('é\n');
    expect(u.push(e.subarray(0, 1))).toEqual([]);
    expect(u.push(e.subarray(1))).toEqual(['é']);
  });
});
