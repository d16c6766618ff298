// The package as users get it: `npm pack`, then install the tarball into an
// empty project with install scripts off (npm 11's default for dependencies)
// and PREBUILDS_ONLY=1, so neither a compiler nor a build/ directory can
// stand in for a missing or broken prebuild. In that project, on each
// platform we ship a prebuild for, a holder takes a lock, a second process
// is refused, the holder is killed and the lock is free again.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { consumerCompilerOptions } from './packaging/consumer-tsconfig.js'
import {
  LINUX_CEILINGS,
  PREBUILD_TARGETS,
  SOURCES_FILE,
  binaryTarget,
  elfNeededVersions,
  peImports,
  prebuildProblems,
  recordedDigests,
  sourcesDigest,
} from '../scripts/prebuilds.mjs'

const ROOT = path.resolve(__dirname, '..')
const FIXTURES = path.join(__dirname, 'packaging')
const TARGETS: string[] = PREBUILD_TARGETS

const REBUILD_HINT = 'run `npm run build:prebuilds` (see docs/development.md, "Rebuilding the prebuilds") and commit prebuilds/'

let work: string
let consumer: string
let packed: { filename: string; size: number; unpackedSize: number; files: Array<{ path: string; size: number }> }

function npm(args: string[], cwd: string): string {
  return execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, npm_config_update_notifier: 'false' } })
}

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'il-packaging-'))
  // --ignore-scripts: `prepare` would recompile dist/ under the feet of test
  // files running in parallel; `npm test` has just built it (pretest).
  const out = npm(['pack', '--ignore-scripts', '--json', '--pack-destination', work], ROOT)
  packed = JSON.parse(out)[0]

  consumer = path.join(work, 'consumer')
  fs.mkdirSync(consumer)
  fs.writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, version: '1.0.0' }))
  npm(['install', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', path.join(work, packed.filename)], consumer)
  for (const f of fs.readdirSync(FIXTURES)) fs.copyFileSync(path.join(FIXTURES, f), path.join(consumer, f))
}, 180_000)

afterAll(() => {
  if (work !== undefined) fs.rmSync(work, { recursive: true, force: true })
})

const installed = (...p: string[]) => path.join(consumer, 'node_modules', 'instance-lock', ...p)

/**
 * The one .node file the installed package has for `target`, built for its
 * platform and CPU, or a failure that says what is wrong. Checked before
 * anything loads it: a wrong-architecture addon fails at load time with a
 * misleading "cannot open shared object file: No such file or directory".
 */
function shippedPrebuild(target: string): string {
  const dir = installed('prebuilds', target)
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.node')) : []
  if (files.length !== 1) {
    throw new Error(`the packed tarball has ${files.length === 0 ? 'no' : files.length} prebuilds/${target}/*.node (expected one: ${files.join(', ') || 'none'}); ${REBUILD_HINT}`)
  }
  const file = path.join(dir, files[0]!)
  const found = binaryTarget(file)
  if (`${found.platform}-${found.arch}` !== target) {
    throw new Error(`prebuilds/${target}/${files[0]} is built for ${found.platform}-${found.arch}; ${REBUILD_HINT}`)
  }
  return file
}

describe('the packed tarball', () => {
  it('ships what a consumer needs and nothing else', () => {
    const files = packed.files.map((f) => f.path).sort()
    console.log(`${packed.filename}: ${files.length} files, ${packed.size} bytes packed, ${packed.unpackedSize} unpacked\n  ${files.join('\n  ')}`)

    // Everything package.json points a consumer at must be in it.
    const manifest = JSON.parse(fs.readFileSync(installed('package.json'), 'utf8'))
    const entryPoints = new Set<string>()
    const collect = (v: unknown): void => {
      if (typeof v === 'string') entryPoints.add(path.posix.normalize(v))
      else if (v !== null && typeof v === 'object') Object.values(v).forEach(collect)
    }
    collect([manifest.main, manifest.types, manifest.bin, manifest.typesVersions, 'postgres'])
    const missing = [...entryPoints].filter((p) => !fs.existsSync(installed(p)))
    expect(missing, 'package.json names files the tarball lacks').toEqual([])

    // The build-from-source fallback (install script on platforms without a prebuild).
    expect(files).toEqual(expect.arrayContaining(['binding.gyp', 'native/binding.cc', 'native/posix/lockfile.cc', 'native/win32/mutex.cc', 'native/platform.h']))
    for (const target of TARGETS)
      expect(
        files.filter((f) => f.startsWith(`prebuilds/${target}/`) && f.endsWith('.node')),
        `prebuilds/${target}; ${REBUILD_HINT}`,
      ).toHaveLength(1)

    const needed = [
      /^(package\.json|README\.md|LICENSE|binding\.gyp)$/,
      /^bin\/[\w.-]+\.js$/,
      /^dist\/([\w-]+\/)*[\w.-]+\.(js|d\.ts)$/,
      // instance-lock/postgres: its entry file and types.
      /^postgres(\.d\.ts)?$/,
      /^native\/((posix|win32)\/)?[\w.-]+\.(cc|h)$/,
      ...TARGETS.map((t) => new RegExp(`^prebuilds/${t}/[\\w.-]+\\.node$`)),
    ]
    expect(
      files.filter((f) => !needed.some((re) => re.test(f))),
      'files a consumer does not need',
    ).toEqual([])
  })

  it.each(TARGETS)('has a %s prebuild for the right CPU that loads wherever its Node runs', (target) => {
    const file = shippedPrebuild(target)
    if (target.startsWith('linux-')) {
      const needs = elfNeededVersions(file)
      console.log(
        `${target}: needs ${Object.entries(needs)
          .map(([lib, v]) => `${lib}_${v}`)
          .join(', ')} (ceilings: Node 20's own, ${JSON.stringify(LINUX_CEILINGS)})`,
      )
    } else {
      console.log(`${target}: imports ${peImports(file).join(', ')}`)
    }
    expect(prebuildProblems(file, target)).toEqual([])
  })

  it.each(TARGETS)('has a %s prebuild built from the native sources as they are now', (target) => {
    const stale = `${SOURCES_FILE} says prebuilds/${target} was built from other sources than binding.gyp and native/ hold now; commit them, then ${REBUILD_HINT}`
    expect(recordedDigests(ROOT)[target], stale).toBe(sourcesDigest(ROOT))
  })

  it('type-checks a TypeScript consumer against the packed types, as ESM and as CommonJS', () => {
    fs.writeFileSync(
      path.join(consumer, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: consumerCompilerOptions('node16', 'node16'),
        files: ['consumer.mts', 'consumer.cts'],
      }),
    )
    try {
      execFileSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', consumer], { cwd: consumer, encoding: 'utf8', stdio: 'pipe' })
    } catch (err) {
      throw new Error(`tsc rejected the consumer:\n${(err as { stdout: string }).stdout}`, { cause: err })
    }
  })
})

/** How to run a script of the consumer project with one target's Node. */
interface Runner {
  command: string
  args: string[]
  env: NodeJS.ProcessEnv
}

/** One platform a prebuild ships for, and how this machine runs its Node. */
interface Leg {
  target: string
  how: string
  /** Installs what the leg needs (once per machine) and says how to run its Node. */
  prepare(): Runner
  /** Stops what the leg left running. */
  finish?(runner: Runner): void
}

function setup(script: string): string {
  try {
    return execFileSync('bash', [path.join(ROOT, 'scripts', script)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim()
  } catch (err) {
    throw new Error(`scripts/${script} failed:\n${(err as { stderr: string }).stderr}`, { cause: err })
  }
}

const LEGS: Leg[] = [
  {
    target: 'linux-x64',
    how: 'natively',
    prepare: () => ({ command: process.execPath, args: [], env: {} }),
  },
  {
    target: 'linux-arm64',
    how: 'under qemu-aarch64 with the arm64 Node',
    prepare() {
      const node = path.join(setup('setup-qemu.sh'), 'bin', 'node')
      // binfmt_misc is not relied on: qemu is started explicitly, with the
      // cross toolchain's arm64 glibc and libstdc++.
      return { command: 'qemu-aarch64', args: [node], env: { QEMU_LD_PREFIX: '/usr/aarch64-linux-gnu' } }
    },
  },
  {
    target: 'win32-x64',
    how: 'under Wine with node.exe',
    prepare() {
      // KEY=VALUE lines; NODE_EXE once per Node line, the minimum engine first.
      const vars = setup('setup-wine.sh')
        .split('\n')
        .map((line) => line.split('='))
      const prefix = vars.find(([k]) => k === 'WINEPREFIX')![1]!
      const nodeExe = vars.find(([k]) => k === 'NODE_EXE')![1]!
      // Wine maps Unix paths to Z:, so the scripts and result files need no
      // translation, and `wine` execs into node.exe: SIGKILL to its pid kills
      // the holder itself. No DISPLAY: nothing here opens a window.
      return { command: 'wine', args: [nodeExe], env: { WINEPREFIX: prefix, WINEDEBUG: '-all', WINEDLLOVERRIDES: 'mscoree,mshtml=', DISPLAY: undefined } }
    },
    finish(runner: Runner) {
      spawnSync('wineserver', ['-k'], { env: { ...process.env, ...runner.env }, stdio: 'ignore' })
    },
  },
].filter((leg) => TARGETS.includes(leg.target))

/** The environment of a user's process: none of npm's or node-gyp-build's overrides. */
function userEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^npm_/i.test(k) && k !== 'INSTANCE_LOCK_PREBUILD') env[k] = v
  }
  // node-gyp-build would otherwise prefer a build/ directory to prebuilds/.
  return { ...env, PREBUILDS_ONLY: '1', ...extra }
}

it('runs every shipped prebuild somewhere', () => {
  expect(LEGS.map((l) => l.target).sort(), 'a shipped target without a leg that runs it').toEqual([...TARGETS].sort())
})

describe.each(LEGS)('installed without install scripts, $target $how', (leg) => {
  let runner: Runner
  const children: ChildProcess[] = []

  beforeAll(() => {
    runner = leg.prepare()
  }, 300_000)

  afterAll(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
    if (runner !== undefined) leg.finish?.(runner)
  })

  interface Run {
    proc: ChildProcess
    log: string
    /** Set when the command could not be started at all (e.g. qemu-aarch64 missing). */
    spawnError?: Error
  }

  function start(script: string, name: string, result: string): Run {
    const log = `${result}.log`
    const fd = fs.openSync(log, 'w')
    const args = [...runner.args, path.join(consumer, script), result, name, path.join(work, 'locks')]
    // Output goes to a file: node.exe under Wine cannot write to a pipe.
    const proc = spawn(runner.command, args, { cwd: consumer, stdio: ['ignore', fd, fd], env: userEnv(runner.env) })
    fs.closeSync(fd)
    children.push(proc)
    const run: Run = { proc, log }
    proc.once('error', (err) => (run.spawnError = err))
    return run
  }

  /** The JSON the script wrote to `result`, once it has; fails with its output if it exits without. */
  async function outcome<T>(what: string, run: Run, result: string): Promise<T> {
    const { proc, log } = run
    const deadline = Date.now() + 90_000
    for (;;) {
      if (fs.existsSync(result)) return JSON.parse(fs.readFileSync(result, 'utf8')) as T
      if (run.spawnError !== undefined) throw new Error(`could not start ${runner.command} for ${what}: ${run.spawnError.message}`)
      const exited = proc.exitCode !== null || proc.signalCode !== null
      if (exited || Date.now() > deadline) {
        const why = exited ? `exited (${proc.exitCode ?? proc.signalCode})` : 'timed out'
        throw new Error(`${what} on ${leg.target} ${why} without a result:\n${fs.readFileSync(log, 'utf8')}`)
      }
      await new Promise((r) => setTimeout(r, 25))
    }
  }

  it(`${leg.target}: loads its own prebuild; a second process is refused; killing the holder frees the lock`, async () => {
    const prebuild = shippedPrebuild(leg.target)
    fs.mkdirSync(path.join(work, 'locks'), { recursive: true })
    const name = `packaging-${leg.target}-${process.pid}`
    const resultOf = (step: string) => path.join(work, `${leg.target}-${step}.json`)

    const holderRun = start('hold.mjs', name, resultOf('hold'))
    const holder = await outcome<{
      error?: { code?: string; message: string }
      pid: number
      platform: string
      arch: string
      addon: string
      loaded: string[]
      sameModule: boolean
    }>('hold.mjs', holderRun, resultOf('hold'))
    if (holder.error !== undefined) {
      throw new Error(`instance-lock did not load or lock on ${leg.target} ${leg.how} (${holder.error.code ?? 'no code'}): ${holder.error.message}\n${REBUILD_HINT}`)
    }
    expect(`${holder.platform}-${holder.arch}`).toBe(leg.target)
    // The holder reports its own platform's path (Z:\… under Wine).
    const basename = (p: string): string => (leg.target.startsWith('win32') ? path.win32.basename(p) : path.basename(p))
    expect(basename(holder.addon), 'node-gyp-build chose another addon than the shipped prebuild').toBe(path.basename(prebuild))
    expect(holder.addon.replace(/\\/g, '/')).toContain(`/node_modules/instance-lock/prebuilds/${leg.target}/`)
    expect(holder.loaded, 'the package loaded another addon than node-gyp-build picks').toEqual([holder.addon])
    expect(holder.sameModule, 'import and require gave two module instances').toBe(true)

    const refused = await outcome<{ acquired: boolean; error?: { code: string }; holderPid?: number }>(
      'probe.cjs while held',
      start('probe.cjs', name, resultOf('probe-held')),
      resultOf('probe-held'),
    )
    expect(refused.acquired).toBe(false)
    expect(refused.error?.code).toBe('ELOCKED')
    expect(refused.holderPid).toBe(holder.pid)

    expect(holderRun.proc.exitCode ?? holderRun.proc.signalCode, 'the holder exited before it was killed').toBeNull()
    const exited = once(holderRun.proc, 'exit')
    holderRun.proc.kill('SIGKILL')
    await exited

    const after = await outcome<{ acquired: boolean; error?: { code: string; message: string } }>(
      'probe.cjs after the kill',
      start('probe.cjs', name, resultOf('probe-freed')),
      resultOf('probe-freed'),
    )
    expect(after.error).toBeUndefined()
    expect(after.acquired).toBe(true)
  }, 120_000)
})
