// Formats the C and C++ sources with the clang-format binary that the
// clang-format-node devDependency ships (one pinned version, so every machine
// formats alike), or with --check reports the files it would change.
// Where that package has no binary for this platform, the check is skipped
// with the reason: formatting is not worth failing a build over there.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')
const require = createRequire(path.join(root, 'package.json'))
const check = process.argv.includes('--check')

// Every C and C++ file of the project: the addon and the C around it.
const DIRS = {
  native: /\.(cc|h)$/,
  'native/posix': /\.(cc|h)$/,
  'native/win32': /\.(cc|h)$/,
  scripts: /\.h$/,
  bench: /\.c$/,
  'test/conformance': /\.(c|cc)$/,
}
const files = Object.entries(DIRS).flatMap(([dir, pattern]) =>
  fs
    .readdirSync(path.join(root, dir))
    .filter((f) => pattern.test(f))
    .map((f) => path.join(dir, f)),
)

let binary
try {
  binary = require('clang-format-node').getClangFormatPath(process.platform, process.arch)
} catch (err) {
  console.warn(`clang-format check skipped: ${err.message.split('\n')[0]}`)
  process.exit(0)
}

try {
  execFileSync(binary, check ? ['--dry-run', '--Werror', ...files] : ['-i', ...files], { cwd: root, stdio: 'inherit' })
} catch (err) {
  if (err.status === undefined || err.status === null) throw err
  if (check) console.error('C/C++ sources are not formatted: run `npm run format`')
  process.exit(1)
}
