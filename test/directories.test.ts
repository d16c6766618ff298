import { spawnSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { OTHER_USERS, ROOT, copyForOthers, isRoot } from './helpers.js'

// The scope directories live at fixed places in /dev/shm. To prepare them the
// way an attacker or a careless admin would without touching the machine's
// real ones, each case runs in a private mount namespace with its own empty
// /dev/shm (needs root: unshare and mount).
// With `uid`, the script runs as that user (from a copy of the package it
// can read).
function inPrivateShm(prepare: string, script: string, uid?: number): { status: number | null; stdout: string; stderr: string } {
  const as = uid === undefined ? '' : `setpriv --reuid=${uid} --regid=${uid} --clear-groups `
  const copy = uid === undefined ? { dir: ROOT, root: ROOT } : copyForOthers()
  const r = spawnSync(
    'unshare',
    ['-m', 'sh', '-c', `mount -t tmpfs tmpfs /dev/shm && chmod 1777 /dev/shm && ${prepare} && exec ${as}"$0" -e "$1"`, process.execPath, script],
    { cwd: copy.dir, encoding: 'utf8', timeout: 30_000, env: { ...process.env, IL_ROOT: copy.root } },
  )
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
    const r = inPrivateShm(
      'mkdir -m 1777 /dev/shm/instance-lock',
      `${tryMachine}; console.log((require('fs').statSync('/dev/shm/instance-lock/d.lock').mode & 0o777).toString(8))`,
    )
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
