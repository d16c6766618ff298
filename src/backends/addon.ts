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
// platform, that the addon loaded is the one node-gyp-build picks. (A speed
// measure, with the others in src/core/speed.ts.)
// The package root: above dist/ for the bundle, above src/backends/ for the
// sources (as the tests run them).
const root = join(__dirname, __filename.endsWith('.ts') ? '../..' : '..')

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

/** What native/binding.cc exports on every platform. */
interface Common {
  /** sha256(text) -> hex digest of its UTF-8 bytes. */
  sha256(text: string): string
}

/**
 * The Unix primitives (native/posix/), whose
 * comments say what each does. Descriptors are plain numbers; `checks` is a
 * mask of the CHECK_ constants.
 */
export interface PosixAddon extends Common {
  platform: 'posix'
  AT_FDCWD: number
  CHECK_MODE: number
  CHECK_NAME: number
  CHECK_OWNER: number
  /** Whether the addon was loaded on the process's main thread. */
  INITIAL_THREAD: boolean
  /** Whether the kernel can show who holds a flock (/proc on Linux); false in the portable build. */
  PROVES_HOLDERS: boolean
  open(dirfd: number, name: string, mode: number, checks: number): [fd: number, writable: boolean]
  /** 0 acquired, 1 held, 2 stale (reopen). */
  lock(fd: number, dirfd: number, name: string, writable: boolean, mode: number, checks: number, record: string | null): number
  /** fd or ~fd (acquired, ~fd read-only) | the holder's record | with `keep`, the descriptor to wait on. */
  acquire(
    dirfd: number,
    name: string,
    mode: number,
    checks: number,
    record: string | null,
    keep: boolean,
    spare: number,
    spareWritable: boolean,
  ): number | string | null | [fd: number, writable: boolean]
  probe(path: string): [held: boolean, record: string | null, dev: number, ino: number] | null
  readRecord(fd: number): string | null
  writeRecord(fd: number, json: string): void
  flock(fd: number, shared: boolean, nonblocking: boolean): boolean
  close(fd: number): void
  openDir(path: string): number
  release(fd: number): void
  unlock(fd: number): void
  /** statfs magic number (Linux) or type name (BSD, macOS). */
  fsType(path: string): number | string
  hostname(): string | undefined
  sameFile(fd: number, dirfd: number, name: string): boolean
  /** The peer of a connected Unix socket as the kernel recorded it: [pid (-1: not known here), uid]. */
  peerCred(fd: number): [pid: number, uid: number]
  // Linux only: waits that block on a thread of the addon's, and pidfds.
  waitInit?: (callback: (id: number, state: number, value: number, syscall: string) => void) => boolean
  waitStart?: (fd: number, dirfd: number, name: string, writable: boolean, mode: number, checks: number, record: string | null) => number
  waitCancel?: (id: number) => void
  pidfdOpen?: (pid: number) => number
  pidfdSignal?: (pidfd: number, signal: number) => void
}

/** The Windows primitives (native/win32/). */
export interface Win32Addon extends Common {
  platform: 'win32'
  /** [handle, abandoned] | null (held). */
  acquire(name: string, machine: boolean): [handle: number, abandoned: boolean] | null
  release(handle: number): void
  /** null (no such mutex) | [held, ownerPid (0: unknown)]. */
  probe(name: string): [held: boolean, owner: number] | null
  waitStart(name: string, machine: boolean, callback: (state: number, winerror: number) => void): number
  waitStop(id: number): void
  userSid(): string
  knownFolder(which: 'LocalAppData' | 'ProgramData'): string
  /** Creation time (100 ns since 1601, decimal) | null (no such live process) | false (not ours to query). */
  processStartTime(pid: number): string | null | false
  terminate(pid: number, startTime: string): boolean
  makeSharedDir(path: string): void
  /** Serves the pipe `name` (see native/win32/pipe.cc); each complete request reaches `callback`. */
  pipeListen(name: string, machine: boolean, deadlineMs: number, callback: (conn: number, pid: number, hello: Buffer, data: Buffer) => void): number
  /** Writes `frame` to the parked client `conn` and closes it; false if it is gone. */
  pipeReply(id: number, conn: number, frame: Buffer): boolean
  pipeClose(id: number): void
  /** The pid serving the pipe `name`, as the kernel reports it; 0 when none does now. */
  pipeServerPid(name: string): number
}

// The addon's shape is the C++ code's to give: stated here, once.
export const native = load() as PosixAddon | Win32Addon
