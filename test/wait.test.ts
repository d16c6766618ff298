import { fork, spawn } from 'node:child_process'
import { setMaxListeners } from 'node:events'
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import readline from 'node:readline'
import { Worker } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'
import { LockedError, inspect, lock, tryLock, type Lock } from '../src/index.js'
import { FIXTURES, ROOT, eventually, spawnChild, tmpDir, uniqueName } from './helpers.js'

/** Runs fixtures/waiter.cjs; resolves each stdout line through `lines`. */
function waiter(mode: string, name: string, dir: string) {
  const proc = spawn(process.execPath, [path.join(FIXTURES, 'waiter.cjs'), mode, name, dir], { stdio: ['ignore', 'pipe', 'inherit'] })
  const lines: string[] = []
  const listeners: Array<() => void> = []
  readline.createInterface({ input: proc.stdout }).on('line', (l) => {
    lines.push(l)
    for (const f of listeners.splice(0)) f()
  })
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })))
  async function line(match: RegExp): Promise<string> {
    for (;;) {
      const found = lines.find((l) => match.test(l))
      if (found !== undefined) return found
      await Promise.race([
        new Promise<void>((r) => listeners.push(r)),
        exited.then(() => {
          throw new Error(`exited before printing ${match}: ${lines.join('|')}`)
        }),
      ])
    }
  }
  return { proc, lines, line, exited }
}

/** A lock of a fresh name in a fresh directory, held by a child process. */
async function heldElsewhere() {
  const dir = tmpDir()
  const name = uniqueName()
  const child = await spawnChild()
  const { path } = await child.call<{ path: string }>('tryLock', name, { dir })
  return { dir, name, child, path }
}

function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length
}

describe('lock(): waiting', () => {
  it('gets the lock when the holder in another process releases it', async () => {
    const { dir, name, child, path: p } = await heldElsewhere()
    let acquired: Lock | undefined
    const pending = lock(name, { dir }).then((l) => (acquired = l))
    await new Promise((r) => setImmediate(r))
    expect(acquired).toBeUndefined()
    await child.call('release', p)
    const l = await pending
    expect(l.released).toBe(false)
    expect(() => tryLock(name, { dir })).toThrow(LockedError)
    l.release()
  })

  it('gets the lock when the holder is SIGKILLed', async () => {
    const { dir, name, child } = await heldElsewhere()
    const pending = lock(name, { dir })
    await child.kill('SIGKILL')
    const l = await pending
    expect(l.acquiredAt.getTime()).toBeLessThanOrEqual(Date.now())
    l.release()
  })

  it('times out with LockedError naming the holder, within a generous window', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const child = await spawnChild()
    await child.call('tryLock', name, { dir, data: { port: 8080 } })
    const t0 = Date.now()
    const err = await lock(name, { dir, timeout: 300 }).catch((e) => e)
    const elapsed = Date.now() - t0
    expect(err).toBeInstanceOf(LockedError)
    expect(err.code).toBe('ELOCKED')
    expect(err.holder).toMatchObject({ pid: child.pid, data: { port: 8080 } })
    expect(elapsed).toBeGreaterThanOrEqual(290)
    expect(elapsed).toBeLessThan(10_000)
  })

  it('timeout 0 behaves like tryLock', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const l = await lock(name, { dir, timeout: 0 })
    await expect(lock(name, { dir, timeout: 0 })).rejects.toMatchObject({ code: 'ELOCKED' })
    l.release()
  })

  it('a lock released in the same turn as the deadline, before it, is taken, not reported held by its gone holder', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    for (let round = 0; round < 5; round++) {
      const held = tryLock(name, { dir })
      const pending = lock(name, { dir, timeout: 50 })
      setTimeout(() => held.release(), 10)
      // A busy loop: both timers are due when it ends, the release first.
      const end = Date.now() + 200
      while (Date.now() < end);
      const l = await pending
      expect(l.released).toBe(false)
      l.release()
    }
  })

  it('rejects at once for an already-aborted signal, and on abort while waiting, leaving no descriptor behind', async () => {
    const { dir, name } = await heldElsewhere()
    const fds = openFds()
    await expect(lock(name, { dir, timeout: 1 })).rejects.toMatchObject({ code: 'ELOCKED' })
    const reason = new Error('why')
    await expect(lock(name, { dir, signal: AbortSignal.abort(reason) })).rejects.toMatchObject({ name: 'AbortError', cause: reason })
    const ac = new AbortController()
    const pending = lock(name, { dir, signal: ac.signal })
    await new Promise((r) => setImmediate(r))
    const t0 = Date.now()
    ac.abort()
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' })
    expect(Date.now() - t0).toBeLessThan(1000)
    // A cancelled blocking wait's descriptor is closed once its thread has
    // reported, a moment later.
    await eventually(() => openFds() === fds, 'descriptors of settled waits closed')
  })

  it('16 pending waiters leave the thread pool free: fs and crypto still complete', async () => {
    const dir = tmpDir()
    const child = await spawnChild()
    const names = Array.from({ length: 16 }, (_, i) => uniqueName(`pool${i}`))
    for (const n of names) await child.call('tryLock', n, { dir })
    const ac = new AbortController()
    // One signal for all 16 waits: each adds a listener.
    setMaxListeners(names.length, ac.signal)
    const waits = names.map((n) => lock(n, { dir, signal: ac.signal }).catch((e) => e))
    const t0 = Date.now()
    await fs.promises.readFile(__filename)
    await new Promise<void>((resolve, reject) => crypto.pbkdf2('pw', 'salt', 1000, 32, 'sha256', (err) => (err ? reject(err) : resolve())))
    // Generous: a blocked pool would never complete these while the locks are held.
    expect(Date.now() - t0).toBeLessThan(5000)
    ac.abort()
    expect((await Promise.all(waits)).every((e) => e.name === 'AbortError')).toBe(true)
  })

  it('waits for a holder in this same process, then gets the lock when it is released', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const first = tryLock(name, { dir })
    let second: Lock | undefined
    const pending = lock(name, { dir }).then((l) => (second = l))
    await new Promise((r) => setTimeout(r, 50))
    expect(second).toBeUndefined()
    first.release()
    await pending
    expect(second!.released).toBe(false)
    second!.release()
  })

  it('each release hands the lock to one waiter, in FIFO order within a process', async () => {
    const { dir, name, child, path: p } = await heldElsewhere()
    const order: number[] = []
    const locks: Lock[] = []
    const waits = [0, 1, 2, 3].map((i) =>
      lock(name, { dir }).then((l) => {
        order.push(i)
        locks.push(l)
      }),
    )
    await child.call('release', p)
    for (let i = 0; i < 4; i++) {
      await waits[i]
      // The others keep waiting while this one holds it.
      expect(order).toEqual([...Array(i + 1).keys()])
      locks[i]!.release()
    }
  })

  it('gets the lock when the holder closes another descriptor first and unlocks a moment later', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    tryLock(name, { dir }).release()
    const holder = fork(path.join(FIXTURES, 'late-unlock.cjs'), [path.join(dir, `${name}.lock`)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    try {
      await new Promise((r) => holder.once('message', r))
      const pending = lock(name, { dir })
      await new Promise((r) => setImmediate(r))
      const t0 = Date.now()
      holder.send('go')
      const l = await pending
      // A waiter blocked in flock is woken by the unlock itself, not by the close.
      expect(Date.now() - t0).toBeLessThan(200)
      l.release()
    } finally {
      holder.kill()
    }
  })

  it('follows the lock file when another is renamed over it while waiting, and ignores the orphan', async () => {
    const { dir, name, child, path: p } = await heldElsewhere()
    let acquired = false
    const pending = lock(name, { dir }).then((l) => {
      acquired = true
      return l
    })
    await new Promise((r) => setImmediate(r))
    // A newcomer's held lock file takes the old one's place.
    const other = await spawnChild()
    const aside = tmpDir()
    const { path: q } = await other.call<{ path: string }>('tryLock', name, { dir: aside })
    fs.renameSync(q, p)
    // The old holder releases the orphaned inode: the waiter must not count that.
    await child.call('release', p)
    await new Promise((r) => setTimeout(r, 600))
    expect(acquired).toBe(false)
    await other.call('release', q)
    const l = await pending
    expect(fs.statSync(p).ino).toBe(fs.fstatSync(fs.openSync(p, 'r')).ino)
    expect(inspect(name, { dir }).holder?.pid).toBe(process.pid)
    l.release()
  })

  it('takes a new lock file created where the old one was deleted, though the old holder keeps the orphan', async () => {
    const { dir, name, child, path: p } = await heldElsewhere()
    const pending = lock(name, { dir })
    await new Promise((r) => setImmediate(r))
    fs.unlinkSync(p)
    // Generous: the waiter looks every 250 ms.
    const l = await Promise.race([pending, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('still waiting on the orphan')), 5000).unref())])
    expect(inspect(name, { dir }).holder?.pid).toBe(process.pid)
    expect(() => tryLock(name, { dir })).toThrow(LockedError)
    l.release()
    await child.call('release', p)
  })
})

function threads(): number {
  return fs.readdirSync('/proc/self/task').length
}

/**
 * This process's threads named as the addon names its waiting threads and
 * blocked in flock(2) now (parked ones wait on a futex).
 */
function threadsWaitingInFlock(): number {
  const flock = process.arch === 'arm64' ? '32' : '73'
  return fs.readdirSync('/proc/self/task').filter((t) => {
    try {
      return fs.readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim() === 'instance-lock' && fs.readFileSync(`/proc/self/task/${t}/syscall`, 'utf8').split(' ')[0] === flock
    } catch {
      return false // ended meanwhile
    }
  }).length
}

describe.skipIf(process.platform !== 'linux')('lock(): waiting threads (Linux)', () => {
  it('the holder record and acquiredAt carry the time the waiting thread took the lock', async () => {
    const { dir, name, child, path: p } = await heldElsewhere()
    const pending = lock(name, { dir, data: { port: 1 } })
    await new Promise((r) => setTimeout(r, 20))
    const before = Date.now()
    await child.call('release', p)
    const l = await pending
    const holder = inspect(name, { dir }).holder!
    expect(holder).toMatchObject({ pid: process.pid, name, scope: 'user', data: { port: 1 } })
    expect(holder.startedAt).toBe(l.acquiredAt.toISOString())
    expect(l.acquiredAt.getTime()).toBeGreaterThanOrEqual(before - 1)
    expect(l.acquiredAt.getTime()).toBeLessThanOrEqual(Date.now())
    l.release()
  })

  it('a waiting thread is named instance-lock (ps -L, top -H), and a cancelled one ends', async () => {
    const { dir, name } = await heldElsewhere()
    expect(threadsWaitingInFlock()).toBe(0)
    const ac = new AbortController()
    const pending = lock(name, { dir, signal: ac.signal }).catch((e: Error) => e)
    await eventually(() => threadsWaitingInFlock() === 1, 'a thread named instance-lock blocked in flock')
    ac.abort()
    expect(await pending).toMatchObject({ name: 'AbortError' })
    await eventually(() => threadsWaitingInFlock() === 0, 'the cancelled thread gone from flock')
  })

  it('threads are reused, and cancelled waits leave at most a few parked ones', async () => {
    const dir = tmpDir()
    const child = await spawnChild()
    const names = Array.from({ length: 12 }, (_, i) => uniqueName(`th${i}`))
    for (const n of names) await child.call('tryLock', n, { dir })
    const base = threads()
    for (let round = 0; round < 5; round++) {
      const settled = await Promise.all(names.map((n) => lock(n, { dir, timeout: 30 }).catch((e: Error) => e)))
      expect(settled.every((e) => e instanceof LockedError)).toBe(true)
    }
    // At most four threads stay parked for the next waits (none of a
    // cancelled wait: cancelling ends its thread).
    await eventually(() => threads() <= base + 4, `threads back to at most ${base} + 4, now ${threads()}`)
    const acs = names.map(() => new AbortController())
    const waits = names.map((n, i) => lock(n, { dir, signal: acs[i]!.signal }).catch((e: Error) => e))
    await new Promise((r) => setTimeout(r, 50))
    // One thread per blocked wait (parked ones, up to four, are reused).
    expect(threads()).toBeGreaterThanOrEqual(base + names.length - 4)
    for (const ac of acs) ac.abort()
    await Promise.all(waits)
    await eventually(() => threads() <= base + 4, `threads back to at most ${base} + 4, now ${threads()}`)
  })

  it('a wait that times out just as the holder lets go never keeps the lock', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const child = await spawnChild()
    for (let i = 0; i < 40; i++) {
      const { path: p } = await child.call<{ path: string }>('tryLock', name, { dir })
      const pending = lock(name, { dir, timeout: 5 + (i % 10) }).catch((e: Error) => e)
      const released = child.call('release', p)
      const r = await pending
      await released
      if (!(r instanceof Error)) r.release()
      else expect(r).toBeInstanceOf(LockedError)
      // Whatever won the race, nobody holds it once the wait has settled
      // and its thread has reported.
      await eventually(() => !inspect(name, { dir }).locked, 'lock free after the wait settled')
    }
  })

  it('a Worker ended while its lock() waits: no crash, its thread is stopped, the lock stays usable', async () => {
    const { dir, name, child, path: p } = await heldElsewhere()
    const base = threads()
    const w = new Worker(
      `const { parentPort, workerData: d } = require('node:worker_threads')
      require(d.root).lock(d.name, { dir: d.dir })
      parentPort.postMessage('waiting')`,
      { eval: true, workerData: { root: ROOT, name, dir } },
    )
    await new Promise((r) => w.once('message', r))
    await w.terminate()
    await eventually(() => threads() <= base + 4, `threads back to at most ${base} + 4, now ${threads()}`)
    await child.call('release', p)
    const l = await lock(name, { dir, timeout: 5000 })
    l.release()
  })
})

describe('lock(): process lifetime', () => {
  it('a pending lock() keeps the process alive until it is acquired', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const held = tryLock(name, { dir })
    const w = waiter('alive', name, dir)
    await w.line(/^waiting$/)
    held.release()
    await w.line(/^acquired$/)
    expect(await w.exited).toEqual({ code: 0, signal: null })
  })

  it('once settled by timeout or abort, nothing keeps the process alive', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const held = tryLock(name, { dir })
    const t = waiter('timeout', name, dir)
    const a = waiter('abort', name, dir)
    await t.line(/^settled ELOCKED$/)
    await a.line(/^settled AbortError$/)
    expect(await t.exited).toEqual({ code: 0, signal: null })
    expect(await a.exited).toEqual({ code: 0, signal: null })
    held.release()
  })

  it('the process can exit while waiters pend', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const held = tryLock(name, { dir })
    const w = waiter('exit-pending', name, dir)
    expect(await w.exited).toEqual({ code: 7, signal: null })
    held.release()
  })

  it('an idle waiter uses next to no CPU', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const held = tryLock(name, { dir })
    const w = waiter('idle-cpu', name, dir)
    const line = await w.line(/^cpu /)
    // ≤ 1 % is the goal (measured exactly by the benchmark); this bound is
    // generous so a loaded machine cannot make it flaky.
    expect(Number(line.slice(4))).toBeLessThan(5)
    await w.exited
    held.release()
  })
})
