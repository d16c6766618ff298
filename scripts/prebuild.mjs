// Builds the addons shipped in prebuilds/ so that installing the package
// needs no compiler on linux-x64, linux-arm64 and win32-x64:
//
//   node scripts/prebuild.mjs [TARGET...]   (default: every shipped target)
//
// Runs on an x86-64 Linux machine (Debian 12 here and in CI): linux-arm64 is
// cross-compiled (scripts/setup-qemu.sh installs the toolchain and an arm64
// Node for its headers), win32-x64 with mingw-w64 (scripts/build-win32.mjs).
// Each target is built in a scratch copy of the sources, so the checkout's
// build/ (which node-gyp-build prefers to prebuilds/) is never touched, and
// the result must pass the same checks the packaging test applies before it
// replaces prebuilds/<target>/.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { PREBUILD_TARGETS, prebuildProblems, recordDigest, sourcesDigest } from './prebuilds.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))
const bin = (name) => path.join(root, 'node_modules', '.bin', name)

// N-API builds run on every Node from the one they were compiled for; build
// for the oldest the package supports (engines.node ">=20" -> 20.0.0).
const minimumNode = `${/\d+/.exec(pkg.engines.node)[0]}.0.0`

/** Node's headers for the host: this Node's own install prefix unless npm_config_nodedir says otherwise. */
function hostNodedir() {
  const dir = process.env.npm_config_nodedir || path.resolve(path.dirname(process.execPath), '..')
  if (!fs.existsSync(path.join(dir, 'include', 'node', 'node_api.h'))) {
    throw new Error(`no Node headers in ${dir}/include/node; set npm_config_nodedir to a Node install with headers`)
  }
  return dir
}

function setup(script) {
  return execFileSync('bash', [path.join(root, 'scripts', script)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim()
}

const INPUTS = ['binding.gyp', 'package.json', 'native', 'scripts/glibc-compat.h']

/**
 * A copy of the committed (HEAD) sources node-gyp needs, with the
 * checkout's node_modules for node-addon-api and node-gyp. Committed, not
 * the working tree: the binaries are committed too, and must match the
 * sources a clone gets.
 */
function scratchCopy(target, extraInputs = []) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `instance-lock-prebuild-${target}-`))
  const inputs = [...INPUTS, ...extraInputs]
  try {
    const tar = execFileSync('git', ['archive', '--format=tar', 'HEAD', ...inputs], { cwd: root, maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'pipe'] })
    execFileSync('tar', ['-x', '-C', dir], { input: tar })
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true })
    throw new Error(`${target}: cannot take ${inputs.join(', ')} from HEAD: ${err.stderr?.toString().trim() || err.message}`, { cause: err })
  }
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'), 'dir')
  return dir
}

/** Runs prebuildify in `dir` and returns the one .node file it produced. */
function prebuildify(dir, { platform, arch, nodedir, env = {} }) {
  execFileSync(
    process.execPath,
    [path.join(root, 'node_modules', 'prebuildify', 'bin.js'), '--napi', '--strip', '--tag-libc', '-t', minimumNode, '--arch', arch, '--platform', platform],
    {
      cwd: dir,
      stdio: 'inherit',
      env: {
        ...process.env,
        // Passed explicitly: a bare node-gyp would try to download headers.
        npm_config_nodedir: nodedir,
        PREBUILD_NODE_GYP: bin('node-gyp'),
        // Keeps the binaries loadable on the glibc Node 20 itself supports.
        CXXFLAGS: `-include ${path.join(dir, 'scripts', 'glibc-compat.h')}`,
        ...env,
      },
    },
  )
  const out = path.join(dir, 'prebuilds', `${platform}-${arch}`)
  const files = fs.readdirSync(out).filter((f) => f.endsWith('.node'))
  if (files.length !== 1) throw new Error(`expected one .node file in ${out}, found ${files.join(', ') || 'none'}`)
  return path.join(out, files[0])
}

const targets = {
  'linux-x64': {
    build(dir) {
      if (process.platform !== 'linux' || process.arch !== 'x64') throw new Error('linux-x64 is built natively on an x86-64 Linux host')
      return prebuildify(dir, { platform: 'linux', arch: 'x64', nodedir: hostNodedir() })
    },
  },
  'linux-arm64': {
    build(dir) {
      const nodedir = setup('setup-qemu.sh')
      return prebuildify(dir, {
        platform: 'linux',
        arch: 'arm64',
        nodedir,
        env: {
          CC: 'aarch64-linux-gnu-gcc',
          CXX: 'aarch64-linux-gnu-g++',
          // gyp runs host tools (none today) with these; the target compilers above.
          CC_host: 'gcc',
          CXX_host: 'g++',
          // The host strip rejects aarch64 objects.
          PREBUILD_STRIP_BIN: 'aarch64-linux-gnu-strip',
        },
      })
    },
  },
  'win32-x64': {
    // Run from the copy, so it compiles the sources the digest was taken of.
    inputs: ['scripts/build-win32.mjs'],
    build(dir) {
      // Installs mingw-w64 when missing.
      setup('setup-wine.sh')
      const script = path.join(dir, 'scripts', 'build-win32.mjs')
      // No libc tag: node-gyp-build reports "glibc" on Windows too, so a tag
      // would only be noise.
      const file = path.join(dir, 'prebuilds', 'win32-x64', `${pkg.name}.node`)
      fs.mkdirSync(path.dirname(file), { recursive: true })
      execFileSync(process.execPath, [script, '--out', file], { cwd: dir, stdio: 'inherit' })
      return file
    },
  },
}

function main(argv) {
  const wanted = argv.length > 0 ? argv : PREBUILD_TARGETS
  for (const t of wanted) if (!(t in targets)) throw new Error(`unknown target ${t}; known: ${Object.keys(targets).join(', ')}`)
  const dirty = execFileSync('git', ['status', '--porcelain', '--', ...INPUTS.filter((f) => f !== 'package.json')], { cwd: root, encoding: 'utf8' })
  if (dirty !== '') console.warn(`Building the committed sources; these uncommitted changes are not in the prebuilds:\n${dirty}`)
  for (const target of wanted) {
    const dir = scratchCopy(target, targets[target].inputs)
    try {
      // Of the copy, so the record names exactly what was compiled.
      const digest = sourcesDigest(dir)
      const built = targets[target].build(dir)
      const bad = prebuildProblems(built, target)
      if (bad.length > 0) throw new Error(`${target}: ${path.basename(built)} ${bad.join('; ')}`)
      const dest = path.join(root, 'prebuilds', target)
      fs.rmSync(dest, { recursive: true, force: true })
      fs.mkdirSync(dest, { recursive: true })
      fs.copyFileSync(built, path.join(dest, path.basename(built)))
      recordDigest(root, target, digest)
      console.log(`${target}: prebuilds/${target}/${path.basename(built)} (${fs.statSync(built).size} bytes)`)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}

main(process.argv.slice(2))
