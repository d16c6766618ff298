// The conformance scenarios (test/conformance/scenarios.mjs) on the Unix
// legs: the flock backend as Linux builds it, and as macOS and the BSDs
// build it (native/ compiled with INSTANCE_LOCK_PORTABLE, by
// scripts/build-portable.mjs), so that the paths those systems take (F_GETLK
// probe, waits that retry every 10 ms, no holder proven) run here too. The
// Windows leg of the same scenarios is test/windows.test.ts, under Wine.
import { execFileSync, spawn } from 'node:child_process'
import path from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { ROOT } from './helpers.js'

const LEG_TIMEOUT = 240_000
const SCENARIOS = path.join(__dirname, 'conformance', 'scenarios.mjs')
const PORTABLE = path.join(ROOT, '.cache', 'portable')

interface Run {
  code: number | null
  stdout: string
  stderr: string
  passed: number
  failed: number
}

/** Runs every scenario in a process of its own, with `env` on top of this one's (less any addon override). */
function runScenarios(env: Record<string, string>): Promise<Run> {
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

function expectAllPassed(r: Run, backend: RegExp): void {
  const failures = r.stdout.split('\n').filter((l) => l.startsWith('not ok'))
  const report = `${failures.join('\n')}\n\n${r.stdout}\n${r.stderr}`
  expect(r.stdout, report).toMatch(backend)
  expect(r.failed, report).toBe(0)
  expect(r.passed, report).toBeGreaterThan(0)
  expect(r.code, report).toBe(0)
}

describe.skipIf(process.platform === 'win32')('conformance of the flock backend', () => {
  it(
    'passes every scenario as this system builds it',
    async () => {
      // Elsewhere than Linux, the native build is the portable one.
      const backend = process.platform === 'linux' ? /^# backend: flock \(Linux\), proves holders: yes, blocking waits: yes$/m : /^# backend: flock \(portable\),/m
      expectAllPassed(await runScenarios({}), backend)
    },
    LEG_TIMEOUT,
  )

  describe.skipIf(process.platform !== 'linux')('built as macOS and the BSDs build it', () => {
    beforeAll(() => {
      execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'build-portable.mjs'), '--out', PORTABLE], { stdio: ['ignore', 'ignore', 'inherit'] })
    }, LEG_TIMEOUT)

    it(
      'passes every scenario',
      async () => {
        const r = await runScenarios({ INSTANCE_LOCK_PREBUILD: PORTABLE })
        expectAllPassed(r, /^# backend: flock \(portable\), proves holders: no, blocking waits: no$/m)
      },
      LEG_TIMEOUT,
    )
  })
})
