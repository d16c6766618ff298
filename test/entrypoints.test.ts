import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import readline from 'node:readline'
import { describe, expect, it } from 'vitest'
import { ROOT, uniqueName } from './helpers.js'

function node(args: string[], input?: string) {
  // A process that does not exit by itself fails the test instead of hanging it.
  return spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', input, timeout: 30_000 })
}

describe('entry points', () => {
  it('import and require expose the same API and share one registry', () => {
    const name = uniqueName()
    const r = node(['--input-type=module', '-e', `
      import * as esm from 'instance-lock'
      import { createRequire } from 'node:module'
      const cjs = createRequire(import.meta.url)('instance-lock')
      const keys = (m) => Object.keys(m).filter((k) => k !== 'default' && k !== '__esModule').sort()
      console.log(JSON.stringify(keys(esm)) === JSON.stringify(keys(cjs)))
      console.log(esm.tryLock === cjs.tryLock && esm.LockedError === cjs.LockedError)
      const l = esm.tryLock(${JSON.stringify(name)})
      try { cjs.tryLock(${JSON.stringify(name)}) } catch (e) { console.log(e instanceof esm.LockedError, e.holder.pid === process.pid) }
      l.release()
    `])
    expect(r.stderr).toBe('')
    expect(r.stdout.trim().split('\n')).toEqual(['true', 'true', 'true true'])
  })

  // The bundled node-gyp-build reads package.json and lists directories its
  // own way (scripts/build-ts.mjs); it still honours the override it reads
  // the package's name for.
  const target = `${process.platform}-${process.arch}`
  it.runIf(fs.existsSync(path.join(ROOT, 'prebuilds', target)))('loads the addon from INSTANCE_LOCK_PREBUILD when that is set, as node-gyp-build does', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'il-prebuild-'))
    try {
      fs.cpSync(path.join(ROOT, 'prebuilds', target), path.join(dir, 'prebuilds', target), { recursive: true })
      const r = spawnSync(process.execPath, ['-e', `require('instance-lock'); console.log(Object.keys(require.cache).filter((f) => f.endsWith('.node')).join())`], {
        cwd: ROOT,
        encoding: 'utf8',
        env: { ...process.env, INSTANCE_LOCK_PREBUILD: dir },
      })
      expect(r.stderr).toBe('')
      expect(path.dirname(r.stdout.trim())).toBe(path.join(dir, 'prebuilds', target))
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it('installs no signal or exit handlers and leaves nothing keeping the process alive', () => {
    const name = uniqueName()
    const r = node(['-e', `
      const events = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR2', 'exit', 'beforeExit', 'uncaughtException']
      const before = events.map((e) => process.listenerCount(e))
      const il = require('instance-lock')
      const held = il.singleInstance(${JSON.stringify(name)})
      il.inspect(${JSON.stringify(name)}); il.list()
      il.lock(${JSON.stringify(name)}, { timeout: 50 }).catch((e) => {
        console.log(e.code, JSON.stringify(events.map((e) => process.listenerCount(e))) === JSON.stringify(before))
        // Nothing may keep the process alive now: it must exit by itself.
      })
    `])
    expect(r.stderr).toBe('')
    expect(r.status).toBe(0)
    expect(r.stdout.trim()).toBe('ELOCKED true')
  })

  it('a Lock nobody references is not released by garbage collection', () => {
    const name = uniqueName()
    const r = node(['--expose-gc', '-e', `
      const il = require('instance-lock')
      il.singleInstance(${JSON.stringify(name)})
      global.gc(); global.gc()
      const { spawnSync } = require('node:child_process')
      const other = spawnSync(process.execPath, ['-e', 'try { require("instance-lock").tryLock(${JSON.stringify(name)}) } catch (e) { process.exit(e.code === "ELOCKED" ? 42 : 1) }'])
      console.log(other.status)
    `])
    expect(r.stderr).toBe('')
    expect(r.stdout.trim()).toBe('42')
  })

  it('the web-server example guards itself and records its port', async () => {
    const first = spawn(process.execPath, [path.join(ROOT, 'examples/web-server.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] })
    try {
      const line = await new Promise<string>((resolve) => readline.createInterface({ input: first.stdout }).once('line', resolve))
      const port = Number(/localhost:(\d+)/.exec(line)![1])
      const second = node([path.join(ROOT, 'examples/web-server.mjs')])
      expect(second.status).toBe(1)
      expect(second.stderr).toContain(`as pid ${first.pid}`)
      expect(second.stderr).toContain(`port=${port}`)
    } finally {
      first.kill('SIGTERM')
    }
  })
})
