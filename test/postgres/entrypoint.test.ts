import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { consumerCompilerOptions } from '../packaging/consumer-tsconfig.js'

// instance-lock/postgres from the packed tarball, as a consumer gets it:
// import and require, TypeScript in every module mode, and `pg` an optional
// peer (not installed here: the entry loads, and says what is missing only
// when a lock is asked for). The main entry never loads it.

const ROOT = path.resolve(__dirname, '..', '..')
let work: string
let consumer: string

function npm(args: string[], cwd: string): string {
  return execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, npm_config_update_notifier: 'false' } })
}

function node(args: string[]): string {
  return execFileSync(process.execPath, args, { cwd: consumer, encoding: 'utf8', timeout: 30_000 })
}

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'il-pg-entry-'))
  // --ignore-scripts: dist/ is built (pretest); `prepare` would rebuild it under other test files.
  const packed = JSON.parse(npm(['pack', '--ignore-scripts', '--json', '--pack-destination', work], ROOT))[0] as { filename: string }
  consumer = path.join(work, 'consumer')
  fs.mkdirSync(consumer)
  fs.writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, version: '1.0.0' }))
  npm(['install', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', path.join(work, packed.filename)], consumer)
  for (const f of ['consumer.mts', 'consumer.cts']) fs.copyFileSync(path.join(ROOT, 'test', 'packaging', f), path.join(consumer, f))
}, 180_000)

afterAll(() => {
  if (work !== undefined) fs.rmSync(work, { recursive: true, force: true })
})

describe('instance-lock/postgres as installed', () => {
  it('import and require load it, and without pg a lock is refused with ERR_MODULE_NOT_FOUND', () => {
    const probe = `
      .then(async (m) => {
        const locks = m.postgres('postgres://u:p@127.0.0.1:1/db')
        const err = await locks.tryLock('x').catch((e) => e)
        console.log(typeof m.postgres, typeof m.LockedError, err.code)
      })`
    expect(node(['--input-type=module', '-e', `Promise.resolve(import('instance-lock/postgres'))${probe}`]).trim()).toBe('function function ERR_MODULE_NOT_FOUND')
    expect(node(['-e', `Promise.resolve(require('instance-lock/postgres'))${probe}`]).trim()).toBe('function function ERR_MODULE_NOT_FOUND')
    // The main entry loads neither the backend nor pg.
    expect(node(['-e', `require('instance-lock'); console.log(Object.keys(require.cache).filter((f) => /postgres|[\\\\/]pg[\\\\/]/.test(f)).length)`]).trim()).toBe('0')
  })

  it.each([
    ['node16', 'node16'],
    ['preserve', 'bundler'],
  ])('type-checks a consumer with module %s', (module, moduleResolution) => {
    fs.writeFileSync(
      path.join(consumer, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: consumerCompilerOptions(module, moduleResolution),
        files: module === 'preserve' ? ['consumer.mts'] : ['consumer.mts', 'consumer.cts'],
      }),
    )
    try {
      execFileSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', consumer], { cwd: consumer, encoding: 'utf8', stdio: 'pipe' })
    } catch (err) {
      throw new Error(`tsc rejected the consumer:\n${(err as { stdout: string }).stdout}`, { cause: err })
    }
  })
})
