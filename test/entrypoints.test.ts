import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import readline from 'node:readline'
import { describe, expect, it } from 'vitest'
import { ROOT, tmpDir, uniqueName } from './helpers.js'

function node(args: string[], input?: string) {
  // A process that does not exit by itself fails the test instead of hanging it.
  return spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', input, timeout: 30_000 })
}

describe('entry points', () => {
  it('import and require expose the same API and share one registry', () => {
    const name = uniqueName()
    const r = node([
      '--input-type=module',
      '-e',
      `
      import * as esm from 'instance-lock'
      import { createRequire } from 'node:module'
      const cjs = createRequire(import.meta.url)('instance-lock')
      const keys = (m) => Object.keys(m).filter((k) => k !== 'default' && k !== '__esModule').sort()
      console.log(JSON.stringify(keys(esm)) === JSON.stringify(keys(cjs)))
      console.log(esm.tryLock === cjs.tryLock && esm.LockedError === cjs.LockedError)
      const l = esm.tryLock(${JSON.stringify(name)})
      try { cjs.tryLock(${JSON.stringify(name)}) } catch (e) { console.log(e instanceof esm.LockedError, e.holder.pid === process.pid) }
      l.release()
    `,
    ])
    expect(r.stderr).toBe('')
    expect(r.stdout.trim().split('\n')).toEqual(['true', 'true', 'true true'])
  })

  // `import` makes Node's CommonJS lexer scan the file `main` names, and
  // whatever it re-exports: over the 44 KB bundle, that scan made V8 optimise
  // the lexer on a background thread, which delayed the process's exit by
  // ~50 ms. main is a small file that names the exports itself.
  it('import finds every name in a small main, without Node scanning the bundle', () => {
    const r = node([
      '--expose-internals',
      '-e',
      `
      const { parse } = require('internal/deps/cjs-module-lexer/lexer')
      const fs = require('node:fs')
      const path = require('node:path')
      const out = { bytes: 0, names: [] }
      const scan = (file) => {
        const text = fs.readFileSync(file, 'utf8')
        out.bytes += text.length
        const found = parse(text)
        out.names.push(...found.exports)
        for (const r of found.reexports) scan(require.resolve(r, { paths: [path.dirname(file)] }))
      }
      scan(require.resolve('instance-lock'))
      out.api = Object.keys(require('instance-lock'))
      console.log(JSON.stringify(out))
    `,
    ])
    expect(r.stderr).toBe('')
    const { bytes, names, api } = JSON.parse(r.stdout) as { bytes: number; names: string[]; api: string[] }
    expect(names.sort()).toEqual(api.sort())
    expect(bytes).toBeLessThan(1024)
  })

  it('installs no signal or exit handlers and leaves nothing keeping the process alive', () => {
    const name = uniqueName()
    const r = node([
      '-e',
      `
      const events = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR2', 'exit', 'beforeExit', 'uncaughtException']
      const before = events.map((e) => process.listenerCount(e))
      const il = require('instance-lock')
      const held = il.singleInstance(${JSON.stringify(name)})
      il.inspect(${JSON.stringify(name)}); il.list()
      il.lock(${JSON.stringify(name)}, { timeout: 50 }).catch((e) => {
        console.log(e.code, JSON.stringify(events.map((e) => process.listenerCount(e))) === JSON.stringify(before))
        // Nothing may keep the process alive now: it must exit by itself.
      })
    `,
    ])
    expect(r.stderr).toBe('')
    expect(r.status).toBe(0)
    expect(r.stdout.trim()).toBe('ELOCKED true')
  })

  it('a Lock nobody references is not released by garbage collection', () => {
    const name = uniqueName()
    const r = node([
      '--expose-gc',
      '-e',
      `
      const il = require('instance-lock')
      il.singleInstance(${JSON.stringify(name)})
      global.gc(); global.gc()
      const { spawnSync } = require('node:child_process')
      const other = spawnSync(process.execPath, ['-e', 'try { require("instance-lock").tryLock(${JSON.stringify(name)}) } catch (e) { process.exit(e.code === "ELOCKED" ? 42 : 1) }'])
      console.log(other.status)
    `,
    ])
    expect(r.stderr).toBe('')
    expect(r.stdout.trim()).toBe('42')
  })

  it('the web-server example guards itself and records its port', async () => {
    // The example as shipped, but for a lock of its own: its fixed name would
    // meet a copy of it (or of this test) running elsewhere as this user.
    const project = tmpDir()
    fs.mkdirSync(path.join(project, 'node_modules'))
    fs.symlinkSync(ROOT, path.join(project, 'node_modules', 'instance-lock'))
    const example = path.join(project, 'web-server.mjs')
    const source = fs.readFileSync(path.join(ROOT, 'examples/web-server.mjs'), 'utf8')
    expect(source).toContain("singleInstance('web-example')")
    fs.writeFileSync(example, source.replace("singleInstance('web-example')", `singleInstance(${JSON.stringify(uniqueName('web'))})`))
    const first = spawn(process.execPath, [example], { stdio: ['ignore', 'pipe', 'inherit'] })
    try {
      // Its first line, or an error if it exits first.
      const line = await new Promise<string>((resolve, reject) => {
        readline.createInterface({ input: first.stdout }).once('line', resolve)
        first.once('exit', (code) => reject(new Error(`the example exited with ${code} before listening`)))
      })
      const port = Number(/localhost:(\d+)/.exec(line)![1])
      const second = node([example])
      expect(second.status).toBe(1)
      expect(second.stderr).toContain(`as pid ${first.pid}`)
      expect(second.stderr).toContain(`port=${port}`)
    } finally {
      first.kill('SIGTERM')
    }
  })
})

// src/backends/addon.ts loads the shipped prebuild itself where node-gyp-build
// would pick it, and leaves every other case to node-gyp-build. Each case
// runs a copy of the package installed in a fresh node_modules.
describe('which addon the package loads', () => {
  const target = `${process.platform}-${process.arch}`
  const shipped = path.join(ROOT, 'prebuilds', target)
  const hasPrebuild = fs.existsSync(shipped)

  function install(): { project: string; pkg: string } {
    const project = tmpDir()
    const pkg = path.join(project, 'node_modules', 'instance-lock')
    fs.mkdirSync(pkg, { recursive: true })
    fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(pkg, 'package.json'))
    fs.cpSync(path.join(ROOT, 'dist'), path.join(pkg, 'dist'), { recursive: true })
    fs.cpSync(shipped, path.join(pkg, 'prebuilds', target), { recursive: true })
    fs.symlinkSync(path.join(ROOT, 'node_modules', 'node-gyp-build'), path.join(project, 'node_modules', 'node-gyp-build'))
    return { project, pkg }
  }

  /** What `require('instance-lock')` loaded in `project`, and the addon node-gyp-build picks there. */
  function loadIn(project: string, env: NodeJS.ProcessEnv = {}) {
    const script = `
      const out = {}
      try { require('instance-lock') } catch (e) { out.error = e.message }
      const files = Object.keys(require.cache)
      out.loaded = files.filter((f) => f.endsWith('.node'))
      out.nodeGypBuild = files.some((f) => f.includes('node-gyp-build'))
      try { out.pick = require('node-gyp-build').path(require('node:path').dirname(require.resolve('instance-lock/package.json'))) } catch (e) { out.pick = e.message }
      console.log(JSON.stringify(out))`
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_config_(arch|platform)$/i.test(k) && k !== 'LIBC' && k !== 'INSTANCE_LOCK_PREBUILD'))
    const r = spawnSync(process.execPath, ['-e', script], { cwd: project, encoding: 'utf8', env: { ...clean, ...env }, timeout: 30_000 })
    expect(r.stderr).toBe('')
    return JSON.parse(r.stdout) as { error?: string; loaded: string[]; nodeGypBuild: boolean; pick: string }
  }

  it.runIf(hasPrebuild)('the shipped prebuild, without starting node-gyp-build', () => {
    const { project, pkg } = install()
    const r = loadIn(project)
    expect(r.error).toBeUndefined()
    expect(r.loaded).toEqual([r.pick])
    expect(path.dirname(r.pick)).toBe(path.join(fs.realpathSync(pkg), 'prebuilds', target))
    expect(r.nodeGypBuild, 'node-gyp-build was loaded for the shipped prebuild').toBe(false)
  })

  it.runIf(hasPrebuild)("a build/ directory's addon, which node-gyp-build prefers", () => {
    const { project, pkg } = install()
    const release = path.join(pkg, 'build', 'Release')
    fs.mkdirSync(release, { recursive: true })
    fs.copyFileSync(path.join(shipped, fs.readdirSync(shipped)[0]!), path.join(release, 'instance_lock.node'))
    const r = loadIn(project)
    expect(r.error).toBeUndefined()
    expect(r.pick).toBe(path.join(fs.realpathSync(release), 'instance_lock.node'))
    expect(r.loaded).toEqual([r.pick])
  })

  it.runIf(hasPrebuild)('the addon INSTANCE_LOCK_PREBUILD points to', () => {
    const { project } = install()
    const elsewhere = tmpDir()
    fs.cpSync(shipped, path.join(elsewhere, 'prebuilds', target), { recursive: true })
    const r = loadIn(project, { INSTANCE_LOCK_PREBUILD: elsewhere })
    expect(r.error).toBeUndefined()
    expect(path.dirname(r.pick)).toBe(path.join(elsewhere, 'prebuilds', target))
    expect(r.loaded).toEqual([r.pick])
  })

  // Overrides that send node-gyp-build to another C library, platform or
  // CPU: there it finds no addon in this copy, and neither may the package
  // (the Linux prebuilds are built against glibc).
  const otherArch = process.arch === 'arm64' ? 'x64' : 'arm64'
  const elsewhere = [
    { env: { npm_config_arch: otherArch }, tag: `arch=${otherArch}` },
    { env: { npm_config_platform: 'freebsd' }, tag: 'platform=freebsd' },
    // Only Linux prebuilds carry a C library tag.
    ...(process.platform === 'linux' ? [{ env: { LIBC: 'musl' }, tag: 'libc=musl' }] : []),
  ]
  it.runIf(hasPrebuild).each(elsewhere)("none, with node-gyp-build's error, where it would find none ($tag)", ({ env, tag }) => {
    const { project } = install()
    const r = loadIn(project, env)
    expect(r.error).toMatch(new RegExp(`^No native build was found for .*${tag}`))
    expect(r.pick).toBe(r.error)
    expect(r.loaded).toEqual([])
  })
})

// What a TypeScript consumer gets: dist/'s declarations, as `files` ships them.
describe('the published types', () => {
  const declarations = () => (fs.readdirSync(path.join(ROOT, 'dist'), { recursive: true }) as string[]).filter((f) => f.endsWith('.d.ts'))

  it("have none of the package's own members (@internal, stripped by tsc)", () => {
    const found = declarations().filter((f) => fs.readFileSync(path.join(ROOT, 'dist', f), 'utf8').includes('@internal'))
    expect(found).toEqual([])
    const lock = fs.readFileSync(path.join(ROOT, 'dist', 'core', 'lock.d.ts'), 'utf8')
    const members = /export declare class Lock [^{]*\{([\s\S]*?)\n\}/.exec(lock)![1]!
    for (const internal of ['releaseShared', 'location', 'handle', 'backend']) expect(members).not.toMatch(new RegExp(`\\b${internal}\\b`))
    expect(members).toContain('private constructor();')
  })

  it('name @types/node, which they use, as an optional peer dependency', () => {
    const usesNode = declarations().some((f) => /\bNodeJS\./.test(fs.readFileSync(path.join(ROOT, 'dist', f), 'utf8')))
    const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'))
    expect(usesNode).toBe(true)
    expect(manifest.peerDependencies?.['@types/node']).toMatch(/^>=20/)
    expect(manifest.peerDependenciesMeta?.['@types/node']).toEqual({ optional: true })
  })

  it('compile a consumer with tsc --strict, as ESM and as CommonJS', () => {
    const project = tmpDir()
    const pkg = path.join(project, 'node_modules', 'instance-lock')
    fs.mkdirSync(pkg, { recursive: true })
    fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(pkg, 'package.json'))
    fs.cpSync(path.join(ROOT, 'dist'), path.join(pkg, 'dist'), { recursive: true })
    // instance-lock/postgres: an exact file at the package root, and its types.
    for (const f of ['postgres', 'postgres.d.ts']) fs.copyFileSync(path.join(ROOT, f), path.join(pkg, f))
    for (const f of ['consumer.mts', 'consumer.cts']) fs.copyFileSync(path.join(ROOT, 'test', 'packaging', f), path.join(project, f))
    const r = node([
      path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
      '--strict',
      '--noEmit',
      '--module',
      'node16',
      '--moduleResolution',
      'node16',
      '--target',
      'ES2022',
      '--lib',
      'ES2022',
      '--types',
      'node',
      '--typeRoots',
      path.join(ROOT, 'node_modules', '@types'),
      // The shipped .d.ts files themselves are checked, not only their use.
      '--skipLibCheck',
      'false',
      path.join(project, 'consumer.mts'),
      path.join(project, 'consumer.cts'),
    ])
    expect(r.stdout + r.stderr).toBe('')
    expect(r.status).toBe(0)
  })
})
