// Runs the conformance scenarios (scenarios.mjs) in a process of their own,
// for the vitest files that run a leg of them: test/conformance.test.ts (the
// flock builds) and test/postgres/scenarios.test.ts.
import { spawn } from 'node:child_process'
import path from 'node:path'
import { expect } from 'vitest'

const ROOT = path.resolve(__dirname, '..', '..')
const SCENARIOS = path.join(__dirname, 'scenarios.mjs')

export interface Run {
  code: number | null
  stdout: string
  stderr: string
  passed: number
  failed: number
}

/** Runs every scenario, with `env` on top of this process's (less any addon override). */
export function runScenarios(env: Record<string, string>): Promise<Run> {
  const base = { ...process.env }
  delete base.INSTANCE_LOCK_PREBUILD
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [SCENARIOS], { cwd: ROOT, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    p.once('error', reject)
    p.once('close', (code) => {
      const m = /^(\d+) passed, (\d+) failed$/m.exec(stdout)
      resolve({ code, stdout, stderr, passed: m ? Number(m[1]) : 0, failed: m ? Number(m[2]) : -1 })
    })
  })
}

/** Every scenario passed on the backend the first line names; else the failures and the whole output. */
export function expectAllPassed(r: Run, backend: RegExp): void {
  const failures = r.stdout.split('\n').filter((l) => l.startsWith('not ok'))
  const report = `${failures.join('\n')}\n\n${r.stdout}\n${r.stderr}`
  expect(r.stdout, report).toMatch(backend)
  expect(r.failed, report).toBe(0)
  expect(r.passed, report).toBeGreaterThan(0)
  expect(r.code, report).toBe(0)
}
