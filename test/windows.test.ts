// The Windows backend, cross-built with mingw-w64 and exercised under Wine
// with the Windows builds of Node 20 and 22: the conformance scenarios the
// flock backend passes (test/conformance/scenarios.mjs, and
// test/conformance.test.ts for the Unix legs), against the named-mutex
// backend. scripts/setup-wine.sh installs what it needs (Debian packages,
// node.exe from npm) on a fresh machine.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import * as wine from './conformance/wine.mjs'

const LEG_TIMEOUT = 300_000

// The setup script installs Wine with apt on Debian/Ubuntu x86-64; anywhere
// else it cannot, and only there is this leg skipped.
function cannotInstallWine(): string | undefined {
  if (process.platform !== 'linux' || process.arch !== 'x64') return `Wine is installed here only on Linux x64, not on ${process.platform}-${process.arch}`
  try {
    execFileSync('sh', ['-c', 'command -v apt-get && command -v dpkg-query'], { stdio: 'ignore' })
  } catch {
    return 'this Linux has no apt-get, so scripts/setup-wine.sh cannot install Wine and mingw-w64'
  }
  return undefined
}

const skip = cannotInstallWine()
if (skip !== undefined) console.warn(`windows.test.ts skipped: ${skip}`)

describe.skipIf(skip !== undefined)('Windows backend under Wine', () => {
  let env: { prefix: string; nodes: string[] }

  beforeAll(() => {
    if (!fs.existsSync(path.join(wine.ROOT, 'dist', 'index.js'))) throw new Error('dist/ is missing: run `node scripts/build-ts.mjs` first')
    env = wine.setup()
    expect(env.nodes.length).toBeGreaterThanOrEqual(2)
    wine.stage()
  }, LEG_TIMEOUT)

  afterAll(() => {
    if (env !== undefined) wine.shutdown(env.prefix)
  })

  for (const [i, line] of ['20.x', '22.x'].entries()) {
    it(
      `passes every scenario with Node ${line} for Windows`,
      async () => {
        const r = await wine.runScenarios(env.prefix, env.nodes[i])
        const report = `${r.stdout}\n${r.stderr}`
        expect(r.stdout, report).toMatch(/^# backend: win32 named mutexes,/m)
        expect(r.failed, report).toBe(0)
        expect(r.passed, report).toBeGreaterThan(0)
        expect(r.code, report).toBe(0)
      },
      LEG_TIMEOUT,
    )
  }
})
