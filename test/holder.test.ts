import { spawn } from 'node:child_process'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { inspect, list, tryLock } from '../src/index.js'
import type { LockedError, LockStatus } from '../src/index.js'
import { flockHolders, flockTaker } from '../src/backends/flock/proc.js'
import { FIXTURES, tmpDir, uniqueName } from './helpers.js'
import { COMMAND, Cli, cli, forgeRecord, hasExited, startHolder, track } from './stop-fixtures.js'

// The pid that inspect(), list(), LockedError, the guard's message and the
// command line name is the process holding the lock now, as the kernel shows
// it: not a pid from a record whose process has since exited or was reused.

const node = process.execPath

/** singleInstance(name, options) in a fresh process (fixtures/guard.cjs), to its exit. */
function guard(name: string, options: object): Promise<{ code: number | null; stderr: string }> {
  const proc = spawn(node, [path.join(FIXTURES, 'guard.cjs'), name, JSON.stringify(options)], { stdio: ['pipe', 'ignore', 'pipe'] })
  track(proc.pid!)
  let stderr = ''
  proc.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s))
  return new Promise((resolve) => proc.once('close', (code) => resolve({ code, stderr })))
}

function lockedBy(name: string, dir: string): LockedError {
  try {
    tryLock(name, { dir }).release()
  } catch (err) {
    return err as LockedError
  }
  throw new Error('tryLock succeeded on a held lock')
}

describe.skipIf(process.platform !== 'linux')('the holder named (Linux)', () => {
  it('finds the holder in /proc/locks however long it is', () => {
    const dir = tmpDir()
    // Some 60 bytes a lock: 600 locks make /proc/locks several times the first read's buffer.
    const locks = Array.from({ length: 600 }, (_, i) => tryLock(`many-${i}`, { dir }))
    try {
      // The kernel lists them in an order of its own: ask for the first and the last taken.
      for (const l of [locks[0]!, locks[locks.length - 1]!]) {
        expect(flockTaker(l.path)).toBe(process.pid)
        expect(flockHolders(l.path)).toEqual([process.pid])
      }
    } finally {
      for (const l of locks) l.release()
    }
  })

  /** `run` whose COMMAND leaves a daemon holding the lock and exits; then instance-lock exits. */
  async function daemonHolding(name: string, dir: string): Promise<{ daemon: number; wrapper: number }> {
    // sh starts sleep in the background with the lock's fd 3 and exits; the
    // record names instance-lock, which has exited too.
    const first = new Cli(['run', name, '--dir', dir, '--', 'sh', '-c', 'sleep 60 </dev/null >/dev/null 2>&1 & echo $!'])
    first.endInput()
    const r = await first.result()
    expect(r.code).toBe(0)
    const daemon = Number(r.stdout.trim())
    track(daemon)
    expect(hasExited(first.pid)).toBe(true)
    expect(hasExited(daemon)).toBe(false)
    return { daemon, wrapper: first.pid }
  }

  it("a daemon that run's COMMAND left holding the lock: inspect(), list() and LockedError name it", async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const { daemon, wrapper } = await daemonHolding(name, dir)
    const s = inspect(name, { dir })
    expect(s.locked).toBe(true)
    expect(s.holder).toMatchObject({ pid: daemon, recordedPid: wrapper, data: { command: expect.stringContaining('sleep 60') } })
    expect(list({ dir }).find((l) => l.name === name)?.holder?.pid).toBe(daemon)
    const err = lockedBy(name, dir)
    expect(err.code).toBe('ELOCKED')
    expect(err.holder?.pid).toBe(daemon)
  })

  it("a daemon that run's COMMAND left holding the lock: a second run and the guard name it", async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const { daemon } = await daemonHolding(name, dir)
    const second = await cli('run', name, '--dir', dir, '--', node, '-e', '0')
    expect(second.code).toBe(1)
    expect(second.stderr).toContain(`as pid ${daemon} on `)
    const g = await guard(name, { dir })
    expect(g.code).toBe(1)
    expect(g.stderr).toContain(`as pid ${daemon} on `)
  })

  it("a daemon that run's COMMAND left holding the lock: status and stop name it, and stop ends it", async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const { daemon } = await daemonHolding(name, dir)
    const json = await cli('status', name, '--dir', dir, '--json')
    expect(json.code).toBe(0)
    expect((JSON.parse(json.stdout) as LockStatus).holder?.pid).toBe(daemon)
    expect((await cli('status', name, '--dir', dir)).stdout).toContain(`held by pid ${daemon} on `)

    const stopped = await cli('stop', name, '--dir', dir)
    expect(stopped.code).toBe(0)
    expect(stopped.stdout).toContain(`pid ${daemon} exited`)
    await expect.poll(() => hasExited(daemon), { timeout: 10_000 }).toBe(true)
    tryLock(name, { dir }).release()
  })

  it("while run holds the lock, status, a conflict and stop all name the same pid: instance-lock's", async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const run = new Cli(['run', name, '--dir', dir, '--', node, COMMAND, 'hold'])
    const command = await run.commandPid()

    const holder = inspect(name, { dir }).holder
    expect(holder?.pid).toBe(run.pid)
    expect(holder).not.toHaveProperty('recordedPid')
    const json = await cli('status', name, '--dir', dir, '--json')
    expect((JSON.parse(json.stdout) as LockStatus).holder?.pid).toBe(run.pid)
    const conflict = await cli('run', name, '--dir', dir, '--', node, '-e', '0')
    expect(conflict.code).toBe(1)
    expect(conflict.stderr).toContain(`as pid ${run.pid} on `)

    // instance-lock passes SIGTERM on to COMMAND, which dies of it.
    const stopped = await cli('stop', name, '--dir', dir)
    expect(stopped.code).toBe(0)
    expect(stopped.stdout).toContain(`pid ${run.pid} exited`)
    expect((await run.result()).code).toBe(128 + 15)
    await expect.poll(() => hasExited(command), { timeout: 10_000 }).toBe(true)
  })

  it('a record naming a live process that started after it was written (a reused pid) names the real holder', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const holder = await startHolder(name, { dir }, 'hold')
    const bystander = await startHolder(uniqueName(), { dir }, 'bystander')
    // As if the record's process had died long ago and its pid been reused.
    forgeRecord(holder.path!, name, bystander.pid, new Date(Date.now() - 3_600_000))
    expect(inspect(name, { dir }).holder).toMatchObject({ pid: holder.pid, recordedPid: bystander.pid })
    expect(lockedBy(name, dir).holder?.pid).toBe(holder.pid)
  })
})
