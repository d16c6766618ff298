// Builds dist/: declarations with tsc, and the JavaScript as two CommonJS
// bundles (the library and the CLI), because `require('instance-lock')` in
// the first line of main() should cost one module load, not fifteen. There
// is no ESM copy: `import` loads the same bundle, so `import` and `require`
// share one module instance (one addon load, one registry of held locks),
// and package.json has no "exports" map, whose resolution costs the first
// package that has one ~3 ms of a CommonJS program's start-up in Node 20.
// `main` is a small file in front of the library's bundle (dist/lib.js) that
// names its exports: `import` makes Node's CommonJS lexer scan the file it
// loads, and over the 44 KB bundle that scan ran long enough for V8 to
// optimise the lexer on a background thread, which the process then waited
// for at exit: +50 ms for an ES module's guard, against 0.3 ms for loading
// one file more.
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
fs.rmSync(out, { recursive: true, force: true })

try {
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.json'), '--emitDeclarationOnly', '--outDir', out], { stdio: 'inherit' })
  await esbuild.build({
    entryPoints: {
      lib: path.join(root, 'src/index.ts'),
      cli: path.join(root, 'src/cli/main.ts'),
      win32: path.join(root, 'src/backends/win32-mutex/index.ts'),
      'messages/index': path.join(root, 'src/messages/index.ts'),
      postgres: path.join(root, 'src/backends/postgres/index.ts'),
    },
    outdir: out,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    // The Windows backend is its own file, required by the other two on
    // Windows only. node-gyp-build is required only where the addon is not
    // the shipped prebuild (src/backends/addon.ts). The PostgreSQL backend
    // (`instance-lock/postgres`) is its own file, which the CLI requires only
    // for --postgres, and `pg` is the user's.
    external: ['./win32.js', 'node-gyp-build', './postgres.js', 'pg'],
    legalComments: 'none',
    logLevel: 'warning',
  })

  // The Windows backend gets the shared modules handed over (a second copy
  // would mean a second registry of held locks): it must bundle nothing else.
  const win32 = fs.readFileSync(path.join(out, 'win32.js'), 'utf8')
  const sources = [...win32.matchAll(/^\/\/ (src\/\S+)$/gm)].map((m) => m[1])
  if (sources.join() !== 'src/backends/win32-mutex/index.ts') throw new Error(`build-ts: dist/win32.js bundles ${sources.join(', ')}`)
  const messages = fs.readFileSync(path.join(out, 'messages', 'index.js'), 'utf8')
  const outside = [...messages.matchAll(/^\/\/ (src\/\S+)$/gm)].map((m) => m[1]).filter((s) => !s.startsWith('src/messages/'))
  if (outside.length > 0) throw new Error(`build-ts: dist/messages/index.js bundles ${outside.join(', ')}`)
  // The PostgreSQL backend shares the core (Lock, the record, errors) but
  // needs nothing of this machine's locks: no addon, no local backend.
  const postgres = fs.readFileSync(path.join(out, 'postgres.js'), 'utf8')
  const local = [...postgres.matchAll(/^\/\/ (src\/\S+)$/gm)]
    .map((m) => m[1])
    .filter((s) => !/^src\/(backends\/postgres\/|core\/|api\/validate\.ts$)/.test(s) || /^src\/core\/(speed|holder|locate)\.ts$/.test(s))
  if (local.length > 0) throw new Error(`build-ts: dist/postgres.js bundles ${local.join(', ')}`)
  // Nor may the library load the PostgreSQL backend or pg: the guard's start-up pays for every byte.
  const lib = fs.readFileSync(path.join(out, 'lib.js'), 'utf8')
  if (/^\/\/ src\/backends\/postgres\//m.test(lib) || lib.includes('require("pg")')) throw new Error('build-ts: dist/lib.js includes the PostgreSQL backend')

  // Node's CommonJS lexer finds the names for `import { tryLock } from
  // 'instance-lock'` in esbuild's annotation `0 && (module.exports = { a, b })`;
  // main repeats it (test/entrypoints.test.ts checks that they are all there).
  // Its require() is not the re-export `module.exports = require('./lib.js')`,
  // which the lexer would follow, scanning the bundle after all.
  const annotation = /0 && \(module\.exports = \{([^}]+)\}\)/.exec(fs.readFileSync(path.join(out, 'lib.js'), 'utf8'))
  if (annotation === null) throw new Error('build-ts: no export annotation in the CommonJS bundle: `import` of the package would see no names')
  const names = annotation[1]
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '')
  fs.writeFileSync(
    path.join(out, 'index.js'),
    `'use strict'\n// The package's main; the library is lib.js (see scripts/build-ts.mjs).\n` +
      `const api = require('./lib.js')\nmodule.exports = api\n0 && (module.exports = { ${names.join(', ')} })\n`,
  )

  const dist = path.join(root, 'dist')
  const old = path.join(root, `dist.old.${process.pid}`)
  if (fs.existsSync(dist)) fs.renameSync(dist, old)
  fs.renameSync(out, dist)
  fs.rmSync(old, { recursive: true, force: true })
} finally {
  fs.rmSync(out, { recursive: true, force: true })
}
