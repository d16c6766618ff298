// Builds the addon's portable Unix variant on Linux: native/ compiled with
// INSTANCE_LOCK_PORTABLE, which leaves out every Linux-only path (statx, the
// OFD inspection indicator, waiting threads, gettid, statfs magic numbers,
// pidfds, holders proven from /proc) and takes the ones macOS and the BSDs
// take, so that the conformance scenarios can run them here:
//
//   node scripts/build-portable.mjs [--out .cache/portable]
//   INSTANCE_LOCK_PREBUILD=.cache/portable node test/conformance/scenarios.mjs
//
// The addon lands in OUT/build/Release/instance_lock.node, where
// node-gyp-build looks when INSTANCE_LOCK_PREBUILD names OUT. Rebuilt only
// when a source, the flags or this script changed. test/conformance/bsd-getlk.cc
// stands in for F_GETLK as the BSDs answer it: see there.
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const self = fileURLToPath(import.meta.url)
const root = path.resolve(path.dirname(self), '..')
const require = createRequire(path.join(root, 'package.json'))
const { values } = parseArgs({ options: { out: { type: 'string' } } })
const out = path.resolve(values.out ?? path.join(root, '.cache', 'portable'))
const addon = path.join(out, 'build', 'Release', 'instance_lock.node')

if (process.platform !== 'linux') {
  console.error('build-portable: only for Linux; elsewhere `npm run build:native` builds these paths already')
  process.exit(1)
}

// Node's headers (uv.h too, which node-api-headers lacks): this Node's own
// install prefix unless npm_config_nodedir says otherwise, as npm run
// build:native and scripts/prebuild.mjs find them.
const nodedir = process.env.npm_config_nodedir || path.resolve(path.dirname(process.execPath), '..')
const nodeInclude = path.join(nodedir, 'include', 'node')
if (!fs.existsSync(path.join(nodeInclude, 'node_api.h'))) {
  console.error(`build-portable: no Node headers in ${nodeInclude}; set npm_config_nodedir to a Node install with headers`)
  process.exit(1)
}
const addonApi = path.dirname(require.resolve('node-addon-api/package.json'))

const sources = ['binding.cc', 'sha256.cc', ...['env', 'exports', 'lockfile', 'peer', 'process', 'record', 'wait'].map((f) => `posix/${f}.cc`)].map((f) =>
  path.join(root, 'native', f),
)
sources.push(path.join(root, 'test', 'conformance', 'bsd-getlk.cc'))
const headers = ['', 'posix'].flatMap((dir) =>
  fs
    .readdirSync(path.join(root, 'native', dir))
    .filter((f) => f.endsWith('.h'))
    .map((f) => path.join(root, 'native', dir, f)),
)
const cxx = process.env.CXX ?? 'g++'
// As binding.gyp and node-gyp's defaults build the addon, plus the define.
const args = [
  '-std=c++17',
  '-O2',
  '-fPIC',
  '-pthread',
  '-fvisibility=hidden',
  '-fno-exceptions',
  '-fno-rtti',
  '-Wall',
  '-Wextra',
  '-Wno-unused-parameter',
  '-DINSTANCE_LOCK_PORTABLE',
  '-DBUILDING_NODE_EXTENSION',
  '-DNAPI_VERSION=8',
  '-DNAPI_DISABLE_CPP_EXCEPTIONS',
  '-DNODE_ADDON_API_DISABLE_DEPRECATED',
  '-I',
  nodeInclude,
  '-I',
  addonApi,
  ...sources,
  '-shared',
  '-o',
  addon,
]

const digest = createHash('sha256').update(cxx).update(args.join('\0'))
for (const f of [self, ...sources, ...headers]) digest.update(fs.readFileSync(f))
const stamp = path.join(out, 'inputs.sha256')
const want = digest.digest('hex')
if (fs.existsSync(addon) && fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === want) {
  console.log(`build-portable: ${path.relative(process.cwd(), addon)} is up to date`)
  process.exit(0)
}

fs.rmSync(stamp, { force: true })
fs.mkdirSync(path.dirname(addon), { recursive: true })
try {
  execFileSync(cxx, args, { stdio: 'inherit' })
} catch (err) {
  console.error(`build-portable: ${cxx} failed${err.status === undefined ? `: ${err.message}` : ` with exit code ${err.status}`}`)
  process.exit(1)
}
fs.writeFileSync(stamp, want)
console.log(`build-portable: ${path.relative(process.cwd(), addon)}`)
