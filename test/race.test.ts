import { execFileSync, fork, type ChildProcess } from 'node:child_process'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { FIXTURES, tmpDir, uniqueName } from './helpers.js'

function once<T>(proc: ChildProcess): Promise<T> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`child exited with ${code}`))
    proc.once('exit', onExit)
    proc.once('message', (m) => {
      proc.off('exit', onExit)
      resolve(m as T)
    })
  })
}

async function runStress(mode: 'try' | 'wait', procs: number, iterations: number): Promise<void> {
  const dir = tmpDir()
  const name = uniqueName('stress')
  const counter = path.join(dir, 'counter')
  fs.writeFileSync(counter, '0')
  const children = Array.from({ length: procs }, () =>
    fork(path.join(FIXTURES, 'stress.cjs'), [mode, name, dir, counter, String(iterations)], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] }),
  )
  try {
    await Promise.all(children.map((c) => once(c)))
    const exits = children.map((c) => new Promise<number | null>((resolve) => c.once('exit', resolve)))
    for (const c of children) c.send('go')
    expect(await Promise.all(exits)).toEqual(children.map(() => 0))
    expect(Number(fs.readFileSync(counter, 'utf8'))).toBe(procs * iterations)
  } finally {
    for (const c of children) c.kill('SIGKILL')
  }
}

describe('start race', () => {
  it('40 processes released together: exactly one winner, round after round', async () => {
    const dir = tmpDir()
    const children = Array.from({ length: 40 }, () => fork(path.join(FIXTURES, 'racer.cjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }))
    try {
      await Promise.all(children.map((c) => once(c)))
      for (let round = 0; round < 15; round++) {
        const name = uniqueName(`race${round}`)
        const results = children.map((c) => once<{ won: boolean; code?: string }>(c))
        for (const c of children) c.send({ op: 'go', name, dir })
        const r = await Promise.all(results)
        expect(r.filter((x) => x.won)).toHaveLength(1)
        expect(r.filter((x) => !x.won).every((x) => x.code === 'ELOCKED')).toBe(true)
        const released = children.map((c) => once(c))
        for (const c of children) c.send({ op: 'release' })
        await Promise.all(released)
      }
    } finally {
      for (const c of children) c.kill('SIGKILL')
    }
  }, 180_000)
})

describe('mutual exclusion under stress', () => {
  it('4 processes × 400 tryLock/release cycles never overlap', async () => {
    await runStress('try', 4, 400)
  }, 180_000)

  it('6 processes × 150 await lock()/release cycles never overlap', async () => {
    await runStress('wait', 6, 150)
  }, 180_000)
})

// What the addon does after every successful flock (native/posix/lockfile.cc,
// VerifyLocked): a descriptor opened before its file was deleted or replaced
// must never count as the lock, whichever way the file system is checked.
describe.runIf(process.platform !== 'win32')('re-check after flock', async () => {
  const { native: addon } = await import('../src/backends/addon.js')
  if (addon.platform !== 'posix') throw new Error('the Unix addon was expected')
  const native = addon
  const ACQUIRED = 0
  const STALE = 2

  /** Opens `file` as a waiter does, changes it with `change`, then flocks the old descriptor. */
  function lockAfter(change: (file: string) => void, checks: number): number {
    const file = path.join(tmpDir(), 'x.lock')
    const [fd] = native.open(native.AT_FDCWD, file, 0o644, checks)
    try {
      change(file)
      return native.lock(fd, native.AT_FDCWD, file, true, 0o644, checks, null)
    } finally {
      native.close(fd)
    }
  }

  const deleted = (file: string) => fs.unlinkSync(file)
  const replaced = (file: string) => {
    fs.writeFileSync(`${file}.new`, '')
    fs.renameSync(`${file}.new`, file)
  }
  const movedAway = (file: string) => fs.renameSync(file, `${file}.old`)

  it('by link count (local file systems): a deleted or replaced file is stale', () => {
    expect(lockAfter(deleted, 0)).toBe(STALE)
    expect(lockAfter(replaced, 0)).toBe(STALE)
    expect(lockAfter(() => {}, 0)).toBe(ACQUIRED)
  })

  it('a kept descriptor whose file was replaced, the orphan held elsewhere, takes the file now at the path', () => {
    for (const [change, checks] of [
      [replaced, 0],
      [movedAway, native.CHECK_NAME],
    ] as const) {
      const file = path.join(tmpDir(), 'x.lock')
      const [spare] = native.open(native.AT_FDCWD, file, 0o644, checks)
      const [other] = native.open(native.AT_FDCWD, file, 0o644, checks)
      expect(native.lock(other, native.AT_FDCWD, file, true, 0o644, checks, null)).toBe(ACQUIRED)
      change(file)
      // Held, it would be "held by whoever has the orphan": a wrong answer.
      const r = native.acquire(native.AT_FDCWD, file, 0o644, checks, null, false, spare, true)
      assert(typeof r === 'number', `acquire answered ${JSON.stringify(r)}`)
      native.release(r >= 0 ? r : ~r)
      native.release(other)
    }
  })

  it('a kept read-only descriptor (a file of another user) is taken again as read-only: ~fd, and the indicator a read lock', () => {
    const file = path.join(tmpDir(), 'x.lock')
    fs.writeFileSync(file, '')
    const spare = fs.openSync(file, 'r')
    const r = native.acquire(native.AT_FDCWD, file, 0o644, 0, null, false, spare, false)
    assert(typeof r === 'number', `acquire answered ${JSON.stringify(r)}`)
    try {
      expect(r).toBe(~spare)
      // Set as a write lock on a read-only descriptor, the indicator would
      // fail (EBADF) and inspect would see a free lock.
      expect(native.probe(file)?.[0]).toBe(true)
    } finally {
      native.release(~r)
    }
    expect(native.probe(file)?.[0]).toBe(false)
  })

  it('the link count alone on ext4 and tmpfs; the name too on other or unknown file systems', async () => {
    const { fsChecks } = await import('../src/backends/flock/index.js')
    const types = (p: string) => execFileSync('stat', ['-f', '-c', '%T', p], { encoding: 'utf8' }).trim()
    for (const dir of [tmpDir(), '/dev/shm']) {
      if (['ext2/ext3', 'tmpfs'].includes(types(dir))) expect(fsChecks(dir)).toBe(0)
    }
    expect(fsChecks('/proc')).toBe(native.CHECK_NAME)
    expect(fsChecks(path.join(tmpDir(), 'missing'))).toBe(native.CHECK_NAME)
  })

  it('by name too (CHECK_NAME: NFS, FUSE, overlayfs, unknown): also a file moved away is stale', () => {
    expect(lockAfter(deleted, native.CHECK_NAME)).toBe(STALE)
    expect(lockAfter(replaced, native.CHECK_NAME)).toBe(STALE)
    expect(lockAfter(movedAway, native.CHECK_NAME)).toBe(STALE)
    expect(lockAfter(() => {}, native.CHECK_NAME)).toBe(ACQUIRED)
    // The link count cannot tell a file moved away to another name (see
    // docs/how-it-works.md: a renamed lock file excludes nobody, whatever the
    // protocol).
    expect(lockAfter(movedAway, 0)).toBe(ACQUIRED)
  })
})
