import { execFile, execFileSync } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { getSystemErrorMap } from 'node:util'
import { describe, expect, it } from 'vitest'
import { LockedError, inspect, lock, tryLock } from '../src/index.js'
import { FIXTURES, isRoot, tmpDir, uniqueName } from './helpers.js'

interface Shape {
  code?: string
  errno?: number
  syscall?: string
  path?: string
  message: string
}

/** The error `f` throws or rejects with. */
async function failure(f: () => unknown): Promise<Shape> {
  try {
    await f()
  } catch (e) {
    return e as Shape
  }
  throw new Error('expected a failure')
}

/** Node's own code and errno agree, and the message has fs's shape: "CODE: text, syscall 'path'". */
function expectSystemError(e: Shape, code: string, syscall: string, p: string): string {
  expect(e).toMatchObject({ code, errno: -os.constants.errno[code as keyof typeof os.constants.errno], syscall, path: p })
  const tail = `, ${syscall} '${p}'`
  expect(e.message.startsWith(`${code}: `) && e.message.endsWith(tail)).toBe(true)
  return e.message.slice(code.length + 2, -tail.length)
}

// Out of file descriptors, every path to a failure gives fs's error: code,
// errno, syscall, the lock file's path, and the message fs.openSync gave for
// the same condition in the same process, only with its own syscall and path.
describe('LockedError', () => {
  it('is what instanceof asks of any error named LockedError with code ELOCKED (the PostgreSQL entry has its own class)', () => {
    class Other extends Error {
      readonly code = 'ELOCKED'
    }
    Object.defineProperty(Other.prototype, 'name', { value: 'LockedError' })
    expect(new Other('held')).toBeInstanceOf(LockedError)
    expect(new LockedError('held')).toBeInstanceOf(LockedError)
    expect(Object.assign(new Error('x'), { code: 'ELOCKED' })).not.toBeInstanceOf(LockedError)
    expect({ name: 'LockedError', code: 'ELOCKED' }).not.toBeInstanceOf(LockedError)
  })
})

describe('out of file descriptors (EMFILE)', () => {
  it('tryLock and lock, with no descriptor or one free, fail as fs fails, naming the lock file', async () => {
    const name = uniqueName('emfile')
    const dir = tmpDir()
    // Held here, in the user scope: the child's lock() has to wait.
    const held = tryLock(name)
    try {
      const out = await new Promise<string>((resolve, reject) => {
        execFile('sh', ['-c', 'ulimit -n 256 && exec "$0" "$@"', process.execPath, path.join(FIXTURES, 'emfile.cjs'), name, dir], { timeout: 60_000 }, (err, stdout, stderr) =>
          err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
        )
      })
      const { fsError, got } = JSON.parse(out) as { fsError: Shape; got: Record<string, Shape> }
      expect(fsError.code).toBe('EMFILE')
      const text = expectSystemError(fsError, 'EMFILE', 'open', '/dev/null')
      const inDir = path.join(dir, `${name}.lock`)
      const cases: Array<[string, string, string | undefined]> = [
        ['tryLock, none free', inDir, 'open'],
        ['lock, none free', inDir, 'open'],
        ['tryLock, one free', held.path, 'open'],
        // The call that runs out is the wait's own; which one is its business.
        ['lock held elsewhere, one free', held.path, undefined],
      ]
      for (const [label, p, syscall] of cases) {
        const e = got[label]!
        expect(e, label).toBeDefined()
        expect(typeof e.syscall, label).toBe('string')
        expect(expectSystemError(e, 'EMFILE', syscall ?? e.syscall!, p), label).toBe(text)
      }
    } finally {
      held.release()
    }
  })
})

// Something that is not a regular file at the lock path: the kernel's (or
// the addon's) code, the lock file's path, and a message in fs's shape that
// says what is there, not libuv's generic text for the code.
describe('not a regular file at the lock path', () => {
  const generic = getSystemErrorMap()

  async function expectRefused(name: string, dir: string, code: string): Promise<void> {
    const p = path.join(dir, `${name}.lock`)
    for (const f of [() => tryLock(name, { dir }), () => lock(name, { dir, timeout: 5_000 }), () => inspect(name, { dir })]) {
      const text = expectSystemError(await failure(f), code, 'open', p)
      expect(text).not.toBe(code)
      expect(text).not.toBe(generic.get(-os.constants.errno[code as keyof typeof os.constants.errno])![1])
    }
  }

  it('a socket: ENXIO', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const server = net.createServer()
    await new Promise<void>((resolve) => server.listen(path.join(dir, `${name}.lock`), resolve))
    try {
      await expectRefused(name, dir, 'ENXIO')
    } finally {
      server.close()
    }
  })

  it('a FIFO: EINVAL', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    execFileSync('mkfifo', [path.join(dir, `${name}.lock`)])
    await expectRefused(name, dir, 'EINVAL')
  })

  it('a directory: EISDIR', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    fs.mkdirSync(path.join(dir, `${name}.lock`))
    await expectRefused(name, dir, 'EISDIR')
  })

  it.runIf(isRoot)('a device file: EINVAL', async () => {
    const dir = tmpDir()
    const name = uniqueName()
    // The null device's numbers; a tmpfs mounted nodev still lets it be made.
    execFileSync('mknod', [path.join(dir, `${name}.lock`), 'c', '1', '3'])
    await expectRefused(name, dir, 'EINVAL')
  })
})
