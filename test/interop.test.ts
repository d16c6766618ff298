import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import { describe, expect, it } from 'vitest'
import { LockedError, tryLock } from '../src/index.js'
import { spawnChild, tmpDir, uniqueName } from './helpers.js'

const require = createRequire(import.meta.url)
const fsExt = require('fs-ext') as { flockSync(fd: number, op: 'exnb' | 'un' | 'ex' | 'sh' | 'shnb'): void }

function flockCli(path: string): number | null {
  return spawnSync('flock', ['-n', path, 'true']).status
}

describe('interoperability', () => {
  it('util-linux flock(1) fails on lock.path while held, succeeds after release', () => {
    const lock = tryLock(uniqueName(), { dir: tmpDir() })
    expect(flockCli(lock.path)).toBe(1)
    lock.release()
    expect(flockCli(lock.path)).toBe(0)
  })

  it("flock(1) sees a lock held by another process, and we see flock(1)'s", async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const child = await spawnChild()
    const { path } = await child.call<{ path: string }>('tryLock', name, { dir })
    expect(flockCli(path)).toBe(1)
    await child.kill()
    expect(flockCli(path)).toBe(0)
    // flock(1) holding our file: we must refuse.
    const held = spawnSync('flock', [
      '-n',
      path,
      process.execPath,
      '-e',
      `
      const il = require(${JSON.stringify(require.resolve('..'))});
      try { il.tryLock(${JSON.stringify(name)}, { dir: ${JSON.stringify(dir)} }); process.exit(0) }
      catch (e) { process.exit(e.code === 'ELOCKED' ? 42 : 1) }`,
    ])
    expect(held.status).toBe(42)
  })

  it("fs-ext's flock sees our lock, and we see fs-ext's", () => {
    const dir = tmpDir()
    const name = uniqueName()
    const lock = tryLock(name, { dir })
    const fd = fs.openSync(lock.path, 'r')
    try {
      expect(() => fsExt.flockSync(fd, 'exnb')).toThrow(expect.objectContaining({ code: 'EAGAIN' }))
      lock.release()
      fsExt.flockSync(fd, 'exnb')
      expect(() => tryLock(name, { dir })).toThrow(LockedError)
      fsExt.flockSync(fd, 'un')
      tryLock(name, { dir }).release()
    } finally {
      fs.closeSync(fd)
    }
  })
})
