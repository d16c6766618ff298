import { spawn, spawnSync } from 'node:child_process'
import path from 'node:path'
import readline from 'node:readline'
import { describe, expect, it } from 'vitest'
import { ROOT, uniqueName } from './helpers.js'

function node(args: string[], input?: string) {
  return spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', input })
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
