import { fork, spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { stop } from '../src/index.js'
import { type Reach, seam, signalHolder } from '../src/backends/flock/signal.js'
import { FIXTURES, tmpDir, uniqueName } from './helpers.js'
import { isAlive, track } from './stop-fixtures.js'

// A pid is a name, not a process: a holder proven to hold the lock can exit
// on its own, and its pid go to an unrelated process, before it is signalled.
// stop() must then signal nobody.

afterEach(() => {
  delete seam.verified
})

function esrch(): Error {
  return Object.assign(new Error('ESRCH'), { code: 'ESRCH' })
}

/** A Reach that logs every step; `pidfds: false` is a system without them. */
function fakeReach(o: { pidfds?: boolean; open?: () => never; holds?: boolean; send?: () => never } = {}): Reach<string> & { log: string[] } {
  const log: string[] = []
  return {
    log,
    open(pid) {
      log.push(`open ${pid}`)
      o.open?.()
      return o.pidfds === false ? null : `fd${pid}`
    },
    holds(pid) {
      log.push(`holds ${pid}`)
      return o.holds ?? true
    },
    send(h, s) {
      log.push(`send ${h} ${s}`)
      o.send?.()
    },
    kill(pid, s) {
      log.push(`kill ${pid} ${s}`)
    },
    close(h) {
      log.push(`close ${h}`)
    },
  }
}

describe('signalHolder: whom a stop signals', () => {
  it('opens a handle on the process first, verifies it holds the lock second, and signals through the handle', () => {
    const r = fakeReach()
    expect(signalHolder(7, 'SIGTERM', r)).toBe(true)
    expect(r.log).toEqual(['open 7', 'holds 7', 'send fd7 SIGTERM', 'close fd7'])
  })

  it('a process that exits after it was verified is not signalled, nor the one with its pid now', () => {
    const r = fakeReach({
      send: () => {
        throw esrch()
      },
    })
    expect(signalHolder(7, 'SIGTERM', r)).toBe(false)
    expect(r.log).toEqual(['open 7', 'holds 7', 'send fd7 SIGTERM', 'close fd7'])
  })

  it('a process that no longer holds the lock is not signalled', () => {
    const r = fakeReach({ holds: false })
    expect(signalHolder(7, 'SIGTERM', r)).toBe(false)
    expect(r.log).toEqual(['open 7', 'holds 7', 'close fd7'])
  })

  it('a pid with no process is not looked at further', () => {
    const r = fakeReach({
      open: () => {
        throw esrch()
      },
    })
    expect(signalHolder(7, 'SIGTERM', r)).toBe(false)
    expect(r.log).toEqual(['open 7'])
  })

  it('without pidfds: verified right before it is signalled by pid', () => {
    const r = fakeReach({ pidfds: false })
    expect(signalHolder(7, 'SIGHUP', r)).toBe(true)
    expect(r.log).toEqual(['open 7', 'holds 7', 'kill 7 SIGHUP'])
    const q = fakeReach({ pidfds: false, holds: false })
    expect(signalHolder(7, 'SIGHUP', q)).toBe(false)
    expect(q.log).toEqual(['open 7', 'holds 7'])
  })

  it('other failures are thrown, and the handle is closed', () => {
    const eperm = Object.assign(new Error('EPERM'), { code: 'EPERM' })
    const r = fakeReach({
      send: () => {
        throw eperm
      },
    })
    expect(() => signalHolder(7, 'SIGTERM', r)).toThrow(eperm)
    expect(r.log.at(-1)).toBe('close fd7')
  })
})

// Forcing the next pid: ns_last_pid is writable by root in its pid namespace.
const NS_LAST_PID = '/proc/sys/kernel/ns_last_pid'

function cannotForcePids(): string | undefined {
  if (process.platform !== 'linux') return 'pidfds and /proc proofs are Linux only'
  if (process.getuid!() !== 0) return `needs root to write ${NS_LAST_PID} and reuse a pid at will`
  try {
    fs.accessSync(NS_LAST_PID, fs.constants.W_OK)
  } catch {
    return `${NS_LAST_PID} is not writable here`
  }
  return undefined
}

/** Blocks the thread until `done()` or `ms` have passed; false if time ran out. */
function blockUntil(done: () => boolean, ms: number): boolean {
  const tick = new Int32Array(new SharedArrayBuffer(4))
  const deadline = Date.now() + ms
  while (!done()) {
    if (Date.now() > deadline) return false
    Atomics.wait(tick, 0, 0, 1)
  }
  return true
}

/** `sleep 30` with pid `pid`, which must be free; other processes on the machine can take it first, so this retries. */
function sleepWithPid(pid: number): ChildProcess {
  for (let i = 0; i < 200; i++) {
    fs.writeFileSync(NS_LAST_PID, String(pid - 1))
    const s = spawn('sleep', ['30'], { stdio: 'ignore' })
    track(s.pid!)
    if (s.pid === pid) return s
    s.kill('SIGKILL')
  }
  throw new Error(`pid ${pid} could not be given to a new process`)
}

describe('stop(): a holder that exits and whose pid is reused before its signal', () => {
  it('the process that has its pid now is not signalled, and the lock is reported free', async (ctx) => {
    const why = cannotForcePids()
    if (why !== undefined) {
      console.warn(`skipped: ${why}`)
      ctx.skip(why)
    }
    const dir = tmpDir()
    const name = uniqueName()
    // The holder is the reaper's child: it is reaped while this thread is
    // blocked in the seam, which its own child could not be.
    const reaper = fork(path.join(FIXTURES, 'reaper.cjs'), [name, JSON.stringify({ dir }), 'hold'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    track(reaper.pid!)
    const holder = await new Promise<number>((resolve, reject) => {
      reaper.once('message', (m) => resolve((m as { pid: number }).pid))
      reaper.once('exit', (code, signal) => reject(new Error(`reaper.cjs exited early: ${code ?? signal}`)))
    })
    track(holder)

    let sleeper: ChildProcess | undefined
    seam.verified = (pid) => {
      if (pid !== holder) return
      delete seam.verified
      // Verified as the holder; now it exits on its own, and its pid goes to
      // an unrelated process before stop() signals.
      process.kill(holder, 'SIGKILL')
      if (!blockUntil(() => !fs.existsSync(`/proc/${holder}`), 30_000)) throw new Error(`pid ${holder} was not reaped`)
      sleeper = sleepWithPid(holder)
    }

    const r = await stop(name, { dir, timeout: 10_000 })
    expect(sleeper?.pid).toBe(holder)
    expect(isAlive(holder)).toBe(true)
    // A fatal signal sent before this SIGKILL would be the one it died of.
    const died = new Promise<NodeJS.Signals | null>((resolve) => sleeper!.once('exit', (_code, signal) => resolve(signal)))
    sleeper!.kill('SIGKILL')
    expect(await died).toBe('SIGKILL')
    // Nobody signalled: no pid; the record read is the exited holder's.
    expect(r).toEqual({ stopped: true, forced: false, holder: expect.objectContaining({ name, pid: holder }) })
  })
})
