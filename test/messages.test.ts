// Messages to the running instance (Unix): what the handler gets, what the
// sender gets back, in what order, and what the holder does with clients
// that break the protocol. Holders are IPC children (conformance/child.cjs);
// senders are this process or fixture processes whose argv is known. The
// messages code is its own bundle, dist/messages/index.js, so everything
// here goes through the built package, as a program would.
import { execFile, fork } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import net from 'node:net'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { FIXTURES, OTHER_USERS, ROOT, eventually, spawnChild, spawnChildAs, tmpDir, uniqueName } from './helpers.js'
import type { Child } from './helpers.js'

const il = createRequire(__filename)(ROOT) as typeof import('../src/index.js')
const SENDER = path.join(FIXTURES, 'sender.cjs')

interface Outcome {
  reply?: { message: { argv: string[]; cwd: string; pid: number; uid?: number; data?: unknown } }
  argv?: string[]
  cwd?: string
  pid?: number
  code?: string
  message?: string
}

/** Runs the sender fixture with `extra` argv, in `cwd`; resolves what it printed. */
function runSender(name: string, options: object, data: unknown, extra: string[] = [], cwd = ROOT): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const args = [SENDER, name, JSON.stringify(options), data === undefined ? '-' : JSON.stringify(data), ...extra]
    execFile(process.execPath, args, { cwd, env: { ...process.env, IL_ROOT: ROOT }, timeout: 60_000 }, (err, stdout) => {
      if (err !== null) reject(new Error(`sender failed: ${err.message}`))
      else resolve(JSON.parse(stdout) as Outcome)
    })
  })
}

async function holder(name: string, options: object, behaviour: string | null = 'echo'): Promise<{ child: Child; path: string; sock: string }> {
  const child = await spawnChild()
  const { path: lockPath } = await child.call<{ path: string }>('tryLock', name, options)
  if (behaviour !== null) await child.call('listen', lockPath, behaviour)
  return { child, path: lockPath, sock: lockPath.replace(/\.lock$/, '.sock') }
}

async function received(child: Child): Promise<{ messages: Array<{ pid: number; data?: unknown }>; maxRunning: number }> {
  return child.call('received')
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p
  } catch (err) {
    return (err as { code?: string }).code
  }
  throw new Error('expected a rejection')
}

describe('a message and its reply', () => {
  it('carries argv exactly, cwd, the pid and uid the kernel reports, and the data', async () => {
    const name = uniqueName('msg')
    await holder(name, {})
    const cwd = tmpDir()
    const extra = ['b c', '', 'ünï cødé ✓', '--flag=x', '  ', 'a']
    const data = { file: 'x y.txt', n: [1, null, true], nested: { s: '' } }
    const out = await runSender(name, {}, data, extra, cwd)
    expect(out.code).toBeUndefined()
    const m = out.reply!.message
    expect(m.argv).toEqual(out.argv)
    expect(m.argv.slice(-extra.length)).toEqual(extra)
    expect(m.cwd).toBe(fs.realpathSync(cwd))
    expect(m.pid).toBe(out.pid)
    expect(m.uid).toBe(process.getuid!())
    expect(m.data).toEqual(data)
  })

  it('has no data when none is sent, and any JSON value when one is', async () => {
    const name = uniqueName('msg')
    await holder(name, {})
    const none = (await il.send(name)) as Outcome['reply']
    expect(none!.message).not.toHaveProperty('data')
    for (const v of ['text', 0, null, [1, 'two'], false]) {
      expect(((await il.send(name, v)) as Outcome['reply'])!.message.data).toEqual(v)
    }
  })

  it("rejects with EREMOTE and the handler's message when it throws", async () => {
    const name = uniqueName('msg')
    await holder(name, {}, 'throw')
    const err = await il.send(name, 'not today').catch((e: Error & { code: string }) => e)
    expect((err as { code: string }).code).toBe('EREMOTE')
    expect((err as Error).message).toBe('not today')
  })

  it('rejects with ENOTRUNNING when the lock is free, ENOLISTENER when its holder does not listen', async () => {
    const name = uniqueName('msg')
    expect(await codeOf(il.send(name, 1, { timeout: 200 }))).toBe('ENOTRUNNING')
    await holder(name, {}, null)
    const t = Date.now()
    expect(await codeOf(il.send(name, 1, { timeout: 300 }))).toBe('ENOLISTENER')
    expect(Date.now() - t).toBeGreaterThanOrEqual(250)
  })

  it('rejects with ETIMEDOUT when the handler is slower than the timeout, and an AbortError on abort', async () => {
    const name = uniqueName('msg')
    const h = await holder(name, {}, 'gate')
    expect(await codeOf(il.send(name, 1, { timeout: 300 }))).toBe('ETIMEDOUT')
    const ac = new AbortController()
    const p = il.send(name, 2, { signal: ac.signal, timeout: 30_000 })
    await eventually(() => true, 'a turn')
    ac.abort()
    expect(await codeOf(p)).toBe('ABORT_ERR')
    await h.child.call('open')
  })

  it('refuses data over 64 KiB or that is not JSON before anything is sent', async () => {
    const name = uniqueName('msg')
    const h = await holder(name, {}, 'count')
    const cycle: Record<string, unknown> = {}
    cycle.self = cycle
    for (const bad of ['x'.repeat(64 * 1024), () => 1, 10n, cycle, Symbol('s')]) {
      expect(await codeOf(il.send(name, bad))).toBe('ERR_INVALID_ARG_VALUE')
    }
    // Exactly 64 KiB of JSON is allowed.
    expect(await il.send(name, 'x'.repeat(64 * 1024 - 2))).toBe(1)
    expect((await received(h.child)).messages).toHaveLength(1)
  })

  it('refuses bad arguments with codes', async () => {
    expect(await codeOf(il.send('no/slash'))).toBe('ERR_INVALID_ARG_VALUE')
    expect(await codeOf(il.send('x', 1, { timeout: -1 }))).toBe('ERR_OUT_OF_RANGE')
    expect(await codeOf(il.send('x', 1, { signal: 'no' as unknown as AbortSignal }))).toBe('ERR_INVALID_ARG_TYPE')
    const lock = il.tryLock(uniqueName('msg'))
    expect(() => lock.onMessage('no' as unknown as () => void)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
    lock.release()
    expect(() => lock.onMessage(() => 1)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }))
  })
})

describe('the holder', () => {
  it('handles one message at a time: a slow handler delays the next senders and loses none', async () => {
    const name = uniqueName('msg')
    const h = await holder(name, {}, 'gate')
    const sends = Array.from({ length: 5 }, (_, i) => il.send(name, i, { timeout: 30_000 }))
    await eventually(() => true, 'a turn')
    const first = await (async () => {
      for (;;) {
        const r = await received(h.child)
        if (r.messages.length > 0) return r
      }
    })()
    expect(first.messages).toHaveLength(1)
    await h.child.call('open')
    const replies = (await Promise.all(sends)) as Array<Outcome['reply']>
    expect(replies.map((r) => r!.message.data)).toEqual([0, 1, 2, 3, 4])
    const r = await received(h.child)
    expect(r.maxRunning).toBe(1)
    expect(r.messages.map((m) => m.data).sort()).toEqual([0, 1, 2, 3, 4])
  })

  it('skips a sender that gave up before its turn', async () => {
    const name = uniqueName('msg')
    const h = await holder(name, {}, 'gate')
    const first = il.send(name, 'first', { timeout: 30_000 })
    for (;;) if ((await received(h.child)).messages.length > 0) break
    expect(await codeOf(il.send(name, 'gave up', { timeout: 300 }))).toBe('ETIMEDOUT')
    await h.child.call('open')
    await first
    expect(await il.send(name, 'last')).toHaveProperty('message.data', 'last')
    expect((await received(h.child)).messages.map((m) => m.data)).toEqual(['first', 'last'])
  })

  it('serves every sender of a start race exactly once: 10 senders find the lock held before it listens', async () => {
    const name = uniqueName('msg')
    const h = await holder(name, {}, null)
    const senders = Array.from({ length: 10 }, (_, i) => {
      const proc = fork(SENDER, [name, JSON.stringify({ timeout: 30_000 }), JSON.stringify(i)], {
        env: { ...process.env, IL_ROOT: ROOT },
        stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
      })
      let stdout = ''
      proc.stdout!.on('data', (c: Buffer) => (stdout += c.toString()))
      const sending = new Promise<void>((resolve) => proc.once('message', () => resolve()))
      const done = new Promise<Outcome>((resolve) => proc.once('exit', () => resolve(JSON.parse(stdout) as Outcome)))
      return { sending, done, pid: proc.pid }
    })
    await Promise.all(senders.map((s) => s.sending))
    await h.child.call('listen', h.path, 'echo')
    const outs = await Promise.all(senders.map((s) => s.done))
    expect(outs.map((o) => o.code)).toEqual(Array(10).fill(undefined))
    const r = await received(h.child)
    expect(r.messages.map((m) => m.data).sort((a, b) => (a as number) - (b as number))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    expect(new Set(r.messages.map((m) => m.pid)).size).toBe(10)
  })

  it('replaces its handler on a second onMessage, and stops at release (the socket goes)', async () => {
    const name = uniqueName('msg')
    const h = await holder(name, {}, 'throw')
    await h.child.call('listen', h.path, 'echo')
    expect(await il.send(name, 1)).toHaveProperty('message')
    expect(fs.existsSync(h.sock)).toBe(true)
    await h.child.call('release', h.path)
    expect(fs.existsSync(h.sock)).toBe(false)
    expect(await codeOf(il.send(name, 1, { timeout: 300 }))).toBe('ENOTRUNNING')
  })

  it('a killed holder leaves nothing that stops the next one from listening', async () => {
    const name = uniqueName('msg')
    const dead = await holder(name, {})
    await dead.child.kill('SIGKILL')
    expect(fs.lstatSync(dead.sock).isSocket()).toBe(true)
    expect(await codeOf(il.send(name, 1, { timeout: 300 }))).toBe('ENOTRUNNING')
    const next = await holder(name, {})
    const reply = (await il.send(name, 1)) as Outcome['reply']
    expect(reply!.message.pid).toBe(process.pid)
    expect((await received(next.child)).messages).toHaveLength(1)
  })

  it('listens in a directory whose path is too long for a socket address (through its descriptor)', async () => {
    let dir = tmpDir()
    while (dir.length < 140) dir = path.join(dir, 'a-rather-long-directory-name')
    fs.mkdirSync(dir, { recursive: true })
    const name = uniqueName('msg')
    const h = await holder(name, { dir })
    expect(Buffer.byteLength(h.sock)).toBeGreaterThan(107)
    const reply = (await il.send(name, 'far', { dir })) as Outcome['reply']
    expect(reply!.message.data).toBe('far')
    expect(fs.lstatSync(h.sock).isSocket()).toBe(true)
  })
})

describe('hostile clients', () => {
  // Each connects as a client would, then breaks the protocol; the holder
  // must drop it within its deadline (2 s; generous bound here), never call
  // the handler for it, and serve the next sender.
  const cases: Array<[string, (s: net.Socket) => void]> = [
    ['sends nothing', () => {}],
    ['sends garbage', (s) => s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
    ['announces a frame over 64 KiB', (s) => s.write(Buffer.from([0, 1, 0, 1, 1]))],
    ['sends half a frame and hangs', (s) => s.write(Buffer.from([0, 0, 0, 100, 1, 123, 34]))],
    ['sends a DATA frame first', (s) => s.write(Buffer.from([0, 0, 0, 0, 2]))],
    ['sends a HELLO that is not a request', (s) => s.write(Buffer.concat([Buffer.from([0, 0, 0, 2, 1]), Buffer.from('[]'), Buffer.from([0, 0, 0, 0, 2])]))],
  ]
  it.each(cases)('a client that %s is dropped, and later messages are served', async (_, act) => {
    const name = uniqueName('msg')
    const h = await holder(name, {})
    const socket = net.connect(h.sock)
    socket.on('error', () => {})
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
    const t = Date.now()
    act(socket)
    await new Promise<void>((resolve) => socket.once('close', () => resolve()))
    expect(Date.now() - t).toBeLessThan(15_000)
    expect((await il.send(name, 'after')) as Outcome['reply']).toHaveProperty('message.data', 'after')
    expect((await received(h.child)).messages.map((m) => m.data)).toEqual(['after'])
  })

  it('a client that hangs does not delay the next sender', async () => {
    const name = uniqueName('msg')
    const h = await holder(name, {})
    const socket = net.connect(h.sock)
    socket.on('error', () => {})
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
    socket.write(Buffer.from([0, 0, 0, 100, 1]))
    expect((await il.send(name, 'next', { timeout: 1500 })) as Outcome['reply']).toHaveProperty('message.data', 'next')
    socket.destroy()
    expect((await received(h.child)).messages).toHaveLength(1)
  })
})

describe('an endpoint that is not the holder’s', () => {
  it('is never sent anything: a socket planted at the path by a process that does not hold the lock', async () => {
    const name = uniqueName('msg')
    const h = await holder(name, {}, null)
    let bytes = 0
    const impostor = net.createServer((s) => s.on('data', (c: Buffer) => (bytes += c.length)))
    await new Promise<void>((resolve) => impostor.listen(h.sock, () => resolve()))
    try {
      expect(await codeOf(il.send(name, 'secret', { timeout: 500 }))).toBe('ENOLISTENER')
      expect(bytes).toBe(0)
      // The holder, once it listens, replaces the impostor's socket.
      await h.child.call('listen', h.path, 'echo')
      expect((await il.send(name, 'ok')) as Outcome['reply']).toHaveProperty('message.data', 'ok')
      expect(bytes).toBe(0)
    } finally {
      impostor.close()
    }
  })

  it.each(['a regular file', 'a symlink', 'a directory'])('%s planted at the path is replaced by the holder or refused, never followed', async (what) => {
    const name = uniqueName('msg')
    const target = path.join(tmpDir(), 'target')
    fs.writeFileSync(target, 'keep')
    const probe = il.tryLock(name)
    const sock = probe.path.replace(/\.lock$/, '.sock')
    probe.release()
    if (what === 'a regular file') fs.writeFileSync(sock, 'planted')
    else if (what === 'a symlink') fs.symlinkSync(target, sock)
    else fs.mkdirSync(sock)
    try {
      const h = await holder(name, {})
      if (what === 'a directory') {
        // rename cannot replace a directory with a socket: no endpoint, said so.
        expect(await codeOf(il.send(name, 1, { timeout: 300 }))).toBe('ENOLISTENER')
      } else {
        expect((await il.send(name, 'ok')) as Outcome['reply']).toHaveProperty('message.data', 'ok')
        expect(fs.lstatSync(sock).isSocket()).toBe(true)
      }
      expect(fs.readFileSync(target, 'utf8')).toBe('keep')
      await h.child.kill()
    } finally {
      fs.rmSync(sock, { recursive: true, force: true })
    }
  })

  it('the socket of a user-scope lock is private to its user', async () => {
    const name = uniqueName('msg')
    const h = await holder(name, {})
    expect(fs.lstatSync(h.sock).mode & 0o777).toBe(0o600)
    expect(fs.statSync(path.dirname(h.sock)).mode & 0o077).toBe(0)
  })
})

describe.skipIf(OTHER_USERS !== undefined)('other users', () => {
  const NOBODY = 65534

  it('machine scope: any local user may send, and the handler gets their uid from the kernel', async () => {
    const name = uniqueName('msg')
    const h = await holder(name, { scope: 'machine' })
    const other = await spawnChildAs(NOBODY)
    const { reply } = await other.call<{ reply: Outcome['reply'] }>('send', name, 'hi', { scope: 'machine' })
    expect(reply!.message.uid).toBe(NOBODY)
    expect(reply!.message.pid).toBe(other.pid)
    expect(fs.lstatSync(h.sock).mode & 0o777).toBe(0o666)
  })

  it('user scope: another user is refused, even where the socket is opened up to them', async () => {
    const dir = tmpDir()
    fs.chmodSync(dir, 0o777)
    const name = uniqueName('msg')
    const h = await holder(name, { dir })
    const other = await spawnChildAs(NOBODY)
    expect((await other.fails('send', name, 'shut', { dir, timeout: 500 })).code).toBe('ENOLISTENER')
    fs.chmodSync(h.sock, 0o666)
    expect((await other.fails('send', name, 'shut', { dir, timeout: 500 })).code).toBe('ENOLISTENER')
    expect((await received(h.child)).messages).toHaveLength(0)
  })
})

describe('loading', () => {
  it('the messages code is loaded only when used', () => {
    const script = `
      const il = require('instance-lock')
      const loaded = () => Object.keys(require.cache).some((f) => f.includes('messages'))
      const before = loaded()
      il.tryLock(${JSON.stringify(uniqueName('msg'))}).release()
      const afterLock = loaded()
      il.send('nobody-${process.pid}', 1, { timeout: 0 }).catch(() => {
        console.log(JSON.stringify([before, afterLock, loaded()]))
      })`
    const project = tmpDir()
    fs.mkdirSync(path.join(project, 'node_modules'))
    fs.symlinkSync(ROOT, path.join(project, 'node_modules', 'instance-lock'))
    fs.writeFileSync(path.join(project, 's.cjs'), script)
    const out = require('node:child_process').execFileSync(process.execPath, [path.join(project, 's.cjs')], { cwd: project, encoding: 'utf8' }) as string
    expect(JSON.parse(out)).toEqual([false, false, true])
  })
})
