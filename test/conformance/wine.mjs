// The Windows leg, run on Linux: set up Wine and Windows Node
// (scripts/setup-wine.sh), cross-build the addon (scripts/build-win32.mjs),
// stage it as a win32-x64 prebuild in a copy of the package, and run the
// conformance scenarios with each node.exe. Used by test/windows.test.ts; also
// runnable by hand:
//
//   node test/conformance/wine.mjs [filter]
import { execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
export const ROOT = path.resolve(here, '..', '..')
const STAGE = path.join(ROOT, 'build-win32', 'package')

/**
 * Runs setup-wine.sh; returns the prefix and the node.exe paths.
 * @returns {{ prefix: string, nodes: string[] }}
 */
export function setup() {
  const out = execFileSync('bash', [path.join(ROOT, 'scripts', 'setup-wine.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
  let prefix
  const nodes = []
  for (const line of out.split('\n')) {
    const [k, v] = [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]
    if (k === 'WINEPREFIX') prefix = v
    else if (k === 'NODE_EXE') nodes.push(v)
  }
  if (prefix === undefined) throw new Error('scripts/setup-wine.sh printed no WINEPREFIX')
  return { prefix, nodes }
}

/**
 * Builds the DLL and stages a package root that loads it the way an
 * installed package would: node-gyp-build finds it in prebuilds/win32-x64
 * (the repo's own build/ holds a Linux addon and must not be seen).
 */
export function stage() {
  fs.rmSync(STAGE, { recursive: true, force: true })
  const addon = path.join(STAGE, 'prebuilds', 'win32-x64', 'instance-lock.napi.node')
  execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'build-win32.mjs'), '--out', addon], { stdio: ['ignore', 'inherit', 'inherit'] })
  execFileSync(process.env.MINGW_CC ?? 'x86_64-w64-mingw32-gcc', ['-municode', '-O2', '-s', '-o', path.join(STAGE, 'squat.exe'), path.join(here, 'squat.c')], {
    stdio: ['ignore', 'inherit', 'inherit'],
  })
  fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(STAGE, 'package.json'))
  fs.cpSync(path.join(ROOT, 'dist'), path.join(STAGE, 'dist'), { recursive: true })
  return STAGE
}

/** A Linux path as node.exe sees it (Wine maps / to Z:). */
export function winPath(p) {
  return 'Z:' + path.resolve(p).replace(/\//g, '\\')
}

export function wineEnv(prefix) {
  const env = { ...process.env, WINEPREFIX: prefix, WINEDEBUG: '-all', WINEDLLOVERRIDES: 'mscoree,mshtml=' }
  delete env.DISPLAY
  return env
}

/**
 * Runs the scenarios with one node.exe. Its stdout and stderr are files:
 * node.exe under Wine cannot write to a Unix pipe (EBADF).
 */
export async function runScenarios(prefix, nodeExe, filter) {
  const dir = fs.mkdtempSync(path.join(ROOT, 'build-win32', 'run-'))
  const outFile = path.join(dir, 'stdout.txt')
  const errFile = path.join(dir, 'stderr.txt')
  const out = fs.openSync(outFile, 'w')
  const err = fs.openSync(errFile, 'w')
  const args = [nodeExe, winPath(path.join(here, 'scenarios.mjs'))]
  if (filter !== undefined) args.push(filter)
  const env = { ...wineEnv(prefix), IL_ROOT: winPath(STAGE), IL_SQUAT: winPath(path.join(STAGE, 'squat.exe')) }
  const t0 = Date.now()
  const code = await new Promise((resolve, reject) => {
    const p = spawn('wine', args, { stdio: ['ignore', out, err], env, cwd: ROOT })
    p.once('error', reject)
    p.once('exit', (c, s) => resolve(c ?? s))
  })
  fs.closeSync(out)
  fs.closeSync(err)
  const stdout = fs.readFileSync(outFile, 'utf8')
  const stderr = fs.readFileSync(errFile, 'utf8')
  fs.rmSync(dir, { recursive: true, force: true })
  const m = /^(\d+) passed, (\d+) failed$/m.exec(stdout)
  return { code, stdout, stderr, ms: Date.now() - t0, passed: m ? Number(m[1]) : 0, failed: m ? Number(m[2]) : -1 }
}

/** Ends every Wine process of the prefix, and the wineserver. */
export function shutdown(prefix) {
  try {
    execFileSync('wineserver', ['-k'], { env: wineEnv(prefix), stdio: 'ignore' })
  } catch {
    // no wineserver running: nothing to end
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { prefix, nodes } = setup()
  stage()
  let failed = 0
  try {
    for (const exe of nodes) {
      const r = await runScenarios(prefix, exe, process.argv[2])
      process.stdout.write(`== ${path.basename(path.dirname(exe))} (${r.ms} ms)\n${r.stdout}${r.stderr}`)
      if (r.code !== 0 || r.failed !== 0) failed++
    }
  } finally {
    shutdown(prefix)
  }
  process.exitCode = failed === 0 ? 0 : 1
}
