import { existsSync } from 'node:fs'
import { join } from 'node:path'

// The addon, loaded once, from the package root, by the one CommonJS build
// that both the `import` and the `require` entry points share.
//
// node-gyp-build decides which file that is: a build/ directory first, then
// the best match in prebuilds/<platform>-<arch>/, honouring overrides from
// the environment. Starting it and letting it search costs ~1 ms, a sixth of
// what the guard in the first line of main() costs in all. So where nothing
// it reads could change its answer, the answer is taken directly: the
// package ships one prebuild per platform and CPU, under the name below, and
// node-gyp-build picks it whenever
// - INSTANCE_LOCK_PREBUILD does not point it elsewhere,
// - npm_config_platform, npm_config_arch and LIBC do not make it look for
//   another platform, CPU or C library,
// - on Linux, the C library is glibc (node-gyp-build's test: no
//   /etc/alpine-release), which the Linux prebuilds are tagged for,
// - and there is no build/ directory, whose addon it would prefer.
// Everything else (a source build, another platform, an override) is left to
// node-gyp-build itself. The packaging test checks, on every shipped
// platform, that the addon loaded is the one node-gyp-build picks.
const root = join(__dirname, '..')

const SHIPPED: Partial<Record<NodeJS.Platform, string>> = {
  linux: 'instance-lock.glibc.node',
  win32: 'instance-lock.node',
}

function shippedPrebuild(): string | undefined {
  const file = SHIPPED[process.platform]
  const env = process.env
  if (file === undefined || env.INSTANCE_LOCK_PREBUILD || env.npm_config_platform || env.npm_config_arch || env.LIBC) return undefined
  if (process.platform === 'linux' && existsSync('/etc/alpine-release')) return undefined
  if (existsSync(join(root, 'build'))) return undefined
  const path = join(root, 'prebuilds', `${process.platform}-${process.arch}`, file)
  return existsSync(path) ? path : undefined
}

function load(): unknown {
  const prebuild = shippedPrebuild()
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  if (prebuild !== undefined) return require(prebuild)
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('node-gyp-build') as typeof import('node-gyp-build'))(root)
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const native: any = load()
