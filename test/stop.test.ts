import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { inspect, lock, stop, tryLock } from '../src/index.js'
import { tmpDir, uniqueName } from './helpers.js'
import { COMMAND, Cli, forgeRecord, hasExited, isAlive, signalsSeen, startHolder, usurpOnceSignalled } from './stop-fixtures.js'

// stop() signals only the process the kernel proves to hold the lock, waits
// for the lock itself, and kills only when asked to.

describe.skipIf(process.platform !== 'linux')('stop(): the verified holder, and nobody else', () => {
  it('a lock nobody holds resolves stopped without a pid, even if its file names a live process', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    expect(await stop(name, { dir })).toEqual({ stopped: true, forced: false })

    // A lock file left behind, its record naming a live, unrelated process
    // (pid reuse after a crash looks exactly like this).
    const bystander = await startHolder(uniqueName(), {}, 'bystander')
    const file = tryLock(name, { dir })
    file.release()
    forgeRecord(file.path, name, bystander.pid)
    expect(await stop(name, { dir, force: true, timeout: 0 })).toEqual({ stopped: true, forced: false })
    expect(await signalsSeen(bystander)).toEqual([])
    expect(isAlive(bystander.pid)).toBe(true)
  })

  it('a held lock whose record names an unrelated live process: only the real holder is signalled', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const holder = await startHolder(name, { dir }, 'hold')
    const bystander = await startHolder(uniqueName(), {}, 'bystander')
    forgeRecord(holder.path!, name, bystander.pid)
    expect(inspect(name, { dir }).holder?.pid).toBe(bystander.pid)

    // The record is reported as read, naming the bystander; `pid` is whom the kernel vouched for.
    expect(await stop(name, { dir })).toEqual({ stopped: true, pid: holder.pid, forced: false, holder: expect.objectContaining({ name, pid: bystander.pid }) })
    expect(await holder.exited).toEqual({ code: null, signal: 'SIGTERM' })
    expect(await signalsSeen(bystander)).toEqual([])
    tryLock(name, { dir }).release()
  })

  it('resolves when the lock is free, not when the signalled process is gone', async () => {
    // `run` hands the lock to COMMAND, which ignores SIGTERM here: when the
    // wrapper (the proven holder) dies, COMMAND still holds the lock, and
    // stop() must find it, signal it, and wait for it.
    const dir = tmpDir()
    const name = uniqueName()
    const run = new Cli(['run', name, '--dir', dir, '--', process.execPath, COMMAND, 'stubborn'])
    const commandPid = await run.commandPid()
    expect(inspect(name, { dir }).holder?.pid).toBe(run.pid)

    let settled = false
    const stopping = stop(name, { dir, timeout: 60_000 }).finally(() => (settled = true))
    await run.line(/^ignored SIGTERM$/) // forwarded by the wrapper
    run.proc.kill('SIGKILL')
    await run.exited
    // stop() looks at the holders again and finds COMMAND, the heir.
    await expect.poll(() => run.stdout.match(/ignored SIGTERM/g)?.length, { timeout: 10_000 }).toBe(2)
    expect(settled).toBe(false)
    expect(inspect(name, { dir }).locked).toBe(true)

    run.endInput() // COMMAND exits; only now is the lock free
    expect(await stopping).toEqual({ stopped: true, pid: run.pid, forced: false, holder: expect.objectContaining({ name, pid: run.pid }) })
    await expect.poll(() => hasExited(commandPid), { timeout: 10_000 }).toBe(true)
    tryLock(name, { dir }).release()
  })

  it('a holder that ignores SIGTERM is killed only with force', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const holder = await startHolder(name, { dir }, 'stubborn')

    const t0 = Date.now()
    expect(await stop(name, { dir, timeout: 1000 })).toEqual({ stopped: false, pid: holder.pid, forced: false, holder: expect.objectContaining({ name, pid: holder.pid }) })
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900)
    expect(await signalsSeen(holder)).toEqual(['SIGTERM'])
    expect(inspect(name, { dir }).locked).toBe(true)

    expect(await stop(name, { dir, timeout: 1000, force: true })).toEqual({
      stopped: true,
      pid: holder.pid,
      forced: true,
      holder: expect.objectContaining({ name, pid: holder.pid }),
    })
    expect(await holder.exited).toEqual({ code: null, signal: 'SIGKILL' })
    tryLock(name, { dir }).release()
  })

  it('sends the signal asked for', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const holder = await startHolder(name, { dir }, 'hold')
    expect(await stop(name, { dir, signal: 'SIGUSR2' })).toEqual({ stopped: true, pid: holder.pid, forced: false, holder: expect.objectContaining({ name, pid: holder.pid }) })
    expect(await holder.exited).toEqual({ code: null, signal: 'SIGUSR2' })
  })

  it('a lock taken over at once by a waiting instance counts as stopped, and the new holder is left alone', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const old = await startHolder(name, { dir }, 'hold')
    // This process waits for the lock and takes it the moment the old holder dies.
    const next = lock(name, { dir })
    const r = await stop(name, { dir, timeout: 10_000 })
    // Stopped, though the lock is held again: by this process, the successor, whose record is reported.
    expect(r).toEqual({ stopped: true, pid: old.pid, forced: false, successor: process.pid, holder: expect.objectContaining({ name, pid: process.pid }) })
    const mine = await next
    expect(mine.released).toBe(false)
    mine.release()
  })

  it("a newcomer whose record still reads as the stopped instance's is left alone: who took the lock is the kernel's word", async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const old = await startHolder(name, { dir }, 'stubborn')
    const stopping = stop(name, { dir, timeout: 10_000 })
    // A record read a moment before a newcomer took the lock looks just like this.
    const newcomer = await usurpOnceSignalled(name, { dir }, old)
    // The newcomer's record is the old one's copy: not reported as its own.
    expect(await stopping).toEqual({ stopped: true, pid: old.pid, forced: false, successor: newcomer.pid })
    expect(await signalsSeen(newcomer)).toEqual([])
  })

  it('instance-lock stop names the newcomer that took the lock', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const old = await startHolder(name, { dir }, 'stubborn')
    const stopping = new Cli(['stop', name, '--dir', dir, '--timeout', '10000'])
    stopping.endInput()
    const newcomer = await usurpOnceSignalled(name, { dir }, old)
    const r = await stopping.result()
    // Exit 1: the lock is held afterwards, if by another.
    expect(r).toMatchObject({ code: 1, stdout: '' })
    expect(r.stderr).toContain(`: pid ${old.pid} let go, and another instance (pid ${newcomer.pid}) took the lock at once; it was left alone`)
    expect(await signalsSeen(newcomer)).toEqual([])
  })

  it("reports the holder it found: the record's name, key, data and readiness", async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const holder = await startHolder(name, { dir, key: 'eu-west', data: { port: 5858 } }, 'hold')
    const r = await stop(name, { dir, key: 'eu-west' })
    expect(r).toEqual({
      stopped: true,
      pid: holder.pid,
      forced: false,
      holder: expect.objectContaining({ pid: holder.pid, name, key: 'eu-west', scope: 'user', data: { port: 5858 } }),
    })
    expect(r.holder!.hostname).toBe(os.hostname())
    expect(Date.parse(r.holder!.startedAt)).toBeLessThanOrEqual(Date.now())
    expect(r).not.toHaveProperty('successor')
    expect(r).not.toHaveProperty('unverified')
  })

  it('refuses a lock this process holds instead of signalling itself', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const mine = tryLock(name, { dir })
    await expect(stop(name, { dir })).rejects.toMatchObject({ name: 'LockedError', code: 'ELOCKED' })
    expect(mine.released).toBe(false)
    mine.release()
  })

  it('checks every argument before touching anything', async () => {
    const parent = tmpDir()
    const dir = path.join(parent, 'never-created')
    const name = uniqueName()
    const cases: Array<[unknown, unknown, string]> = [
      [42, { dir }, 'ERR_INVALID_ARG_TYPE'],
      ['a/b', { dir }, 'ERR_INVALID_ARG_VALUE'],
      ['', { dir }, 'ERR_INVALID_ARG_VALUE'],
      [name, { dir, signal: 'SIGFOO' }, 'ERR_INVALID_ARG_VALUE'],
      [name, { dir, signal: 15 }, 'ERR_INVALID_ARG_TYPE'],
      [name, { dir, timeout: -1 }, 'ERR_OUT_OF_RANGE'],
      [name, { dir, timeout: '10' }, 'ERR_INVALID_ARG_TYPE'],
      [name, { dir, force: 'yes' }, 'ERR_INVALID_ARG_TYPE'],
      [name, { dir, scope: 'galaxy' }, 'ERR_INVALID_ARG_VALUE'],
      [name, 'options', 'ERR_INVALID_ARG_TYPE'],
    ]
    for (const [n, o, code] of cases) {
      // @ts-expect-error deliberately wrong types
      await expect(stop(n, o), JSON.stringify([n, o])).rejects.toMatchObject({ code })
    }
    expect(fs.existsSync(dir)).toBe(false)
  })
})
