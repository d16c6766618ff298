// Every function the addon exports refuses arguments of the wrong type or out
// of range with a TypeError (ERR_INVALID_ARG_TYPE), before it does anything:
// never a crash, never a system error from a descriptor read as 0. Each call
// runs in a process of its own, loading the addon as src/backends/addon.ts does
// (node-gyp-build, from the package root), so a crash fails only its case.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

import { functionsWithArguments, wrongCalls } from './conformance/addon-calls.mjs'
import { native } from '../src/backends/addon.js'

const ROOT = path.resolve(__dirname, '..')
const CALLS = path.join(ROOT, 'test', 'conformance', 'addon-calls.mjs')
// Where a call that went through could create its file, if it did.
const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'il-boundary-'))
afterAll(() => fs.rmSync(cwd, { recursive: true, force: true }))

const cases = wrongCalls(native).map(([name, args], i) => ({
  i,
  label: `${name}(${args.map((a) => (typeof a === 'function' ? 'fn' : (JSON.stringify(a) ?? 'undefined'))).join(', ')})`,
}))

const CHILD = `
const { createRequire } = require('node:module')
const root = process.argv[1]
const addon = createRequire(root + '/package.json')('node-gyp-build')(root)
import(require('node:url').pathToFileURL(process.argv[2]).href).then(({ wrongCalls, outcome }) => {
  const [name, args] = wrongCalls(addon)[Number(process.argv[3])]
  // waitStart checks its arguments once waits are set up.
  if (name === 'waitStart' && addon.waitInit) addon.waitInit(() => {})
  process.stdout.write(outcome(addon, name, args))
})
`

describe('the addon at its boundary', () => {
  it('has a wrong call for every function that takes arguments', () => {
    const covered = new Set(wrongCalls(native).map(([name]) => name))
    expect(functionsWithArguments(native).filter((name) => !covered.has(name))).toEqual([])
  })

  it.each(cases)('$label throws a TypeError', ({ i }) => {
    const out = execFileSync(process.execPath, ['-e', CHILD, ROOT, CALLS, String(i)], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 })
    expect(out).toBe('ok')
  })
})
