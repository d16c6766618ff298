// Compiles src/ to dist/ (CommonJS + declarations) and writes the ESM entry
// as a thin wrapper over the CommonJS build, so `import` and `require` share
// one module instance: one addon load, one registry of held locks.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'

const root = path.resolve(import.meta.dirname ?? path.dirname(new URL(import.meta.url).pathname), '..')
const require = createRequire(path.join(root, 'package.json'))
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.json')], { stdio: 'inherit' })

const cjs = fs.readFileSync(path.join(root, 'dist/index.js'), 'utf8')
const names = [...cjs.matchAll(/^exports\.([A-Za-z_$][\w$]*) = /gm), ...cjs.matchAll(/Object\.defineProperty\(exports, "([A-Za-z_$][\w$]*)"/g)]
  .map((m) => m[1])
  .filter((n, i, all) => n !== '__esModule' && all.indexOf(n) === i)
  .sort()
fs.writeFileSync(
  path.join(root, 'dist/index.mjs'),
  `import cjs from './index.js'\n\nexport const { ${names.join(', ')} } = cjs\n`,
)
fs.writeFileSync(path.join(root, 'dist/index.d.mts'), `export * from './index.js'\n`)
