// The conformance scenarios (test/conformance/scenarios.mjs) on the Unix
// legs: the flock backend as Linux builds it, and as macOS and the BSDs
// build it (native/ compiled with INSTANCE_LOCK_PORTABLE, by
// scripts/build-portable.mjs), so that the paths those systems take (F_GETLK
// probe, waits that retry every 10 ms, no holder proven) run here too. The
// Windows leg of the same scenarios is test/windows.test.ts, under Wine; the
// PostgreSQL leg test/postgres/scenarios.test.ts.
import { execFileSync } from 'node:child_process'
import path from 'node:path'
import { beforeAll, describe, it } from 'vitest'
import { expectAllPassed, runScenarios } from './conformance/run.js'
import { ROOT } from './helpers.js'

const LEG_TIMEOUT = 240_000
const PORTABLE = path.join(ROOT, '.cache', 'portable')

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
