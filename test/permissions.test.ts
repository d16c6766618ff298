import fs from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tryLock } from '../src/index.js'
import { isRoot, spawnChildAs, uniqueName } from './helpers.js'

// Root against an unprivileged user (uid 65534), for real: these need root
// to switch users and to set fs.protected_regular.
const SYSCTL = '/proc/sys/fs/protected_regular'

describe.skipIf(!isRoot)('cross-user', () => {
  let saved: string
  beforeAll(() => {
    saved = fs.readFileSync(SYSCTL, 'utf8').trim()
    // 2: O_CREAT on another user's file in any sticky group- or
    // world-writable directory fails with EACCES, even for root.
    fs.writeFileSync(SYSCTL, '2')
  })
  afterAll(() => {
    fs.writeFileSync(SYSCTL, saved)
  })

  for (const first of ['root', 'nobody'] as const) {
    it(`machine scope: root and uid 65534 contend, ${first} creating the lock file`, async () => {
      const name = uniqueName('machine')
      const nobody = await spawnChildAs(65534)
      let mine
      if (first === 'root') {
        mine = tryLock(name, { scope: 'machine', data: { who: 'root' } })
        const err = await nobody.fails('tryLock', name, { scope: 'machine' })
        expect(err).toMatchObject({ code: 'ELOCKED', holder: { pid: process.pid, data: { who: 'root' } } })
        mine.release()
        const { path } = await nobody.call<{ path: string }>('tryLock', name, { scope: 'machine', data: { who: 'nobody' } })
        expect(() => tryLock(name, { scope: 'machine' })).toThrow(expect.objectContaining({ code: 'ELOCKED', holder: expect.objectContaining({ pid: nobody.pid, data: { who: 'nobody' } }) }))
        await nobody.call('release', path)
        tryLock(name, { scope: 'machine' }).release()
      } else {
        const { path } = await nobody.call<{ path: string }>('tryLock', name, { scope: 'machine', data: { who: 'nobody' } })
        expect(fs.statSync(path).uid).toBe(65534)
        expect(() => tryLock(name, { scope: 'machine' })).toThrow(expect.objectContaining({ code: 'ELOCKED', holder: expect.objectContaining({ pid: nobody.pid }) }))
        await nobody.call('release', path)
        mine = tryLock(name, { scope: 'machine', data: { who: 'root' } })
        const err = await nobody.fails('tryLock', name, { scope: 'machine' })
        expect(err).toMatchObject({ code: 'ELOCKED', holder: { pid: process.pid, data: { who: 'root' } } })
        mine.release()
        await nobody.call('tryLock', name, { scope: 'machine' })
      }
    })
  }

  it('user scope: the same name is a different lock for each user, and others cannot read ours', async () => {
    const name = uniqueName('user')
    const mine = tryLock(name, { data: { secret: 1 } })
    const nobody = await spawnChildAs(65534)
    const { path } = await nobody.call<{ path: string }>('tryLock', name)
    expect(path).not.toBe(mine.path)
    expect(fs.statSync(mine.path).mode & 0o777).toBe(0o600)
    expect(fs.statSync(`/dev/shm/instance-lock-${process.getuid!()}`).mode & 0o777).toBe(0o700)
    // Their list of user locks doesn't show ours.
    const theirs = await nobody.call<Array<{ name: string; holder?: { pid: number } }>>('list')
    expect(theirs.filter((s) => s.name === name).map((s) => s.holder?.pid)).toEqual([nobody.pid])
    mine.release()
  })

  it('stop() by a user who cannot prove the holder signals nobody and says so', async () => {
    const name = uniqueName('unproven')
    const mine = tryLock(name, { scope: 'machine' })
    const nobody = await spawnChildAs(65534)
    // uid 65534 may not read root's /proc/<pid>/fdinfo: no proof, no signal.
    const r = await nobody.call('stop', name, { scope: 'machine', timeout: 200 })
    expect(r).toEqual({ stopped: false, forced: false })
    expect(mine.released).toBe(false)
    expect(() => tryLock(name, { scope: 'machine' })).toThrow(expect.objectContaining({ code: 'ELOCKED' }))
    mine.release()
  })

  it('the user and machine scopes of one name are two locks', () => {
    const name = uniqueName('both')
    const u = tryLock(name)
    const m = tryLock(name, { scope: 'machine' })
    expect(u.path).not.toBe(m.path)
    u.release()
    m.release()
  })
})
