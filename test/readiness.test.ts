import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { inspect, list, tryLock, waitFor } from '../src/index.js'
import type { LockStatus } from '../src/index.js'
import { makeRecord, parseRecord } from '../src/core/record.js'
import { ROOT, spawnChild, tmpDir, uniqueName } from './helpers.js'
import { COMMAND, Cli, cli } from './stop-fixtures.js'

// "Is it up yet?": a holder says it is ready; others wait for the lock to be
// held, or held by a ready holder, without ever taking or disturbing it.

const node = process.execPath

/** Whether `p` has settled, as seen by code that runs after this call. */
function track<T>(p: Promise<T>): { settled: () => boolean } {
  let settled = false
  p.then(
    () => (settled = true),
    () => (settled = true),
  )
  return { settled: () => settled }
}

async function rejection(p: Promise<unknown>): Promise<{ name: string; code?: string }> {
  try {
    await p
  } catch (err) {
    return err as { name: string; code?: string }
  }
  throw new Error('expected a rejection')
}

describe('Lock.ready()', () => {
  it('records ready (keeping or replacing data), is idempotent, survives update(), and throws once released', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const l = tryLock(name, { dir, data: { port: 1 } })
    expect(l.holder.ready).toBeUndefined()
    const child = await spawnChild()
    expect((await child.call<LockStatus>('inspect', name, { dir })).holder).not.toHaveProperty('ready')

    l.ready()
    expect(l.holder).toMatchObject({ ready: true, data: { port: 1 } })
    expect((await child.call<LockStatus>('inspect', name, { dir })).holder).toMatchObject({ pid: process.pid, ready: true, data: { port: 1 } })
    l.ready({ port: 2 })
    l.ready()
    expect((await child.call<LockStatus>('inspect', name, { dir })).holder).toMatchObject({ ready: true, data: { port: 2 } })
    l.update({ port: 3 })
    expect((await child.call<LockStatus>('inspect', name, { dir })).holder).toMatchObject({ ready: true, data: { port: 3 } })
    expect((await child.call<LockStatus[]>('list', { dir }))[0]!.holder).toMatchObject({ ready: true })
    expect(inspect(name, { dir }).holder?.ready).toBe(true)

    expect(() => l.ready([] as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
    l.release()
    expect(() => l.ready()).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }))
    expect(() => l.ready({ port: 4 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }))
    // The next holder starts as not ready, though the file still says what the last one wrote.
    const next = tryLock(name, { dir })
    expect((await child.call<LockStatus>('inspect', name, { dir })).holder).not.toHaveProperty('ready')
    next.release()
  })

  it('keeps the one record format: a record without the field reads as not ready', () => {
    const old = '{"pid":4242,"hostname":"h","startedAt":"2026-11-22T07:50:00.005Z","name":"web","scope":"user","data":{"port":1}}'
    expect(parseRecord(old, { name: 'web', scope: 'user' })).not.toHaveProperty('ready')
    const loc = { name: 'web', key: undefined, scope: 'user' as const, path: '/x', id: '/x' }
    const starting = makeRecord('h', loc, '{"port":1}', Date.UTC(2026, 10, 22, 7, 50, 0, 5), 4242)
    expect(starting).not.toContain('ready')
    const ready = makeRecord('h', loc, '{"port":1}', Date.UTC(2026, 10, 22, 7, 50, 0, 5), 4242, true)
    expect(parseRecord(ready, loc)).toMatchObject({ pid: 4242, data: { port: 1 }, ready: true })
    // Only `true` is ready.
    expect(parseRecord(old.replace('}}', '},"ready":"yes"}'), loc)).not.toHaveProperty('ready')
  })
})

describe('waitFor', () => {
  it('resolves once the lock is held; with ready: true only once the holder called ready()', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const held = waitFor(name, { dir, timeout: 30_000 })
    const readyWait = waitFor(name, { dir, ready: true, timeout: 30_000 })
    const readyState = track(readyWait)
    const holder = await spawnChild()
    const { path: lockPath } = await holder.call<{ path: string }>('tryLock', name, { dir, data: { port: 1 } })

    const s = await held
    expect(s).toMatchObject({ name, locked: true, holder: { pid: holder.pid, data: { port: 1 } } })
    expect(s.holder).not.toHaveProperty('ready')
    // A ready-waiter started now gives up: for the whole of its wait the
    // lock was held by a holder that was not ready…
    const gaveUp = await rejection(waitFor(name, { dir, ready: true, timeout: 300 }))
    expect(gaveUp.code).toBe('ETIMEDOUT')
    // …so the first ready-waiter, which looked all that time too, is still waiting.
    expect(readyState.settled()).toBe(false)

    await holder.call('ready', lockPath, { port: 2 })
    const r = await readyWait
    expect(r).toMatchObject({ locked: true, holder: { pid: holder.pid, ready: true, data: { port: 2 } } })
    // Already ready: at once.
    expect((await waitFor(name, { dir, ready: true, timeout: 0 })).holder?.ready).toBe(true)
  })

  it('timeout: rejects with ETIMEDOUT, not before the timeout; 0 looks once', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const t0 = Date.now()
    const e = await rejection(waitFor(name, { dir, timeout: 200 }))
    expect(e.code).toBe('ETIMEDOUT')
    expect(Date.now() - t0).toBeGreaterThanOrEqual(195)
    expect((await rejection(waitFor(name, { dir, timeout: 0 }))).code).toBe('ETIMEDOUT')
    // Its own lock, not ready: held, but not ready within the time.
    const l = tryLock(name, { dir })
    expect((await waitFor(name, { dir, timeout: 0 })).holder?.pid).toBe(process.pid)
    expect((await rejection(waitFor(name, { dir, ready: true, timeout: 100 }))).code).toBe('ETIMEDOUT')
    l.release()
  })

  it('abort: rejects with an AbortError, whether aborted before or while waiting', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    expect((await rejection(waitFor(name, { dir, signal: AbortSignal.abort() }))).name).toBe('AbortError')
    const ac = new AbortController()
    const p = waitFor(name, { dir, ready: true, timeout: 60_000, signal: ac.signal })
    // Let it look a few times first.
    expect((await rejection(waitFor(name, { dir, timeout: 50 }))).code).toBe('ETIMEDOUT')
    ac.abort()
    expect((await rejection(p)).name).toBe('AbortError')
  })

  it('wakes on its own process calling ready()', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const l = tryLock(name, { dir })
    const p = waitFor(name, { dir, ready: true, timeout: 30_000 })
    const state = track(p)
    expect((await rejection(waitFor(name, { dir, ready: true, timeout: 100 }))).code).toBe('ETIMEDOUT')
    expect(state.settled()).toBe(false)
    l.ready({ port: 9 })
    expect((await p).holder).toMatchObject({ pid: process.pid, ready: true, data: { port: 9 } })
    l.release()
  })

  it('never makes a concurrent tryLock fail while it waits', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    tryLock(name, { dir }).release()
    const child = await spawnChild()
    const ac = new AbortController()
    // Never satisfied (nobody calls ready()): they look all the time the
    // other process takes and releases the lock, every record it writes
    // waking them.
    const waiting = Array.from({ length: 4 }, () => waitFor(name, { dir, ready: true, timeout: 60_000, signal: ac.signal }))
    const states = waiting.map(track)
    const loop = await child.call<{ acquired: number; failures: number; codes: string[] }>('tryLoop', name, { dir }, 2000)
    expect(states.some((s) => s.settled())).toBe(false)
    ac.abort()
    for (const w of waiting) expect((await rejection(w)).name).toBe('AbortError')
    expect(loop.acquired).toBeGreaterThan(100)
    expect(loop).toMatchObject({ failures: 0, codes: [] })
  })

  it('rejects bad arguments before touching anything', async () => {
    const dir = path.join(tmpDir(), 'never-created')
    const cases: Array<[unknown, unknown, string]> = [
      [42, { dir }, 'ERR_INVALID_ARG_TYPE'],
      ['a/b', { dir }, 'ERR_INVALID_ARG_VALUE'],
      ['x', 'opts', 'ERR_INVALID_ARG_TYPE'],
      ['x', { dir, ready: 'yes' }, 'ERR_INVALID_ARG_TYPE'],
      ['x', { dir, timeout: -1 }, 'ERR_OUT_OF_RANGE'],
      ['x', { dir, timeout: '5' }, 'ERR_INVALID_ARG_TYPE'],
      ['x', { dir, signal: {} }, 'ERR_INVALID_ARG_TYPE'],
      ['x', { dir, scope: 'galaxy' }, 'ERR_INVALID_ARG_VALUE'],
    ]
    for (const [name, options, code] of cases) {
      const p = waitFor(name as string, options as object)
      expect((await rejection(p)).code, JSON.stringify([name, options])).toBe(code)
    }
    expect(fs.existsSync(dir)).toBe(false)
  })

  it('keeps its process alive while pending, and nothing once settled; import and require both have it', () => {
    const name = uniqueName()
    const r = spawnSync(
      node,
      [
        '--input-type=module',
        '-e',
        `
      import { waitFor, tryLock } from 'instance-lock'
      // Nothing else keeps this process alive: only the pending wait.
      waitFor(${JSON.stringify(name)}, { timeout: 300 }).catch((e) => console.log(e.code))
      // Settled long before its 60 s limit: the process must exit right after.
      waitFor(${JSON.stringify(name)} + '-2', { timeout: 60_000 }).then((s) => console.log(s.locked))
      setTimeout(() => tryLock(${JSON.stringify(name)} + '-2'), 50)
    `,
      ],
      { cwd: ROOT, encoding: 'utf8', timeout: 30_000 },
    )
    expect(r.stderr).toBe('')
    expect(r.status).toBe(0)
    expect(r.stdout.trim().split('\n').sort()).toEqual(['ETIMEDOUT', 'true'])
  })
})

describe.skipIf(process.platform !== 'linux')('instance-lock wait', () => {
  it('exits 0 once held, printing the holder; with --ready once it is ready; 1 on timeout; 2 bad usage', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    for (const args of [['wait'], ['wait', name, 'b'], ['wait', name, '--timeout', 'soon'], ['wait', '../x'], ['wait', name, '--ready=yes'], ['wait', name, '--bogus']]) {
      const r = await cli(...args, '--dir', dir)
      expect(r.code, args.join(' ')).toBe(2)
      expect(r.stderr).toMatch(/^instance-lock: .+\nUsage: instance-lock wait NAME/)
    }
    expect((await cli('wait', '--help')).stdout).toMatch(/^Usage: instance-lock wait NAME/)
    const free = await cli('wait', name, '--dir', dir, '--timeout', '200')
    expect(free.code).toBe(1)
    expect(free.stdout).toBe('')
    expect(free.stderr).toMatch(/^instance-lock: .+\n$/)

    const held = new Cli(['wait', name, '--dir', dir, '--timeout', '30000'])
    const ready = new Cli(['wait', name, '--dir', dir, '--ready', '--timeout', '30000', '--json'])
    const readyState = track(ready.exited)
    const holder = await spawnChild()
    const { path: lockPath } = await holder.call<{ path: string }>('tryLock', name, { dir, data: { port: 5858 } })
    const h = await held.result()
    expect(h.code).toBe(0)
    expect(h.stdout).toContain(`is held by pid ${holder.pid}`)
    expect(h.stdout).toContain('state: starting')
    expect(h.stdout).toContain('port=5858')
    const notYet = await cli('wait', name, '--dir', dir, '--ready', '--timeout', '300')
    expect(notYet.code).toBe(1)
    expect(readyState.settled()).toBe(false)

    await holder.call('ready', lockPath)
    const r = await ready.result()
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ name, locked: true, holder: { pid: holder.pid, ready: true, data: { port: 5858 } } })
  })

  it('status shows starting, then ready, for each held lock', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const holder = await spawnChild()
    const { path: lockPath } = await holder.call<{ path: string }>('tryLock', name, { dir })
    const row = (out: string): string => out.split('\n').find((l) => l.startsWith(name))!
    expect((await cli('status', name, '--dir', dir)).stdout).toContain('state: starting')
    const table = (await cli('status', '--dir', dir, '--scope', 'user')).stdout
    expect(table.split('\n')[0]).toMatch(/^NAME\s+KEY\s+STATE\s+READY\s+PID\s/)
    expect(row(table)).toMatch(new RegExp(`^${name}\\s+-\\s+held\\s+starting\\s+${holder.pid}\\s`))
    await holder.call('ready', lockPath)
    expect((await cli('status', name, '--dir', dir)).stdout).toContain('state: ready')
    expect(row((await cli('status', '--dir', dir, '--scope', 'user')).stdout)).toMatch(new RegExp(`^${name}\\s+-\\s+held\\s+ready\\s+${holder.pid}\\s`))
    expect(JSON.parse((await cli('status', name, '--dir', dir, '--json')).stdout).holder.ready).toBe(true)
    expect(list({ dir })[0]!.holder?.ready).toBe(true)
  })
})

describe.skipIf(process.platform !== 'linux')('instance-lock run --data / --ready', () => {
  it('--data is recorded for status --json beside COMMAND; --ready marks the holder ready once COMMAND started', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const plain = new Cli(['run', name, '--dir', dir, '--data', '{"port":5858,"tls":false}', '--', node, COMMAND, 'hold'])
    await plain.commandPid()
    const s = JSON.parse((await cli('status', name, '--dir', dir, '--json')).stdout) as LockStatus
    // The holder named is instance-lock itself, which holds the lock while COMMAND runs.
    expect(s.holder).toMatchObject({ pid: plain.pid, data: { port: 5858, tls: false } })
    expect(s.holder?.data?.command).toMatch(/command\.cjs hold$/)
    // Without --ready it stays starting: a ready-waiter gives up.
    expect(s.holder).not.toHaveProperty('ready')
    expect((await cli('wait', name, '--dir', dir, '--ready', '--timeout', '300')).code).toBe(1)
    plain.endInput()
    expect((await plain.result()).code).toBe(0)

    const ready = new Cli(['run', name, '--dir', dir, '--ready', '--data', '{"port":5859}', '--', node, COMMAND, 'hold'])
    const w = await cli('wait', name, '--dir', dir, '--ready', '--timeout', '30000', '--json')
    expect(w.code).toBe(0)
    await ready.commandPid()
    expect(JSON.parse(w.stdout).holder).toMatchObject({ pid: ready.pid, ready: true, data: { port: 5859 } })
    ready.endInput()
    expect((await ready.result()).code).toBe(0)
  })

  it('--data that is not a JSON object: exit 2 with a message, COMMAND not run, nothing taken', async () => {
    const dir = tmpDir()
    const marker = path.join(dir, 'ran')
    const valid = path.join(dir, 'valid')
    expect((await cli('run', 'x', '--dir', valid, '--data', '{}', '--', node, COMMAND, 'touch', path.join(dir, 'ran-valid'))).code).toBe(0)
    expect(fs.existsSync(path.join(dir, 'ran-valid'))).toBe(true)
    for (const data of ['{', '[1]', '5', 'null', '"s"', `{"big":"${'x'.repeat(20_000)}"}`]) {
      const r = await cli('run', 'x', '--dir', dir, '--data', data, '--', node, COMMAND, 'touch', marker)
      expect(r.code, data.slice(0, 20)).toBe(2)
      expect(r.stderr).toMatch(/^instance-lock: .*--data.*\nUsage: instance-lock run NAME/)
    }
    expect(fs.existsSync(marker)).toBe(false)
    expect(fs.readdirSync(dir).sort()).toEqual(['ran-valid', 'valid'])
  })
})
