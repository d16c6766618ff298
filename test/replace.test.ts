import { fork } from 'node:child_process'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { LockedError, inspect, singleInstance, tryLock } from '../src/index.js'
import { flockHolders } from '../src/backends/flock/proc.js'
import { FIXTURES, tmpDir, uniqueName } from './helpers.js'
import { signalsSeen, startHolder, track, usurpOnceSignalled } from './stop-fixtures.js'

// singleInstance(name, { onLocked: 'replace' }): the restart of a dev server.
// The old instance is stopped as stop() does and the lock taken; replacers
// racing each other end with exactly one holder.

describe.skipIf(process.platform !== 'linux')("singleInstance(..., { onLocked: 'replace' })", () => {
  it('takes a free lock at once', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const l = await singleInstance(name, { dir, onLocked: 'replace' })
    expect(inspect(name, { dir }).holder?.pid).toBe(process.pid)
    l.release()
  })

  it('stops the running instance and takes its lock, with the data given', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const old = await startHolder(name, { dir }, 'hold')
    const l = await singleInstance(name, { dir, onLocked: 'replace', data: { port: 8080 } })
    expect(await old.exited).toEqual({ code: null, signal: 'SIGTERM' })
    expect(inspect(name, { dir }).holder).toMatchObject({ pid: process.pid, data: { port: 8080 } })
    expect(() => tryLock(name, { dir })).toThrow(expect.objectContaining({ code: 'ELOCKED' }))
    l.release()
  })

  it('kills an instance that ignores SIGTERM after `timeout`', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const old = await startHolder(name, { dir }, 'stubborn')
    const t0 = Date.now()
    const l = await singleInstance(name, { dir, onLocked: 'replace', timeout: 1000 })
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900)
    expect(await old.exited).toEqual({ code: null, signal: 'SIGKILL' })
    l.release()
  })

  it('two replacers racing end with exactly one holder', async () => {
    for (let round = 0; round < 3; round++) {
      const dir = tmpDir()
      const name = uniqueName()
      const old = await startHolder(name, { dir }, 'hold')
      const racers = await Promise.all(
        [0, 1].map(async () => {
          const proc = fork(path.join(FIXTURES, 'replacer.cjs'), [name, JSON.stringify({ dir })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
          track(proc.pid!)
          const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })))
          await new Promise((resolve) => proc.once('message', resolve))
          return { proc, exited }
        }),
      )
      // A racer killed by a signal (sent by the other) fails the test rather than its timeout.
      const outcomes = racers.map((r) =>
        Promise.race([
          new Promise<{ held?: number; error?: string }>((resolve) => r.proc.once('message', (m) => resolve(m as { held?: number; error?: string }))),
          r.exited.then((e) => ((e as { signal: string | null }).signal === null ? new Promise<never>(() => {}) : { exited: e })),
        ]),
      )
      for (const r of racers) r.proc.send('go')
      const results = await Promise.all(outcomes)
      for (const r of results) expect(r).not.toHaveProperty('exited')
      expect(await old.exited).toEqual({ code: null, signal: 'SIGTERM' })

      const reports = results as Array<{ held?: number; error?: string }>
      const claimed = reports.filter((r) => r.held !== undefined).map((r) => r.held!)
      expect(claimed.length).toBeGreaterThanOrEqual(1)
      for (const r of reports) if (r.error !== undefined) expect(r.error).toBe('ELOCKED')
      // Whoever claimed it last holds it, alone; the kernel says so.
      const holders = flockHolders(inspect(name, { dir }).path)
      expect(holders).toHaveLength(1)
      expect(claimed).toContain(holders[0])
      for (const r of racers) r.proc.kill('SIGKILL')
      await Promise.all(racers.map((r) => r.exited))
    }
  })

  it("leaves alone a newcomer that took the lock as the old instance let go, though its record reads as the old one's", async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const old = await startHolder(name, { dir }, 'stubborn')
    const replacing = singleInstance(name, { dir, onLocked: 'replace', timeout: 10_000 })
    const settled = replacing.catch((err: unknown) => err)
    const newcomer = await usurpOnceSignalled(name, { dir }, old)
    const err = (await settled) as LockedError
    expect(err).toMatchObject({ name: 'LockedError', code: 'ELOCKED' })
    // Not blamed on the old instance, whose pid the newcomer's record names.
    expect(err.holder?.pid).not.toBe(old.pid)
    expect(await signalsSeen(newcomer)).toEqual([])
  })

  it('refuses a lock this process holds', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const mine = tryLock(name, { dir })
    await expect(singleInstance(name, { dir, onLocked: 'replace' })).rejects.toMatchObject({ code: 'ELOCKED' })
    expect(mine.released).toBe(false)
    mine.release()
  })

  it('checks its options synchronously, before anything is touched', () => {
    const dir = tmpDir()
    const name = uniqueName()
    // @ts-expect-error deliberately wrong
    expect(() => singleInstance(name, { dir, onLocked: 'restart' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
    // @ts-expect-error deliberately wrong
    expect(() => singleInstance(name, { dir, onLocked: 'replace', timeout: '5s' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
    expect(() => singleInstance(name, { dir, onLocked: 'replace', timeout: -5 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }))
    expect(inspect(name, { dir }).locked).toBe(false)
  })
})
