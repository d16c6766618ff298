// The second instance hands over to the first: singleInstance with
// onLocked 'forward' (and onSecondInstance in every form), the CLI's send,
// and examples/open-in-running.mjs. Everything runs as separate processes
// on the built package, as apps do.
import { execFile, fork, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { Lock } from '../src/index.js'
import { FIXTURES, ROOT, tmpDir, uniqueName } from './helpers.js'

const il = createRequire(__filename)(ROOT) as typeof import('../src/index.js')
const FORWARDER = path.join(FIXTURES, 'forwarder.cjs')
const CLI = path.join(ROOT, 'bin', 'instance-lock.js')
const EXAMPLE = path.join(ROOT, 'examples', 'open-in-running.mjs')
const env = { ...process.env, IL_ROOT: ROOT }

const started: ChildProcess[] = []
afterEach(() => {
  for (const p of started.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL')
})

interface Got {
  argv: string[]
  cwd: string
  pid: number
  data?: unknown
}

/** The first instance: resolves once it holds the lock; `got` collects what it receives. */
async function first(name: string, options: object): Promise<{ proc: ChildProcess; got: Got[] }> {
  const proc = fork(FORWARDER, [name, JSON.stringify(options)], { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  started.push(proc)
  const got: Got[] = []
  proc.on('message', (m: { got?: Got }) => {
    if (m.got !== undefined) got.push(m.got)
  })
  await new Promise<void>((resolve, reject) => {
    proc.on('message', (m: { holding?: number }) => {
      if (m.holding !== undefined) resolve()
    })
    proc.once('exit', (code) => reject(new Error(`first instance exited with ${code}`)))
  })
  return { proc, got }
}

function run(file: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [file, ...args], { env, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr })
    })
  })
}

describe("singleInstance({ onLocked: 'forward' })", () => {
  it('a second instance hands its argv and message to the first, and exits 0 without a word', async () => {
    const name = uniqueName('fwd')
    const one = await first(name, { message: { from: 'first' } })
    const two = await run(FORWARDER, [name, JSON.stringify({ message: { open: 'x y.txt' } }), 'x y.txt', '', 'ü'])
    expect(two).toEqual({ code: 0, stdout: '', stderr: '' })
    expect(one.got).toHaveLength(1)
    expect(one.got[0]!.argv.slice(-3)).toEqual(['x y.txt', '', 'ü'])
    expect(one.got[0]!.data).toEqual({ open: 'x y.txt' })
  })

  it('prints the conflict and exits with exitCode when the first does not listen, or its handler throws', async () => {
    const quiet = uniqueName('fwd')
    await first(quiet, { reply: 'none' })
    const a = await run(FORWARDER, [quiet, JSON.stringify({ timeout: 300, exitCode: 7 })])
    expect(a.code).toBe(7)
    expect(a.stderr).toContain(quiet)
    const busy = uniqueName('fwd')
    const one = await first(busy, { reply: 'throw' })
    const b = await run(FORWARDER, [busy, JSON.stringify({ exitCode: 9 })])
    expect(b.code).toBe(9)
    expect(one.got).toHaveLength(1)
  })

  it('refuses a message that is not JSON before it sends anything', async () => {
    const name = uniqueName('fwd')
    const held = il.tryLock(name)
    try {
      await expect(il.singleInstance(name, { onLocked: 'forward', message: 10n })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' })
    } finally {
      held.release()
    }
  })

  it('resolves the Lock when free, listening with onSecondInstance; every form takes onSecondInstance', async () => {
    const forward = uniqueName('fwd')
    const lock: Lock = await il.singleInstance(forward, { onLocked: 'forward', onSecondInstance: (m) => ({ pid: m.pid }) })
    expect(await il.send(forward)).toEqual({ pid: process.pid })
    lock.release()
    const exit = uniqueName('fwd')
    const sync: Lock = il.singleInstance(exit, { onSecondInstance: () => 'exit form' })
    expect(await il.send(exit)).toBe('exit form')
    sync.release()
    const replace = uniqueName('fwd')
    const replaced: Lock = await il.singleInstance(replace, { onLocked: 'replace', onSecondInstance: () => 'replace form' })
    expect(await il.send(replace)).toBe('replace form')
    replaced.release()
    expect(() => il.singleInstance(uniqueName('fwd'), { onSecondInstance: 5 as unknown as () => void })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
  })
})

describe('instance-lock send', () => {
  it('prints the reply as JSON and exits 0; 3 when free; 1 without a listener or when the handler throws; 2 for bad usage', async () => {
    const name = uniqueName('cli')
    await first(name, {})
    const ok = await run(CLI, ['send', name, '--json', '{"a":[1,2]}'])
    expect(ok.code).toBe(0)
    expect(JSON.parse(ok.stdout)).toEqual({ opened: ['--json', '{"a":[1,2]}'] })
    expect((await run(CLI, ['send', uniqueName('cli')])).code).toBe(3)
    const quiet = uniqueName('cli')
    await first(quiet, { reply: 'none' })
    expect((await run(CLI, ['send', quiet, '--timeout', '300'])).code).toBe(1)
    const busy = uniqueName('cli')
    await first(busy, { reply: 'throw' })
    const thrown = await run(CLI, ['send', busy])
    expect(thrown.code).toBe(1)
    expect(thrown.stderr).toContain('busy')
    expect((await run(CLI, ['send', name, '--json', '{nope'])).code).toBe(2)
    expect((await run(CLI, ['send', name, '--timeout', 'soon'])).code).toBe(2)
    expect((await run(CLI, ['send'])).code).toBe(2)
    expect((await run(CLI, ['send', name, '--json', JSON.stringify('x'.repeat(70_000))])).code).toBe(2)
    const help = await run(CLI, ['send', '--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('instance-lock send NAME')
  })
})

describe('examples/open-in-running.mjs', () => {
  it('the first instance opens files; a second hands its file over and exits 0', async () => {
    const cwd = tmpDir()
    const name = uniqueName('ex')
    const proc = spawn(process.execPath, [EXAMPLE], { cwd, env: { ...env, OPEN_IN_RUNNING_NAME: name }, stdio: ['ignore', 'pipe', 'inherit'] })
    started.push(proc)
    let out = ''
    const seen = (text: string): Promise<void> =>
      new Promise((resolve) => {
        const check = (): void => {
          if (out.includes(text)) resolve()
        }
        proc.stdout.on('data', (c: Buffer) => {
          out += c.toString()
          check()
        })
        check()
      })
    await seen('ready')
    fs.writeFileSync(path.join(cwd, 'notes.txt'), 'hello')
    const second = await new Promise<number | null>((resolve) => {
      execFile(process.execPath, [EXAMPLE, 'notes.txt'], { cwd, env: { ...env, OPEN_IN_RUNNING_NAME: name } }, (err) => resolve(err === null ? 0 : (err.code as number)))
    })
    expect(second).toBe(0)
    await seen(`opened ${path.join(fs.realpathSync(cwd), 'notes.txt')}`)
  })
})
