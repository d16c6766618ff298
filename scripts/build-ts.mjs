// Builds dist/: declarations with tsc, and the JavaScript as two CommonJS
// bundles (the library and the CLI), because `require('instance-lock')` in
// the first line of main() should cost one module load, not fifteen. There
// is no ESM copy: `import` loads the same bundle, so `import` and `require`
// share one module instance (one addon load, one registry of held locks),
// and package.json has no "exports" map, whose resolution costs the first
// package that has one ~3 ms of a CommonJS program's start-up in Node 20.
// Built next to dist/ and swapped in, so a process loading dist/ meanwhile
// never sees half of it.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')
const require = createRequire(path.join(root, 'package.json'))
const esbuild = require('esbuild')
const out = path.join(root, `dist.${process.pid}`)
const NOTICE = [
  '/*! instance-lock (MIT). Bundles node-gyp-build (MIT, Copyright (c) 2017 Mathias Buus):',
  ' *  https://github.com/prebuild/node-gyp-build */',
].join('\n')
fs.rmSync(out, { recursive: true, force: true })

// node-gyp-build, bundled, with three changes that keep what it does and
// what it finds, and cost the guard's start-up less (measured: ~1 ms of ~6):
// - It asks node:os for arch() and platform() only, which are process.arch
//   and process.platform; loading node:os costs some 0.5 ms, and nothing
//   else on that path needs it. Its `os` becomes those two functions.
// - It reads package.json for the package's name (for the
//   INSTANCE_LOCK_PREBUILD override) with require(), whose first JSON load
//   costs 0.3 ms; it reads the file and parses it instead.
// - It lists build/Release and build/Debug, which an installed package
//   does not have, and each listing that fails throws an error with a stack
//   (0.1 ms each); it looks whether a directory exists before listing it.
// Any of these that no longer fits node-gyp-build's source fails the build.
const NGB_EDITS = [
  [
    "runtimeRequire(path.join(dir, 'package.json'))",
    "JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'))",
  ],
  [
    'function readdirSync (dir) {\n  try {',
    'function readdirSync (dir) {\n  if (!fs.existsSync(dir)) return []\n  try {',
  ],
]

function nodeGypBuildEdited() {
  const NGB = `${path.sep}node_modules${path.sep}node-gyp-build${path.sep}`
  return {
    name: 'node-gyp-build-edited',
    setup(build) {
      build.onResolve({ filter: /^os$/ }, (args) => (args.importer.includes(NGB) ? { path: args.importer, namespace: 'ngb-os' } : undefined))
      build.onLoad({ filter: /.*/, namespace: 'ngb-os' }, (args) => {
        const used = new Set([...fs.readFileSync(args.path, 'utf8').matchAll(/\bos\.(\w+)/g)].map((m) => m[1]))
        const extra = [...used].filter((f) => f !== 'arch' && f !== 'platform')
        if (extra.length > 0) throw new Error(`build-ts: node-gyp-build now uses os.${extra.join(', os.')}; see NGB_EDITS`)
        return { contents: 'module.exports = { arch: () => process.arch, platform: () => process.platform }', loader: 'js' }
      })
      build.onLoad({ filter: /[\\/]node_modules[\\/]node-gyp-build[\\/]node-gyp-build\.js$/ }, (args) => {
        let contents = fs.readFileSync(args.path, 'utf8')
        for (const [from, to] of NGB_EDITS) {
          const parts = contents.split(from)
          if (parts.length !== 2) throw new Error(`build-ts: node-gyp-build.js has ${parts.length - 1} of ${JSON.stringify(from)}, expected one; see NGB_EDITS`)
          contents = parts.join(to)
        }
        return { contents, loader: 'js' }
      })
    },
  }
}

try {
  execFileSync(
    process.execPath,
    [require.resolve('typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.json'), '--emitDeclarationOnly', '--outDir', out],
    { stdio: 'inherit' },
  )
  await esbuild.build({
    entryPoints: { index: path.join(root, 'src/index.ts'), cli: path.join(root, 'src/cli.ts'), win32: path.join(root, 'src/win32.ts') },
    outdir: out,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    // node-gyp-build is bundled too (see NOTICE): it still loads the addon
    // from the package root, without a module resolution and two more files
    // to read and compile on every start. It stays a dependency, for the
    // install script.
    // The Windows backend is its own file, required by the other two on
    // Windows only.
    external: ['./win32.js'],
    plugins: [nodeGypBuildEdited()],
    legalComments: 'none',
    logLevel: 'warning',
  })

  // The Windows backend gets the shared modules handed over (a second copy
  // would mean a second registry of held locks): it must bundle nothing else.
  const win32 = fs.readFileSync(path.join(out, 'win32.js'), 'utf8')
  const sources = [...win32.matchAll(/^\/\/ (src\/\S+)$/gm)].map((m) => m[1])
  if (sources.join() !== 'src/win32.ts') throw new Error(`build-ts: dist/win32.js bundles ${sources.join(', ')}`)

  for (const f of ['index.js', 'cli.js']) {
    const file = path.join(out, f)
    fs.writeFileSync(file, NOTICE + '\n' + fs.readFileSync(file, 'utf8'))
  }

  // `import { tryLock } from 'instance-lock'` loads this CommonJS bundle,
  // its names found by Node's CommonJS lexer in esbuild's annotation
  // `0 && (module.exports = { a, b })` (test/entrypoints.test.ts checks
  // that they are all there).
  if (!/0 && \(module\.exports = \{[^}]+\}\)/.test(fs.readFileSync(path.join(out, 'index.js'), 'utf8'))) {
    throw new Error('build-ts: no export annotation in the CommonJS bundle: `import` of the package would see no names')
  }

  const dist = path.join(root, 'dist')
  const old = path.join(root, `dist.old.${process.pid}`)
  if (fs.existsSync(dist)) fs.renameSync(dist, old)
  fs.renameSync(out, dist)
  fs.rmSync(old, { recursive: true, force: true })
} finally {
  fs.rmSync(out, { recursive: true, force: true })
}
