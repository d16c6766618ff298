import { execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { inspect, lock, tryLock } from '../src/index.js'
import { OTHER_USERS, isRoot, spawnChildAs, tmpDir, uniqueName } from './helpers.js'

function lockFile(dir: string, name: string): string {
  return path.join(dir, `${name}.lock`)
}

describe('hostile files at the lock path', () => {
  it('never follows a planted symlink: ELOOP, victim unchanged', () => {
    const dir = tmpDir()
    const name = uniqueName()
    const victim = path.join(dir, 'victim')
    fs.writeFileSync(victim, 'precious')
    fs.symlinkSync(victim, lockFile(dir, name))
    expect(() => tryLock(name, { dir })).toThrow(expect.objectContaining({ code: 'ELOOP', syscall: 'open', path: lockFile(dir, name) }))
    expect(() => inspect(name, { dir })).toThrow(expect.objectContaining({ code: 'ELOOP' }))
    expect(fs.readFileSync(victim, 'utf8')).toBe('precious')
  })

  it('refuses a planted hard link: EMLINK, victim unchanged', () => {
    const dir = tmpDir()
    const name = uniqueName()
    const victim = path.join(dir, 'victim')
    fs.writeFileSync(victim, 'precious')
    fs.linkSync(victim, lockFile(dir, name))
    expect(() => tryLock(name, { dir })).toThrow(expect.objectContaining({ code: 'EMLINK', path: lockFile(dir, name) }))
    expect(fs.readFileSync(victim, 'utf8')).toBe('precious')
  })

  it('a planted hard link held by someone: a failed try reports it held, and a waiter that gets it refuses it (EMLINK), victim unchanged', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const victim = path.join(dir, 'victim')
    fs.writeFileSync(victim, 'precious')
    fs.linkSync(victim, lockFile(dir, name))
    // flock(1) holds it until its stdin closes.
    const holder = spawn('flock', ['-x', lockFile(dir, name), 'sh', '-c', 'echo held; read x'], { stdio: ['pipe', 'pipe', 'inherit'] })
    await new Promise((r) => holder.stdout.once('data', r))
    expect(() => tryLock(name, { dir })).toThrow(expect.objectContaining({ code: 'ELOCKED', holder: undefined }))
    const pending = lock(name, { dir, data: { x: 1 } })
    holder.stdin.end()
    await expect(pending).rejects.toMatchObject({ code: 'EMLINK', path: lockFile(dir, name) })
    expect(fs.readFileSync(victim, 'utf8')).toBe('precious')
  })

  it('does not hang on a planted FIFO, nor use a directory', () => {
    const dir = tmpDir()
    const fifo = uniqueName()
    execFileSync('mkfifo', [lockFile(dir, fifo)])
    expect(() => tryLock(fifo, { dir })).toThrow(expect.objectContaining({ code: 'EINVAL' }))
    const sub = uniqueName()
    fs.mkdirSync(lockFile(dir, sub))
    expect(() => tryLock(sub, { dir })).toThrow(expect.objectContaining({ code: 'EISDIR' }))
  })
})

describe.skipIf(!isRoot)('file-system refusals (needs root to mount and to switch users)', () => {
  it('read-only file system: EROFS with the path, nothing written', () => {
    const dir = tmpDir()
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', dir])
    try {
      const name = uniqueName()
      expect(() => tryLock(name, { dir })).toThrow(expect.objectContaining({ code: 'EROFS', syscall: 'open', path: lockFile(dir, name) }))
      expect(fs.readdirSync(dir)).toEqual([])
    } finally {
      execFileSync('umount', [dir])
    }
  })

  // Root takes over machine-scope lock files other users created (see
  // permissions.test.ts), but never a file linked in from elsewhere.
  it("machine scope: a planted hard link to another user's file is refused without taking the file over", () => {
    const dir = tmpDir()
    const name = uniqueName()
    const victim = path.join(dir, 'victim')
    fs.writeFileSync(victim, 'precious', { mode: 0o666 })
    fs.chownSync(victim, 65534, 65534)
    const planted = path.join(dir, `${name}+machine.lock`)
    fs.linkSync(victim, planted)
    expect(() => tryLock(name, { dir, scope: 'machine' })).toThrow(expect.objectContaining({ code: 'EMLINK', path: planted }))
    expect(fs.statSync(victim).uid).toBe(65534)
    expect(fs.readFileSync(victim, 'utf8')).toBe('precious')
  })

  it.skipIf(OTHER_USERS !== undefined)('permission denied: EACCES with the path', async () => {
    const dir = tmpDir()
    fs.chmodSync(dir, 0o755)
    const child = await spawnChildAs(65534)
    const name = uniqueName()
    const err = await child.fails('tryLock', name, { dir })
    expect(err).toMatchObject({ code: 'EACCES', path: lockFile(dir, name) })
  })

  it.skipIf(OTHER_USERS !== undefined)('refuses a user-scope directory another user prepared', async () => {
    const uid = 65533
    const prepared = `/dev/shm/instance-lock-${uid}`
    fs.rmSync(prepared, { recursive: true, force: true })
    fs.mkdirSync(prepared, { mode: 0o777 })
    fs.chmodSync(prepared, 0o777)
    try {
      const child = await spawnChildAs(uid)
      const err = await child.fails('tryLock', uniqueName())
      expect(err).toMatchObject({ code: 'EACCES', path: prepared })
      expect(fs.readdirSync(prepared)).toEqual([])
    } finally {
      fs.rmSync(prepared, { recursive: true, force: true })
    }
  })
})
