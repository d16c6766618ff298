import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { inspect, list, lock, singleInstance, stop, tryLock } from '../src/index.js'
import { OTHER_USERS, ROOT, copyForOthers, isRoot, tmpDir, uniqueName } from './helpers.js'

const BIN = path.join(ROOT, 'bin', 'instance-lock.js')

// A call that could hang runs in a process of its own, killed after 10 s.
function bounded(args: string[]): { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', timeout: 10_000, env: { ...process.env, IL_ROOT: ROOT } })
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr }
}

describe('a dir option that cannot be a directory', () => {
  it.skipIf(process.platform !== 'linux')('where mkdir fails with ENOENT under an existing parent (/proc): an error at once, never a spin', () => {
    const r = bounded([BIN, 'run', uniqueName(), '--dir', '/proc/nope', '--', process.execPath, '-e', '0'])
    expect(r.signal).toBe(null)
    expect(r.status).toBe(125)
    expect(r.stderr).toContain(`ENOENT`)
    expect(r.stderr).toContain(`'/proc/nope'`)
    const lib = bounded([
      '-e',
      `const il = require(process.env.IL_ROOT)
       const code = (f) => { try { f(); return 'ok' } catch (e) { return e.code + ' ' + e.path } }
       console.log(code(() => il.tryLock('x', { dir: '/proc/nope/deeper' })))
       il.lock('x', { dir: '/proc/nope', timeout: 1000 }).then(() => console.log('ok'), (e) => console.log(e.code + ' ' + e.path))`,
    ])
    expect(lib.signal).toBe(null)
    expect(lib.stdout.trim().split('\n')).toEqual(['ENOENT /proc/nope', 'ENOENT /proc/nope'])
  })

  it('a file, or a file on the way: ENOTDIR from every function, nothing created', async () => {
    const file = path.join(tmpDir(), 'file')
    fs.writeFileSync(file, 'x')
    const name = uniqueName()
    for (const dir of [file, path.join(file, 'sub', 'deeper')]) {
      const calls: Array<[string, () => unknown]> = [
        ['tryLock', () => tryLock(name, { dir })],
        ['tryLock key', () => tryLock(name, { dir, key: 'k' })],
        ['lock', () => lock(name, { dir })],
        ['singleInstance', () => singleInstance(name, { dir, onLocked: 'throw' })],
        ['replace', () => singleInstance(name, { dir, onLocked: 'replace' })],
        ['inspect', () => inspect(name, { dir })],
        ['list', () => list({ dir })],
        ['list machine', () => list({ dir, scope: 'machine' })],
        ['stop', () => stop(name, { dir })],
      ]
      for (const [what, call] of calls) {
        let code: string | undefined
        try {
          await call()
        } catch (e) {
          code = (e as { code?: string }).code
          expect((e as { path?: string }).path, what).toContain(file)
        }
        expect(code, `${what} ${dir}`).toBe('ENOTDIR')
      }
    }
    expect(fs.readFileSync(file, 'utf8')).toBe('x')
  })

  it('the command line: ENOTDIR, exit 125, for status (with and without NAME) and stop', () => {
    const file = path.join(tmpDir(), 'file')
    fs.writeFileSync(file, 'x')
    for (const args of [
      ['status', '--dir', file],
      ['status', '--all', '--json', '--dir', file],
      ['status', 'web', '--dir', file],
      ['stop', 'web', '--dir', file],
      ['run', 'web', '--dir', file, '--', process.execPath, '-e', '0'],
    ]) {
      const r = bounded([BIN, ...args])
      expect(r.status, args.join(' ')).toBe(125)
      expect(r.stderr, args.join(' ')).toContain('ENOTDIR')
      expect(r.stdout, args.join(' ')).toBe('')
    }
  })

  it('a directory that does not exist: no locks, and nothing is created by looking', () => {
    const dir = path.join(tmpDir(), 'missing', 'deeper')
    expect(list({ dir })).toEqual([])
    expect(inspect('web', { dir }).locked).toBe(false)
    const r = bounded([BIN, 'status', '--dir', dir])
    expect(r.status).toBe(0)
    expect(r.stdout).toMatch(/^No locks in /)
    expect(bounded([BIN, 'status', 'web', '--dir', dir]).status).toBe(3)
    expect(fs.existsSync(path.dirname(dir))).toBe(false)
    // Taking a lock makes it, parents too.
    tryLock('web', { dir }).release()
    expect(fs.statSync(dir).isDirectory()).toBe(true)
  })
})

// The scope directories live at fixed places in /dev/shm. To prepare them the
// way an attacker or a careless admin would without touching the machine's
// real ones, each case runs in a private mount namespace with its own empty
// /dev/shm (needs root: unshare and mount).
// With `uid`, the script runs as that user (from a copy of the package it
// can read).
function inPrivateShm(prepare: string, script: string, uid?: number): { status: number | null; stdout: string; stderr: string } {
  const as = uid === undefined ? '' : `setpriv --reuid=${uid} --regid=${uid} --clear-groups `
  const copy = uid === undefined ? { dir: ROOT, root: ROOT } : copyForOthers()
  const r = spawnSync('unshare', ['-m', 'sh', '-c', `mount -t tmpfs tmpfs /dev/shm && chmod 1777 /dev/shm && ${prepare} && exec ${as}"$0" -e "$1"`, process.execPath, script], {
    cwd: copy.dir,
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, IL_ROOT: copy.root },
  })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

const tryMachine = `
  const il = require(process.env.IL_ROOT)
  try { il.tryLock('d', { scope: 'machine' }); console.log('locked') }
  catch (e) { console.log(e.code, e.path) }`

describe.skipIf(!isRoot)('scope directories (needs root for a private /dev/shm)', () => {
  it('refuses a world-writable machine directory without the sticky bit, where anyone could delete locks', () => {
    const r = inPrivateShm('mkdir -m 0777 /dev/shm/instance-lock && chown 65534 /dev/shm/instance-lock', tryMachine)
    expect(r.stderr).toBe('')
    expect(r.stdout.trim()).toBe('EACCES /dev/shm/instance-lock')
  })

  // Its owner may delete any lock file in it, sticky or not, and so let a
  // second process take a lock that is held.
  it('refuses a sticky machine directory another user created', () => {
    const r = inPrivateShm('mkdir -m 1777 /dev/shm/instance-lock && chown 65534 /dev/shm/instance-lock', tryMachine)
    expect(r.stderr).toBe('')
    expect(r.stdout.trim()).toBe('EACCES /dev/shm/instance-lock')
  })

  it('uses a sticky machine directory root created, and makes its own lock files open to all', () => {
    const r = inPrivateShm('mkdir -m 1777 /dev/shm/instance-lock', `${tryMachine}; console.log((require('fs').statSync('/dev/shm/instance-lock/d.lock').mode & 0o777).toString(8))`)
    expect(r.stdout.trim().split('\n')).toEqual(['locked', '666'])
  })

  it.skipIf(OTHER_USERS !== undefined)("a user accepts a machine directory of their own, and another user's only from root", () => {
    const own = inPrivateShm('mkdir -m 1777 /dev/shm/instance-lock && chown 65534 /dev/shm/instance-lock', tryMachine, 65534)
    expect(own.stderr).toBe('')
    expect(own.stdout.trim()).toBe('locked')
    const other = inPrivateShm('mkdir -m 1777 /dev/shm/instance-lock && chown 65533 /dev/shm/instance-lock', tryMachine, 65534)
    expect(other.stdout.trim()).toBe('EACCES /dev/shm/instance-lock')
    const root = inPrivateShm('mkdir -m 1777 /dev/shm/instance-lock', tryMachine, 65534)
    expect(root.stdout.trim()).toBe('locked')
  })

  it('makes missing scope directories (user 700, machine 1777), and again when one is deleted while in use', () => {
    const r = inPrivateShm(
      'true',
      `const il = require(process.env.IL_ROOT); const fs = require('fs')
       const mode = (p) => (fs.statSync(p).mode & 0o7777).toString(8)
       il.tryLock('a').release(); il.tryLock('m', { scope: 'machine' }).release()
       console.log(mode('/dev/shm/instance-lock-0'), mode('/dev/shm/instance-lock'))
       fs.rmSync('/dev/shm/instance-lock-0', { recursive: true })
       il.tryLock('b'); console.log(mode('/dev/shm/instance-lock-0'), fs.existsSync('/dev/shm/instance-lock-0/b.lock'))`,
    )
    expect(r.stderr).toBe('')
    expect(r.stdout.trim().split('\n')).toEqual(['700 1777', '700 true'])
  })

  it('closes a user directory of ours that others could enter', () => {
    const r = inPrivateShm(
      'mkdir -m 0777 /dev/shm/instance-lock-0',
      `const il = require(process.env.IL_ROOT); il.tryLock('d');
       console.log((require('fs').statSync('/dev/shm/instance-lock-0').mode & 0o777).toString(8))`,
    )
    expect(r.stderr).toBe('')
    expect(r.stdout.trim()).toBe('700')
  })
})
