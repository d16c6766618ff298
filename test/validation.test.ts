import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { inspect, list, lock, singleInstance, tryLock } from '../src/index.js'
import { tmpDir, uniqueName } from './helpers.js'

const badNameTypes: unknown[] = [undefined, null, 5, {}, [], Symbol('x'), () => 'x', new String('x')]
const badNames = ['', '.', '..', '.hidden', 'a/b', 'a\\b', '../x', 'a\0b', 'x'.repeat(65), 'sp ace', 'é', 'a:b', '/abs', 'tab\t']

type Call = (name: unknown, options?: unknown) => unknown

function isPlainObject(o: unknown): o is object {
  return o !== null && typeof o === 'object' && !Array.isArray(o)
}

// Every public entry that takes a name, made synchronous-or-promise alike.
const entries: Array<[string, Call]> = [
  ['tryLock', (n, o) => tryLock(n as string, o as object)],
  ['lock', (n, o) => lock(n as string, o as object)],
  ['singleInstance', (n, o) => singleInstance(n as string, isPlainObject(o) ? { onLocked: 'throw', ...o } : (o as object))],
  ['inspect', (n, o) => inspect(n as string, o as object)],
]

async function codeOf(f: () => unknown): Promise<{ code: string; type: string }> {
  try {
    await f()
  } catch (err) {
    return { code: (err as { code: string }).code, type: (err as Error).constructor.name }
  }
  throw new Error('did not throw')
}

describe('bad input is refused before anything is touched', () => {
  for (const [fn, call] of entries) {
    it(`${fn}: names`, async () => {
      const dir = path.join(tmpDir(), 'never')
      for (const n of badNameTypes) expect(await codeOf(() => call(n, { dir }))).toEqual({ code: 'ERR_INVALID_ARG_TYPE', type: 'TypeError' })
      for (const n of badNames) expect(await codeOf(() => call(n, { dir }))).toEqual({ code: 'ERR_INVALID_ARG_VALUE', type: 'TypeError' })
      expect(fs.existsSync(dir)).toBe(false)
    })

    it(`${fn}: options`, async () => {
      const dir = path.join(tmpDir(), 'never')
      const name = uniqueName()
      const cases: Array<[unknown, string]> = [
        ['opts', 'ERR_INVALID_ARG_TYPE'],
        [5, 'ERR_INVALID_ARG_TYPE'],
        [{ dir, key: 5 }, 'ERR_INVALID_ARG_TYPE'],
        [{ dir, key: '' }, 'ERR_INVALID_ARG_VALUE'],
        [{ dir, key: 'a\0b' }, 'ERR_INVALID_ARG_VALUE'],
        [{ dir, key: 'k'.repeat(4097) }, 'ERR_INVALID_ARG_VALUE'],
        [{ dir, scope: 'global' }, 'ERR_INVALID_ARG_VALUE'],
        [{ dir, scope: 1 }, 'ERR_INVALID_ARG_TYPE'],
        [{ dir: 5 }, 'ERR_INVALID_ARG_TYPE'],
        [{ dir: '' }, 'ERR_INVALID_ARG_VALUE'],
        [{ dir: dir + '\0' }, 'ERR_INVALID_ARG_VALUE'],
        [{ dir, data: [] }, 'ERR_INVALID_ARG_TYPE'],
        [{ dir, data: 'port=3' }, 'ERR_INVALID_ARG_TYPE'],
        [{ dir, data: { big: 1n } }, 'ERR_INVALID_ARG_VALUE'],
        [{ dir, data: { s: 'x'.repeat(20_000) } }, 'ERR_INVALID_ARG_VALUE'],
      ]
      const circular: Record<string, unknown> = {}
      circular.self = circular
      cases.push([{ dir, data: circular }, 'ERR_INVALID_ARG_VALUE'])
      for (const [o, code] of cases) {
        if (fn === 'inspect' && typeof o === 'object' && o !== null && 'data' in o) continue
        expect({ o, ...(await codeOf(() => call(name, o))) }).toMatchObject({ o, code })
      }
      expect(fs.existsSync(dir)).toBe(false)
    })
  }

  it('a traversal name creates nothing outside the scope directory', () => {
    expect(() => tryLock('../escape')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
    expect(fs.existsSync('/dev/shm/escape.lock')).toBe(false)
    expect(fs.existsSync('/tmp/escape.lock')).toBe(false)
  })

  it('lock(): timeout and signal', async () => {
    const dir = path.join(tmpDir(), 'never')
    const name = uniqueName()
    expect(await codeOf(() => lock(name, { dir, timeout: -1 }))).toEqual({ code: 'ERR_OUT_OF_RANGE', type: 'RangeError' })
    expect(await codeOf(() => lock(name, { dir, timeout: NaN }))).toEqual({ code: 'ERR_OUT_OF_RANGE', type: 'RangeError' })
    expect(await codeOf(() => lock(name, { dir, timeout: '5' as unknown as number }))).toEqual({ code: 'ERR_INVALID_ARG_TYPE', type: 'TypeError' })
    expect(await codeOf(() => lock(name, { dir, signal: {} as AbortSignal }))).toEqual({ code: 'ERR_INVALID_ARG_TYPE', type: 'TypeError' })
    expect(fs.existsSync(dir)).toBe(false)
  })

  it('lock() rejects rather than throwing synchronously', () => {
    const p = lock(5 as unknown as string)
    expect(p).toBeInstanceOf(Promise)
    return expect(p).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' })
  })

  it('singleInstance(): onLocked and exitCode', () => {
    const dir = path.join(tmpDir(), 'never')
    const name = uniqueName()
    expect(() => singleInstance(name, { dir, onLocked: 'ignore' as 'exit' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
    expect(() => singleInstance(name, { dir, exitCode: -1 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
    expect(() => singleInstance(name, { dir, exitCode: 1.5 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
    expect(() => singleInstance(name, { dir, exitCode: 256 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
    expect(() => singleInstance(name, { dir, onLocked: 7 as unknown as 'exit' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
    expect(fs.existsSync(dir)).toBe(false)
  })

  it('list(): options', () => {
    expect(() => list({ scope: 'everyone' as 'user' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
    expect(() => list({ dir: 7 as unknown as string })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
    expect(() => list('user' as unknown as object)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
  })

  it('update() with bad data throws and keeps the previous record', () => {
    const dir = tmpDir()
    const name = uniqueName()
    const l = tryLock(name, { dir, data: { port: 1 } })
    expect(() => l.update([] as unknown as Record<string, unknown>)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
    expect(() => l.update({ n: 1n })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
    expect(inspect(name, { dir }).holder?.data).toEqual({ port: 1 })
    l.release()
    expect(() => l.update({ port: 2 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }))
    l.release()
  })
})

describe('keys that are paths', () => {
  // process.chdir: each test file runs in a process of its own (vitest forks).
  function inDir<T>(dir: string, f: () => T): T {
    const before = process.cwd()
    process.chdir(dir)
    try {
      return f()
    } finally {
      process.chdir(before)
    }
  }

  it('a file not made yet: every spelling is one lock, the one it is once the file exists', () => {
    const base = fs.realpathSync(tmpDir())
    const locks = path.join(base, 'locks')
    const project = path.join(base, 'project')
    fs.mkdirSync(path.join(project, 'data'), { recursive: true })
    fs.symlinkSync(project, path.join(base, 'link'))
    const name = uniqueName()
    const canonical = path.join(project, 'data', 'new.db')
    const l = inDir(project, () => tryLock(name, { dir: locks, key: 'data/new.db' }))
    expect(l.key).toBe(canonical)
    for (const spelling of ['./data/new.db', 'data//new.db', 'data/./x/../new.db', '../link/data/new.db', canonical, path.join(base, 'link', 'data', 'new.db')]) {
      expect(() => inDir(project, () => tryLock(name, { dir: locks, key: spelling })), spelling).toThrow(expect.objectContaining({ code: 'ELOCKED' }))
    }
    // Missing directories too.
    const deep = inDir(project, () => tryLock(name, { dir: locks, key: './new/dir/x.db' }))
    expect(deep.key).toBe(path.join(project, 'new', 'dir', 'x.db'))
    deep.release()

    fs.writeFileSync(canonical, '')
    expect(inspect(name, { dir: locks, key: path.join(base, 'link', 'data', 'new.db') })).toMatchObject({ locked: true, key: canonical })
    l.release()
  })

  it('the same relative key in two project directories is two locks', () => {
    const base = fs.realpathSync(tmpDir())
    const [a, b] = ['a', 'b'].map((p) => path.join(base, p))
    for (const p of [a, b]) fs.mkdirSync(path.join(p!, 'data'), { recursive: true })
    const locks = path.join(base, 'locks')
    const name = uniqueName()
    const la = inDir(a!, () => tryLock(name, { dir: locks, key: 'data/new.db' }))
    const lb = inDir(b!, () => tryLock(name, { dir: locks, key: 'data/new.db' }))
    expect([la.key, lb.key]).toEqual([path.join(a!, 'data', 'new.db'), path.join(b!, 'data', 'new.db')])
    la.release()
    lb.release()
  })

  it('a key that is not a path is taken as written', () => {
    const base = tmpDir()
    const name = uniqueName()
    for (const key of ['eu-west', 'postgres://db.example/app', 'https://example.com/a/b', 'tenant:42']) {
      const l = inDir(base, () => tryLock(name, { dir: path.join(base, 'locks'), key }))
      expect(l.key).toBe(key)
      l.release()
    }
  })
})
