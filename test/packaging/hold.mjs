// Runs inside the consumer project that installed the packed tarball, on
// the Node under test (native, qemu-aarch64 or Wine). Imported as ESM; takes
// the lock and holds it until killed.
//
//   node hold.mjs RESULT_FILE NAME [DIR]
//
// Reports through RESULT_FILE rather than stdout: node.exe under Wine cannot
// write to a Unix pipe. The file is renamed into place, so the parent never
// reads half of it.
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'

const [resultFile, name, dir] = process.argv.slice(2)

function report(result) {
  fs.writeFileSync(`${resultFile}.tmp`, JSON.stringify(result))
  fs.renameSync(`${resultFile}.tmp`, resultFile)
}

try {
  const esm = await import('instance-lock')
  const require = createRequire(import.meta.url)
  const cjs = require('instance-lock')
  const lock = esm.tryLock(name, dir ? { dir, data: { role: 'holder' } } : { data: { role: 'holder' } })
  report({
    pid: process.pid,
    platform: process.platform,
    arch: process.arch,
    node: process.version,
    // The file node-gyp-build picks with this environment, and the one the
    // package loaded (src/backends/addon.ts).
    addon: require('node-gyp-build').path(path.dirname(require.resolve('instance-lock/package.json'))),
    loaded: Object.keys(require.cache).filter((f) => f.endsWith('.node')),
    // `import` and `require` must share one module: one addon, one registry of held locks.
    sameModule: esm.tryLock === cjs.tryLock && esm.LockedError === cjs.LockedError,
    path: lock.path,
  })
  setInterval(() => {}, 1 << 30)
} catch (err) {
  report({ error: { name: err.name, code: err.code, message: err.message } })
  process.exit(1)
}
