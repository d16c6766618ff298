import { execFileSync, spawn } from 'node:child_process'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { LockedError, singleInstance } from '../src/index.js'
import { FIXTURES, ROOT, builtinsLoadedBy, spawnChild, tmpDir, uniqueName } from './helpers.js'

function guard(name: string, options: object) {
  const proc = spawn(process.execPath, [path.join(FIXTURES, 'guard.cjs'), name, JSON.stringify(options)], { stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  proc.stdout.on('data', (d) => (stdout += d))
  proc.stderr.on('data', (d) => (stderr += d))
  const running = new Promise<void>((resolve, reject) => {
    proc.stdout.on('data', () => stdout.includes('running\n') && resolve())
    proc.once('exit', () => reject(new Error(`exited before running: ${stderr}`)))
  })
  // Only awaited for instances that are expected to run.
  running.catch(() => {})
  const exited = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => proc.once('exit', (code) => resolve({ code, stdout, stderr })))
  return { proc, running, exited }
}

describe('singleInstance', () => {
  it('the second instance prints who runs, since when, its data and how to stop it, then exits 1', async () => {
    const dir = tmpDir()
    const name = uniqueName('web')
    const first = guard(name, { dir, data: { port: 3000 } })
    await first.running
    const second = guard(name, { dir })
    const r = await second.exited
    expect(r.code).toBe(1)
    expect(r.stdout).toBe('')
    const lines = r.stderr.trimEnd().split('\n')
    expect(lines[0]).toContain(`"${name}" is already running as pid ${first.proc.pid}`)
    expect(lines[0]).toMatch(/since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/)
    expect(r.stderr).toContain('port=3000')
    expect(r.stderr).toContain(`instance-lock stop ${name}`)
    first.proc.stdin.end()
    expect((await first.exited).code).toBe(0)
    const third = guard(name, { dir })
    await third.running
    third.proc.stdin.end()
    await third.exited
  })

  it('exits with exitCode, and names key and scope in the stop command', async () => {
    const name = uniqueName('worker')
    const key = '/srv/db one.sqlite'
    const first = guard(name, { scope: 'machine', key })
    await first.running
    const r = await guard(name, { scope: 'machine', key, exitCode: 42 }).exited
    expect(r.code).toBe(42)
    expect(r.stderr).toContain(`instance-lock stop ${name} --scope machine --key '/srv/db one.sqlite'`)
    first.proc.stdin.end()
    await first.exited
  })

  it("onLocked: 'throw' throws LockedError with the holder instead of exiting", async () => {
    const dir = tmpDir()
    const name = uniqueName()
    const child = await spawnChild()
    await child.call('tryLock', name, { dir })
    let err: unknown
    try {
      singleInstance(name, { dir, onLocked: 'throw' })
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(LockedError)
    expect((err as LockedError).holder?.pid).toBe(child.pid)
  })

  it('returns the Lock when free', () => {
    const dir = tmpDir()
    const l = singleInstance(uniqueName(), { dir })
    expect(l.released).toBe(false)
    l.release()
  })
})

describe('guard start-up', () => {
  // What the first line of main() pays for is measured in the benchmark;
  // these are the Node modules it must not pull in (see src/core/speed.ts):
  // node:os, and the ESM resolver Node 20 loads to resolve the first package
  // with an "exports" map.
  it.runIf(process.platform !== 'win32')('takes the guard, required by name, without loading node:os or the ESM resolver', () => {
    const loaded = builtinsLoadedBy("require('instance-lock').singleInstance(process.argv[2], { dir: process.argv[3] })", uniqueName(), tmpDir())
    expect(loaded.filter((m) => m === 'os' || m === 'internal/modules/esm/resolve')).toEqual([])
  })

  // A key's hash comes from the addon (see src/core/speed.ts).
  it('takes a keyed guard without loading node:crypto', () => {
    const loaded = builtinsLoadedBy("require('instance-lock').singleInstance(process.argv[2], { dir: process.argv[3], key: 'tenant-7' })", uniqueName(), tmpDir())
    expect(loaded.filter((m) => m === 'crypto' || m.startsWith('internal/crypto'))).toEqual([])
  })
})

describe.runIf(process.platform === 'linux')('the guard installs no signal handler', () => {
  // The signals a process catches, as the kernel lists them (SigCgt), after
  // `script` ran: the guard, held or refused with 'throw', must add none
  // (the lock needs no cleanup). Only a lock() that blocks installs one, for
  // a real-time signal that wakes its own waiting thread.
  const caught = (script: string): string => {
    const dir = tmpDir()
    const out = execFileSync(
      process.execPath,
      ['-e', `${script}; process.stdout.write(require('node:fs').readFileSync('/proc/self/status', 'utf8').match(/^SigCgt:\\s*(\\w+)/m)[1])`],
      { cwd: ROOT, encoding: 'utf8', env: { ...process.env, IL_DIR: dir } },
    )
    return out.trim()
  }

  it('holding the guard or being refused by it catches the same signals as a bare node', () => {
    const bare = caught(`require(${JSON.stringify(ROOT)})`)
    const name = uniqueName()
    expect(caught(`require(${JSON.stringify(ROOT)}).singleInstance(${JSON.stringify(name)}, { dir: process.env.IL_DIR })`)).toBe(bare)
    const held = singleInstance(name, { dir: tmpDir() })
    try {
      const refused = `try { require(${JSON.stringify(ROOT)}).singleInstance(${JSON.stringify(name)}, { dir: ${JSON.stringify(path.dirname(held.path))}, onLocked: 'throw' }) } catch {}`
      expect(caught(refused)).toBe(bare)
    } finally {
      held.release()
    }
  })
})
