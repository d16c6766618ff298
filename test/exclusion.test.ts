import { execFileSync, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import util from 'node:util'
import { describe, expect, it } from 'vitest'
import { native } from '../src/backends/addon.js'
import { LockedError, inspect, lock, tryLock } from '../src/index.js'
import { ROOT, builtinsLoadedBy, spawnChild, tmpDir, uniqueName } from './helpers.js'

/** Another process's tryLock, synchronously: 'ok' or the error code. */
function triedElsewhere(name: string, dir: string): string {
  const script = `try { require(${JSON.stringify(ROOT)}).tryLock(process.argv[1], { dir: process.argv[2] }).release(); console.log('ok') } catch (e) { console.log(e.code) }`
  return execFileSync(process.execPath, ['-e', script, name, dir], { encoding: 'utf8' }).trim()
}

/** This process's descriptors open on `file` (Linux). */
function openOn(file: string): number[] {
  return fs
    .readdirSync('/proc/self/fd')
    .map(Number)
    .filter((n) => {
      try {
        return fs.readlinkSync(`/proc/self/fd/${n}`) === file
      } catch {
        return false
      }
    })
}

describe('exclusion', () => {
  it('refuses a second tryLock in the same process with our pid, and keeps the first', () => {
    const dir = tmpDir()
    const name = uniqueName()
    const first = tryLock(name, { dir })
    let err: unknown
    try {
      tryLock(name, { dir })
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(LockedError)
    expect((err as LockedError).code).toBe('ELOCKED')
    expect((err as LockedError).name).toBe('LockedError')
    expect((err as LockedError).holder?.pid).toBe(process.pid)
    // A condition, not a bug: no stack trace is captured, and it prints as one.
    expect((err as LockedError).stack).toBe(`LockedError: ${(err as LockedError).message}`)
    expect(util.inspect(err)).toMatch(/^\[LockedError: Lock "/)
    expect(first.released).toBe(false)
    expect(inspect(name, { dir }).locked).toBe(true)
    first.release()
    expect(first.released).toBe(true)
  })

  it('refuses another process with its pid and data', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const child = await spawnChild()
    await child.call('tryLock', name, { dir, data: { port: 4321 } })
    let err: unknown
    try {
      tryLock(name, { dir })
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(LockedError)
    expect((err as LockedError).holder?.pid).toBe(child.pid)
    expect((err as LockedError).holder?.data).toEqual({ port: 4321 })
  })

  it('re-takes a released lock at once, across processes', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const child = await spawnChild()
    const { path: p } = await child.call<{ path: string }>('tryLock', name, { dir })
    expect(() => tryLock(name, { dir })).toThrow(LockedError)
    await child.call('release', p)
    tryLock(name, { dir }).release()
  })

  // close() frees a flock only with the last reference to the open file
  // description; a child that inherited it, or lsof reading /proc/<pid>/fd
  // at that moment, holds one. release() must free the lock all the same.
  it.runIf(process.platform === 'linux')('release() frees the lock though another process shares its descriptor', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const l = tryLock(name, { dir })
    const [fd] = openOn(l.path)
    expect(fd).toBeDefined()
    const sharer = spawn(process.execPath, ['-e', 'process.stdin.resume(); console.log("ready")'], { stdio: ['pipe', 'pipe', 'inherit', fd!] })
    try {
      await new Promise((resolve) => sharer.stdout!.once('data', resolve))
      l.release()
      expect(inspect(name, { dir }).locked).toBe(false)
      tryLock(name, { dir }).release()
    } finally {
      sharer.kill()
    }
  })

  // A released lock's descriptor is kept until the end of the event loop's
  // turn, and a tryLock or lock() meanwhile flocks it again.
  it('taken again in the same turn after its file was replaced, it is the file now at the path that is held', () => {
    const dir = tmpDir()
    const name = uniqueName()
    const l = tryLock(name, { dir })
    l.release()
    fs.writeFileSync(`${l.path}.new`, '')
    fs.renameSync(`${l.path}.new`, l.path)
    const again = tryLock(name, { dir })
    try {
      expect(triedElsewhere(name, dir)).toBe('ELOCKED')
    } finally {
      again.release()
    }
    expect(triedElsewhere(name, dir)).toBe('ok')
  })

  it.runIf(process.platform === 'linux')('keeps no descriptor of a released lock past the turn', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const l = tryLock(name, { dir })
    expect(openOn(l.path)).toHaveLength(1)
    l.release()
    expect(triedElsewhere(name, dir)).toBe('ok')
    expect(openOn(l.path), 'the main thread keeps it for the turn').toHaveLength(1)
    await new Promise((resolve) => setImmediate(resolve))
    expect(openOn(l.path)).toEqual([])
  })

  it('makes a missing `dir` with its parents, for tryLock and lock(), and again once it was deleted', async () => {
    const base = tmpDir()
    const dir = path.join(base, 'a', 'b')
    const name = uniqueName()
    tryLock(name, { dir }).release()
    expect(fs.existsSync(path.join(dir, `${name}.lock`))).toBe(true)
    fs.rmSync(path.join(base, 'a'), { recursive: true })
    const l = await lock(name, { dir })
    expect(fs.existsSync(path.join(dir, `${name}.lock`))).toBe(true)
    expect(triedElsewhere(name, dir)).toBe('ELOCKED')
    l.release()
    fs.rmSync(path.join(base, 'a'), { recursive: true })
    tryLock(name, { dir }).release()
    expect(fs.existsSync(path.join(dir, `${name}.lock`))).toBe(true)
  })

  it.runIf(process.platform === 'linux')('in a Worker, release() closes the descriptor at once (a Worker ending in the turn would leak it)', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const { Worker } = await import('node:worker_threads')
    const w = new Worker(
      `const { parentPort, workerData: d } = require('node:worker_threads'); const fs = require('node:fs')
      const l = require(d.root).tryLock(d.name, { dir: d.dir }); l.release()
      const open = fs.readdirSync('/proc/self/fd').filter((n) => { try { return fs.readlinkSync('/proc/self/fd/' + n) === l.path } catch { return false } })
      parentPort.postMessage(open.length)`,
      { eval: true, workerData: { root: ROOT, name, dir } },
    )
    expect(await new Promise((resolve) => w.once('message', resolve))).toBe(0)
    await w.terminate()
  })

  // Which thread it runs on decides that; asking node:worker_threads would
  // cost a process's first release some 4 ms.
  it('a first release() does not load node:worker_threads', () => {
    const loaded = builtinsLoadedBy("require('instance-lock').tryLock(process.argv[2], { dir: process.argv[3] }).release()", uniqueName(), tmpDir())
    expect(loaded).not.toContain('worker_threads')
  })

  // The key's hash names the lock file (and the mutex on Windows): it must
  // stay SHA-256 of the key's UTF-8, as node:crypto computes it, so that
  // every version of the package finds the same lock.
  it('names a keyed lock by the SHA-256 of its key, computed without node:crypto', () => {
    const sha256 = (s: string) => createHash('sha256').update(s).digest('hex')
    const keys = ['a', 'é', '日本語', '😀', 'lone \ud800 surrogate', '\udc00\ud800', 'x'.repeat(4096)]
    // Lengths around SHA-256's 64-byte blocks and the 56 bytes that leave room for the length.
    for (let n = 1; n <= 130; n++) keys.push('k'.repeat(n), 'é'.repeat(n))
    for (const k of keys) expect(native.sha256(k), JSON.stringify(k.slice(0, 20))).toBe(sha256(k))

    const dir = tmpDir()
    const name = uniqueName()
    const key = 'orders-db ✓'
    const l = tryLock(name, { dir, key })
    expect(path.basename(l.path)).toBe(`${name}@${sha256(key).slice(0, 32)}.lock`)
    l.release()

    const loaded = builtinsLoadedBy("require('instance-lock').tryLock(process.argv[2], { dir: process.argv[3], key: process.argv[3] }).release()", uniqueName(), dir)
    expect(loaded).not.toContain('crypto')
  })

  it('keeps different keys independent and one key one lock, whatever its spelling', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const db = path.join(dir, 'db.sqlite')
    fs.writeFileSync(db, '')
    const link = path.join(dir, 'link.sqlite')
    fs.symlinkSync(db, link)
    const other = path.join(dir, 'other.sqlite')
    fs.writeFileSync(other, '')
    const child = await spawnChild()
    await child.call('tryLock', name, { dir, key: db })
    expect(() => tryLock(name, { dir, key: link })).toThrow(LockedError)
    const rel = path.relative(process.cwd(), db)
    expect(() => tryLock(name, { dir, key: rel })).toThrow(LockedError)
    expect(() => tryLock(name, { dir, key: path.join(dir, '.', 'db.sqlite') })).toThrow(LockedError)
    const l = tryLock(name, { dir, key: other })
    expect(l.key).toBe(fs.realpathSync(other))
    l.release()
    tryLock(name, { dir }).release()
  })
})
