import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { lock, tryLock } from '../src/index.js'
import { OTHER_USERS, spawnChild, spawnChildAs, uniqueName } from './helpers.js'

// Root against an unprivileged user (uid 65534), for real: these need root
// to switch users and to set fs.protected_regular.
const SYSCTL = '/proc/sys/fs/protected_regular'

/** What unlinking `file` as `uid` did: 'unlinked' or the error code. */
function unlinkAs(uid: number, file: string): string {
  const script = `try { require('fs').unlinkSync(process.argv[1]); console.log('unlinked') } catch (e) { console.log(e.code) }`
  return execFileSync('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', process.execPath, '-e', script, file], { cwd: '/', encoding: 'utf8' }).trim()
}

describe.skipIf(OTHER_USERS !== undefined)('cross-user', () => {
  let saved: string
  beforeAll(() => {
    saved = fs.readFileSync(SYSCTL, 'utf8').trim()
    // 2: O_CREAT on another user's file in any sticky group- or
    // world-writable directory fails with EACCES, even for root.
    fs.writeFileSync(SYSCTL, '2')
    // The machine directory must be root's (one that uid 65534 made first
    // is refused): root makes it, as an administrator would.
    tryLock(uniqueName('setup'), { scope: 'machine' }).release()
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
        expect(() => tryLock(name, { scope: 'machine' })).toThrow(
          expect.objectContaining({ code: 'ELOCKED', holder: expect.objectContaining({ pid: nobody.pid, data: { who: 'nobody' } }) }),
        )
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

  // The creator of a lock file owns it and, as its owner, may unlink it even
  // from the sticky directory: while root held the lock, a second process
  // would then make a new file and take it too. Root takes the file over.
  it('machine scope: a lock file uid 65534 created cannot be deleted by them while root holds it, and stays exclusive', async () => {
    const name = uniqueName('takeover')
    const nobody = await spawnChildAs(65534)
    const { path } = await nobody.call<{ path: string }>('tryLock', name, { scope: 'machine' })
    await nobody.call('release', path)
    expect(fs.statSync(path).uid).toBe(65534)
    const mine = tryLock(name, { scope: 'machine' })
    // Only the owner changes: the mode stays open to every user.
    expect(fs.statSync(path).uid).toBe(0)
    expect(fs.statSync(path).mode & 0o7777).toBe(0o666)
    expect(unlinkAs(65534, path)).toBe('EPERM')
    const other = await spawnChild()
    expect(await other.fails('tryLock', name, { scope: 'machine' })).toMatchObject({ code: 'ELOCKED' })
    // And uid 65534 can still take it once root lets go.
    mine.release()
    await nobody.call('tryLock', name, { scope: 'machine' })
  })

  it('machine scope: root that waited for the lock of uid 65534 takes its file over too', async () => {
    const name = uniqueName('takeover-wait')
    const nobody = await spawnChildAs(65534)
    const { path } = await nobody.call<{ path: string }>('tryLock', name, { scope: 'machine' })
    const waiting = lock(name, { scope: 'machine', timeout: 30_000 })
    await nobody.call('release', path)
    const mine = await waiting
    expect(fs.statSync(path).uid).toBe(0)
    expect(unlinkAs(65534, path)).toBe('EPERM')
    mine.release()
  })

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
    expect(r).toEqual({ stopped: false, forced: false, holder: expect.objectContaining({ name, pid: process.pid }), unverified: 'unseen' })
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
