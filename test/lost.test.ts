import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import type { Location } from '../src/core/backend.js'
import { tryLock } from '../src/index.js'
import type { Lock } from '../src/index.js'
import { newLock, type Holding } from '../src/core/lock.js'
import { builtinsLoadedBy, spawnChild, tmpDir, uniqueName } from './helpers.js'

// A lock file deleted or replaced under its holder (by hand, by a temp
// cleaner) lets another process take a new file at the same path: two
// holders. Nothing can prevent that for every user, but the holder learns
// it from `lock.signal`, checked every second.

// Generous: the check runs every 1000 ms, on a loaded machine.
const WITHIN = 15_000

/** The reason `lock.signal` aborted with, or a rejection after `ms`. */
function lostWithin(lock: Lock, ms = WITHIN): Promise<unknown> {
  const { signal } = lock
  if (signal.aborted) return Promise.resolve(signal.reason)
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`lock.signal did not abort within ${ms} ms`)), ms)
    signal.addEventListener('abort', () => {
      clearTimeout(timer)
      resolve(signal.reason)
    })
  })
}

describe('lock.signal: the lock lost under its holder', () => {
  it.skipIf(process.platform === 'win32')('machine scope: aborts with ELOCKLOST once the lock file is deleted, as another process can now take the lock', async () => {
    const name = uniqueName('lost')
    const lock = tryLock(name, { scope: 'machine' })
    expect(lock.signal.aborted).toBe(false)
    execFileSync('rm', ['-f', lock.path])
    const reason = await lostWithin(lock)
    expect(reason).toBeInstanceOf(Error)
    expect(reason).toMatchObject({ name: 'Error', code: 'ELOCKLOST', path: lock.path })
    // Why it matters: the lock is no longer exclusive.
    const other = await spawnChild()
    await other.call('tryLock', name, { scope: 'machine' })
    expect(lock.released).toBe(false)
    lock.release()
  })

  it.skipIf(process.platform === 'win32')('user scope: aborts once the lock file is replaced by another file', async () => {
    const lock = tryLock(uniqueName('lost'))
    const signal = lock.signal
    const other = path.join(path.dirname(lock.path), `${uniqueName('other')}.tmp`)
    fs.writeFileSync(other, '')
    fs.renameSync(other, lock.path)
    expect(await lostWithin(lock)).toMatchObject({ code: 'ELOCKLOST' })
    expect(lock.signal).toBe(signal)
    lock.release()
  })

  it.skipIf(process.platform === 'win32')('a directory of our choosing: aborts once the lock file is deleted; each lock has its own signal', async () => {
    const dir = tmpDir()
    const kept = tryLock(uniqueName('kept'), { dir })
    const gone = tryLock(uniqueName('gone'), { dir })
    const keptSignal = kept.signal
    fs.rmSync(gone.path)
    expect(await lostWithin(gone)).toMatchObject({ code: 'ELOCKLOST' })
    expect(keptSignal.aborted).toBe(false)
    kept.release()
    gone.release()
  })

  it('release() does not abort it, and a released lock is no longer checked', async () => {
    const dir = tmpDir()
    const lock = tryLock(uniqueName('released'), { dir })
    const signal = lock.signal
    lock.release()
    fs.rmSync(lock.path)
    // Another lock whose loss is seen proves the checks ran meanwhile.
    const witness = tryLock(uniqueName('witness'), { dir })
    expect(witness.signal.aborted).toBe(false)
    fs.rmSync(witness.path)
    await lostWithin(witness)
    expect(signal.aborted).toBe(false)
    witness.release()
    // Read for the first time after release: there, and never aborted.
    const late = tryLock(uniqueName('late'), { dir })
    late.release()
    expect(late.signal.aborted).toBe(false)
  })

  it('where a lock cannot be lost (a backend with no loss check: Windows), it exists and does not abort', () => {
    const loc: Location = { name: 'w', key: undefined, scope: 'user', path: 'Local\\w', id: uniqueName('w') }
    const holding: Holding<Location> = { record: () => '{}', update() {}, release() {} }
    const lock = newLock(holding, loc, {}, new Date(), undefined)
    expect(lock.signal).toBeInstanceOf(AbortSignal)
    expect(lock.signal.aborted).toBe(false)
    lock.release()
    expect(lock.signal.aborted).toBe(false)
  })

  it('costs the guard nothing until read', () => {
    const guard = "const l = require('instance-lock').singleInstance(process.argv[2], { dir: process.argv[3] })"
    expect(builtinsLoadedBy(guard, uniqueName(), tmpDir())).not.toContain('internal/abort_controller')
    expect(builtinsLoadedBy(`${guard}; l.signal`, uniqueName(), tmpDir())).toContain('internal/abort_controller')
  })
})
