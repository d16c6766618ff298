import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { inspect, list, tryLock } from '../src/index.js'
import { spawnChild, tmpDir, uniqueName } from './helpers.js'

describe('inspect', () => {
  it('never makes a concurrent tryLock fail while another process hammers it', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    tryLock(name, { dir }).release()
    const child = await spawnChild()
    let done = false
    const inspected = child.call<number>('inspectLoop', name, { dir }, 3000).finally(() => {
      done = true
    })
    let cycles = 0
    let spurious = 0
    while (!done) {
      for (let i = 0; i < 200; i++) {
        try {
          tryLock(name, { dir }).release()
          cycles++
        } catch (err) {
          if ((err as { code?: string }).code !== 'ELOCKED') throw err
          spurious++
        }
      }
      await new Promise((r) => setImmediate(r))
    }
    expect(await inspected).toBeGreaterThan(100)
    expect(cycles).toBeGreaterThan(1000)
    expect(spurious).toBe(0)
  })

  it('reports holder, key and data of another process, and nothing once it is gone', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const db = path.join(dir, 'app.db')
    fs.writeFileSync(db, '')
    const child = await spawnChild()
    const { path: p } = await child.call<{ path: string }>('tryLock', name, { dir, key: db, data: { port: 3000 } })
    const s = inspect(name, { dir, key: db })
    expect(s).toMatchObject({ name, key: db, scope: 'user', locked: true, path: p })
    expect(s.holder).toMatchObject({ pid: child.pid, name, scope: 'user', key: db, data: { port: 3000 } })
    expect(new Date(s.holder!.startedAt).getTime()).toBeGreaterThan(Date.now() - 60_000)
    const startedAt = s.holder!.startedAt
    await child.call('update', p, { port: 3001 })
    expect(inspect(name, { dir, key: db }).holder).toMatchObject({ data: { port: 3001 }, startedAt })
    await child.kill()
    const after = inspect(name, { dir, key: db })
    expect(after.locked).toBe(false)
    expect(after.holder).toBeUndefined()
  })

  it('reports its own lock as the Lock says, before and after update(), here and in another process', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const l = tryLock(name, { dir, data: { port: 1 } })
    const child = await spawnChild()
    try {
      const holder = { pid: process.pid, name, scope: 'user', startedAt: l.acquiredAt.toISOString() }
      expect(l.holder).toMatchObject({ ...holder, data: { port: 1 } })
      expect(inspect(name, { dir }).holder).toEqual(l.holder)
      l.update({ port: 2 })
      expect(inspect(name, { dir }).holder).toMatchObject({ ...holder, data: { port: 2 } })
      expect((await child.call<{ holder: unknown }>('inspect', name, { dir })).holder).toMatchObject({ ...holder, data: { port: 2 } })
    } finally {
      l.release()
      await child.kill()
    }
  })

  it('carries long paths and long non-ASCII records through the addon intact', async () => {
    // Longer than the addon's 2 KiB stack buffers for strings, and not ASCII.
    let dir = tmpDir()
    while (dir.length < 3000) dir = path.join(dir, 'd'.repeat(200))
    fs.mkdirSync(dir, { recursive: true })
    const name = uniqueName()
    const data = { note: 'é中🔒'.repeat(1500), port: 3000 }
    const child = await spawnChild()
    await child.call('tryLock', name, { dir, data })
    expect(inspect(name, { dir }).holder?.data).toEqual(data)
    await child.call('update', inspect(name, { dir }).path, { note: 'ü' })
    expect(inspect(name, { dir }).holder?.data).toEqual({ note: 'ü' })
    await child.kill()
    expect(inspect(name, { dir }).locked).toBe(false)
  })

  it('answers for locks held by this process from the registry', () => {
    const dir = tmpDir()
    const name = uniqueName()
    const lock = tryLock(name, { dir, data: { role: 'self' } })
    expect(inspect(name, { dir })).toMatchObject({ locked: true, holder: { pid: process.pid, data: { role: 'self' } } })
    lock.release()
    expect(inspect(name, { dir }).locked).toBe(false)
  })

  it('creates nothing: no directory, no file', () => {
    const dir = path.join(tmpDir(), 'absent')
    expect(inspect(uniqueName(), { dir })).toMatchObject({ locked: false })
    expect(list({ dir })).toEqual([])
    expect(fs.existsSync(dir)).toBe(false)
  })
})

describe('list', () => {
  it('reports every lock of the directory, held or free, with keys, and changes none of them', async () => {
    const dir = tmpDir()
    const a = uniqueName('a')
    const b = uniqueName('b')
    const db = path.join(dir, 'x.db')
    fs.writeFileSync(db, '')
    const child = await spawnChild()
    await child.call('tryLock', a, { dir, data: { port: 1 } })
    await child.call('tryLock', b, { dir, key: db })
    tryLock(b, { dir }).release()
    const mine = tryLock(a, { dir, scope: 'machine' })
    const before = fs.readdirSync(dir).map((f) => [f, fs.statSync(path.join(dir, f)).mtimeMs])
    const user = list({ dir })
    expect(user.map((s) => [s.name, s.key, s.locked])).toEqual([
      [a, undefined, true],
      [b, undefined, false],
      [b, db, true],
    ])
    expect(user[0]!.holder).toMatchObject({ pid: child.pid, data: { port: 1 } })
    expect(list({ dir, scope: 'machine' }).map((s) => [s.name, s.scope, s.locked, s.holder?.pid])).toEqual([[a, 'machine', true, process.pid]])
    expect(fs.readdirSync(dir).map((f) => [f, fs.statSync(path.join(dir, f)).mtimeMs])).toEqual(before)
    // Still held by the child: listing took nothing.
    expect(() => tryLock(a, { dir })).toThrow(expect.objectContaining({ code: 'ELOCKED' }))
    mine.release()
  })
})
