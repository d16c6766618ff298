import { fchmodSync, fstatSync, lstatSync, mkdirSync, statSync } from 'node:fs'
import type { Stats } from 'node:fs'
import { join, resolve as resolvePath } from 'node:path'
import { entriesOf, makeDirs } from '../../core/backend.js'
import type { Acquired, Backend, Found, Held, Location, Probe } from '../../core/backend.js'
import { native as addon } from '../addon.js'
import type { PosixAddon } from '../addon.js'
import { abortError, fromNative, systemError, withPath } from '../../core/errors.js'
import { flockHeldBy, flockHolders, flockTaker, processStart } from './proc.js'
import { signalHolder } from './signal.js'
import { UNSTAMPED } from '../../core/record.js'
import { createWaits } from '../../core/waiter.js'
import type { Waiter } from '../../core/waiter.js'
import type { Scope } from '../../api/types.js'

// This backend runs only where the addon is the Unix one (src/backends/index.ts
// chooses); on Windows this module is loaded but never called.
const native = addon as PosixAddon

/**
 * Unix: one file per lock, `flock(LOCK_EX|LOCK_NB)` on a descriptor opened
 * with O_CLOEXEC|O_NOFOLLOW, identity re-checked after every flock, never
 * unlinked (so no unlink-on-release race exists), holder record written in
 * place. See docs/how-it-works.md.
 */

interface PosixLocation extends Location {
  dir: string
  file: string
  kind: 'user' | 'machine' | 'custom'
  mode: number
  enforceMode: boolean
}

interface PosixHandle {
  fd: number
  writable: boolean
}

interface Dir {
  fd: number
  /** The addon's CHECK_NAME where a file's link count cannot be trusted to show its deletion. */
  checks: number
}

const USER_MODE = 0o600
const MACHINE_MODE = 0o666
const CUSTOM_MODE = 0o666 // the creator's umask decides in a directory the user chose
const NAME_RE = /^([A-Za-z0-9_-][A-Za-z0-9._-]{0,63}?)(?:@([0-9a-f]{32}))?(\+machine)?\.lock$/

let root: string | undefined

/**
 * Where the scope directories live. It must be a pure function of the machine:
 * never $TMPDIR or $XDG_RUNTIME_DIR, which differ between a login shell, cron,
 * systemd and sudo and would let two processes of one user both "win". Linux
 * uses /dev/shm: world-writable and sticky like /tmp, but not aged by
 * systemd-tmpfiles and not replaced by systemd's PrivateTmp=, which would
 * give a service its own /tmp.
 */
function lockRoot(): string {
  if (root === undefined) {
    root = '/tmp'
    if (process.platform === 'linux') {
      try {
        const st = statSync('/dev/shm')
        if (st.isDirectory() && (st.mode & 0o1777) === 0o1777) root = '/dev/shm'
      } catch {
        // no /dev/shm: /tmp
      }
    }
  }
  return root
}

export function scopeDir(scope: Scope): string {
  return scope === 'machine' ? join(lockRoot(), 'instance-lock') : join(lockRoot(), `instance-lock-${process.geteuid!()}`)
}

function fileName(name: string, keyHash: string | undefined, machineSuffix: boolean): string {
  return `${name}${keyHash === undefined ? '' : '@' + keyHash}${machineSuffix ? '+machine' : ''}.lock`
}

function locate(id: { name: string; key: string | undefined; keyHash: string | undefined; scope: Scope; dir: string | undefined }): PosixLocation {
  const custom = id.dir !== undefined
  const dir = custom ? resolvePath(id.dir!) : scopeDir(id.scope)
  // In a directory of the user's choosing the scope still tells the two
  // locks apart (and sets the file mode), as the default directories do.
  const file = fileName(id.name, id.keyHash, custom && id.scope === 'machine')
  const p = join(dir, file)
  return {
    name: id.name,
    key: id.key,
    scope: id.scope,
    path: p,
    id: p,
    dir,
    file,
    kind: custom ? 'custom' : id.scope,
    mode: id.scope === 'machine' ? MACHINE_MODE : custom ? CUSTOM_MODE : USER_MODE,
    enforceMode: id.scope === 'machine',
  }
}

// The scope directories are set up and verified once per process and kept
// open: the descriptor pins the verified directory (every lock file is
// opened relative to it, so it cannot be swapped for another), and a shared
// flock on it makes systemd-tmpfiles skip it and everything in it. A
// directory the user chose is used by path and nothing in it is held open
// between locks past the current turn of the event loop (see `spares`), so
// it can be unmounted or removed like any other.
const dirs = new Map<string, Dir>()
const warnedNetwork = new Set<string>()

/**
 * The directory of `loc`'s lock file, set up once. A directory the user chose
 * is made (with its parents) only when `create`: when a lock file could not
 * be made in it for want of it (ENOENT), as the callers retry.
 */
function openDir(loc: PosixLocation, create = false): Dir {
  let d = dirs.get(loc.dir)
  if (d !== undefined) return d
  if (loc.kind === 'custom') {
    if (create) makeDirs(loc.dir)
    d = { fd: native.AT_FDCWD, checks: fsChecks(loc.dir) }
    dirs.set(loc.dir, d)
    return d
  }
  // Opened first and made only if missing: it nearly always exists, and a
  // failed mkdirSync costs a thrown error, a tenth of a guard's start-up.
  let fd: number
  try {
    fd = openDirFd(loc.dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw withPath(err, loc.dir)
    try {
      mkdirSync(loc.dir, { mode: loc.kind === 'user' ? 0o700 : 0o777 })
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw withPath(e, loc.dir)
    }
    try {
      fd = openDirFd(loc.dir)
    } catch (e) {
      throw withPath(e, loc.dir)
    }
  }
  try {
    verifyDir(fd, loc)
    native.flock(fd, true, true)
  } catch (err) {
    native.close(fd)
    throw withPath(err, loc.dir)
  }
  d = { fd, checks: fsChecks(loc.dir) }
  dirs.set(loc.dir, d)
  return d
}

// Through the addon, so the descriptor is closed with the environment that
// opened it (a Worker's, when it ends).
function openDirFd(dir: string): number {
  try {
    return native.openDir(dir)
  } catch (err) {
    fromNative(err, dir)
  }
}

/** The name the addon opens relative to the directory's descriptor. */
function fileArg(loc: PosixLocation): string {
  return loc.kind === 'custom' ? loc.path : loc.file
}

/**
 * The user-scope directory must be ours and closed to others, or another
 * user could read, take or block our locks; one prepared by someone else is
 * refused. The machine-scope directory must let every user create locks,
 * and be sticky so no user can delete another's. Its owner can delete any
 * lock file in it, sticky or not, letting a second process take a lock that
 * is held: so it must belong to root, or to the calling user (who then
 * could only subvert their own locks, and whom every other user refuses).
 */
function verifyDir(fd: number, loc: PosixLocation): void {
  const st = fstatSync(fd)
  const uid = process.geteuid!()
  if (loc.kind === 'user') {
    if (st.uid !== uid) {
      throw systemError(13, 'open', loc.dir, `owned by uid ${st.uid}, not by uid ${uid}; a user-scope lock directory must belong to its user (remove it, or pass \`dir\`)`)
    }
    if ((st.mode & 0o077) !== 0) fchmodSync(fd, 0o700)
  } else if (loc.kind === 'machine') {
    if (st.uid !== 0 && st.uid !== uid) {
      throw systemError(
        13,
        'open',
        loc.dir,
        `owned by uid ${st.uid}, who could delete the lock files of others in it; a machine-scope lock directory must belong to root (remove it, or have root create it with mode 1777)`,
      )
    }
    const mode = st.mode & 0o7777
    if (mode !== 0o1777) {
      if (st.uid === uid) fchmodSync(fd, 0o1777)
      else if ((mode & 0o002) !== 0 && (mode & 0o1000) === 0) {
        throw systemError(13, 'open', loc.dir, `world-writable without the sticky bit (mode ${mode.toString(8)}), so any user could delete another's locks; refusing to use it`)
      }
    }
  }
}

function checkDirForRead(loc: PosixLocation): void {
  if (loc.kind !== 'user' || dirs.has(loc.dir)) return
  let st: Stats
  try {
    st = lstatSync(loc.dir)
  } catch {
    return
  }
  if (!st.isDirectory() || st.uid !== process.geteuid!()) {
    throw systemError(13, 'open', loc.dir, `not a directory owned by uid ${process.geteuid!()}; refusing to read locks from it`)
  }
}

// statfs magic numbers of file systems where flock may not exclude across
// machines (Linux emulates it with POSIX locks on NFS, and client caches
// differ): NFS, SMB/CIFS, FUSE (sshfs…), Ceph, AFS, 9p, GFS2, OCFS2.
const NETWORK_FS = new Set([0x6969, 0x517b, 0xff534d42, 0xfe534d42, 0x65735546, 0x00c36400, 0x5346414f, 0x01021997, 0x01161970, 0x7461636f])
const NETWORK_FS_NAMES = new Set(['nfs', 'smbfs', 'afpfs', 'webdav', 'cifs'])
// Linux file systems where deleting or replacing a file drops the open
// inode's link count to zero, so that count alone shows a lock file gone
// between open and flock: ext2/3/4, XFS, Btrfs, tmpfs, ramfs, F2FS, ZFS,
// bcachefs. Elsewhere (NFS and FUSE rename a deleted open file; overlayfs
// leaves a lower layer's inode alone; every other system) the lock file's
// name is looked up again after each flock, one more system call.
const LINK_COUNT_FS = new Set([0xef53, 0x58465342, 0x9123683e, 0x01021994, 0x858458f6, 0xf2f52010, 0x2fc12fc1, 0xca451a4e])

/**
 * The addon's name check for lock files in `dir`, decided once per directory
 * set-up; warns (once) when `dir` is on a network file system.
 */
export function fsChecks(dir: string): number {
  let type: number | string
  try {
    type = native.fsType(dir)
  } catch {
    return native.CHECK_NAME
  }
  if (!warnedNetwork.has(dir) && (typeof type === 'number' ? NETWORK_FS.has(type) : NETWORK_FS_NAMES.has(type))) {
    warnedNetwork.add(dir)
    process.emitWarning(`${dir} is on a network file system; flock there may not exclude processes on other machines`, {
      code: 'INSTANCE_LOCK_NETWORK_FS',
    })
  }
  return typeof type === 'number' && LINK_COUNT_FS.has(type) ? 0 : native.CHECK_NAME
}

/**
 * What the addon checks of `loc`'s file, in `d`. Root takes over machine-scope
 * lock files another user created: their creator could otherwise unlink one
 * (the owner of a file may, even in a sticky directory) while root holds it,
 * and a second process would take a new file at the same path. Other users
 * cannot take files over; `Lock.signal` tells them when theirs is gone.
 */
function checksOf(loc: PosixLocation, d: Dir): number {
  if (!loc.enforceMode) return d.checks
  return native.CHECK_MODE | d.checks | (process.geteuid!() === 0 ? native.CHECK_OWNER : 0)
}

function isNoEnt(err: unknown): boolean {
  return (err as { code?: unknown }).code === 'ENOENT'
}

function acquire(l: Location, record: string): PosixHandle | Held {
  const r = take(l as PosixLocation, record, false) as number | string | null
  if (typeof r === 'number') return handleOf(r)
  return { held: true, record: r }
}

/** The addon's acquired descriptor: fd, or ~fd for a read-only one. */
function handleOf(r: number): PosixHandle {
  return r >= 0 ? { fd: r, writable: true } : { fd: ~r, writable: false }
}

// Released descriptors kept until the end of the current turn of the event
// loop, by lock: taking the same lock again meanwhile (a loop of lock and
// release, contention) flocks the descriptor it already has instead of
// opening the file again, and is quicker to retake it after a release than
// a waiter woken in another process. Nothing stays open past the turn. (A
// speed measure, with the others in src/core/speed.ts.)
const spares = new Map<string, PosixHandle>()
let sparesClosing: NodeJS.Immediate | undefined

function closeSpares(): void {
  sparesClosing = undefined
  for (const h of spares.values()) native.close(h.fd)
  spares.clear()
}

/**
 * One call to the addon's acquire: the descriptor (acquired: fd, or ~fd if
 * read-only), or held: the holder's record, or with `keep` the descriptor to
 * wait on, [fd, writable].
 */
function take(loc: PosixLocation, record: string, keep: boolean): number | string | null | [number, boolean] {
  const spare = spares.get(loc.id)
  if (spare !== undefined) spares.delete(loc.id)
  for (let attempt = 0; ; attempt++) {
    const d = openDir(loc, attempt > 0)
    // The addon owns the spare from the first call on, whatever happens.
    const s = attempt === 0 ? spare : undefined
    try {
      return native.acquire(d.fd, fileArg(loc), loc.mode, checksOf(loc, d), record, keep, s?.fd ?? -1, s?.writable ?? false)
    } catch (err) {
      // The directory is missing (never made, or deleted under us:
      // creating in it fails with ENOENT): set it up again, once.
      if (attempt === 0 && isNoEnt(err)) {
        forgetDir(loc.dir)
        continue
      }
      fromNative(err, loc.path)
    }
  }
}

function forgetDir(dir: string): void {
  const d = dirs.get(dir)
  if (d === undefined) return
  dirs.delete(dir)
  if (d.fd !== native.AT_FDCWD) native.close(d.fd)
}

// Only on the main thread: a Worker that ends in the same turn would leave
// its spares open for the life of the process. The addon tells (loading
// node:worker_threads to ask would cost a process's first release ~4 ms).
const keepSpares: boolean = native.INITIAL_THREAD === true

function release(l: Location, h: PosixHandle, shared = false): void {
  if (shared) native.close(h.fd)
  else if (!keepSpares) native.release(h.fd)
  else {
    native.unlock(h.fd)
    const old = spares.get(l.id)
    if (old !== undefined) native.close(old.fd)
    spares.set(l.id, h)
    if (sparesClosing === undefined) sparesClosing = setImmediate(closeSpares).unref()
  }
  waits.released(l.id)
}

function update(l: Location, h: PosixHandle, record: string): void {
  try {
    native.writeRecord(h.fd, record)
  } catch (err) {
    fromNative(err, l.path)
  }
}

// By path, not relative to the pinned directory: a directory swapped for
// another at its path (by its owner) loses the lock as surely as a file.
function lost(l: Location, h: PosixHandle): boolean {
  return native.sameFile(h.fd, native.AT_FDCWD, l.path) !== true
}

function probe(l: Location): Probe | null {
  const loc = l as PosixLocation
  checkDirForRead(loc)
  let r: [boolean, string | null, number, number] | null
  try {
    r = native.probe(loc.path)
  } catch (err) {
    fromNative(err, loc.path)
  }
  if (r === null) return null
  return { held: r[0], record: r[1] }
}

function enumerate(scope: Scope, dir: string | undefined): Found[] {
  const custom = dir !== undefined
  const base = locate({ name: 'x', key: undefined, keyHash: undefined, scope, dir })
  checkDirForRead(base)
  const out: Found[] = []
  for (const n of entriesOf(base.dir)) {
    const m = NAME_RE.exec(n)
    if (m === null) continue
    if (custom && (m[3] !== undefined) !== (scope === 'machine')) continue
    if (!custom && m[3] !== undefined) continue
    const loc = locate({ name: m[1]!, key: undefined, keyHash: m[2], scope, dir })
    out.push({ location: loc, keyHash: m[2] })
  }
  return out
}

// ---------------------------------------------------------------------------
// Waiting (the queue, timeout, abort and keep-alive are src/core/waiter.ts's). A
// waiter opens the lock file once and tries flock(LOCK_NB) on its own
// descriptor; while the lock is held, on Linux, a thread of the addon's own
// (never one of libuv's pool) blocks in flock(LOCK_EX) on it, so the kernel
// hands the lock over the moment the holder releases it or dies; the thread
// verifies it and writes the record (see native/posix/wait.cc). Only the
// head of a lock's queue waits in the kernel. A slow check covers what a
// blocked flock cannot see: the lock file replaced or deleted while its old
// holder keeps the orphan locked. Where no thread can wait (macOS, the BSDs)
// the head retries every 10 ms.

interface WaitState {
  loc: PosixLocation
  dir: Dir | undefined
  /** The waiter's own descriptor: -1 once handed over or closed. */
  fd: number
  writable: boolean
  /** The id of the addon's pending blocking wait, which uses `fd`. */
  blocked: number | undefined
}

type PosixWaiter = Waiter<WaitState, PosixHandle>

const blocked = new Map<number, PosixWaiter>()
// The addon's waits that block in the kernel on a thread of its own, or null
// where waits retry instead; decided at the first wait (Linux has them,
// unless no real-time signal is free to wake them).
interface BlockingWaits {
  start: NonNullable<PosixAddon['waitStart']>
  cancel: NonNullable<PosixAddon['waitCancel']>
}
let blocking: BlockingWaits | null | undefined

function blockingWaits(): BlockingWaits | null {
  if (blocking === undefined) {
    const { waitInit, waitStart, waitCancel } = native
    const can = waitInit !== undefined && waitStart !== undefined && waitCancel !== undefined && waitInit(onWaitEnded)
    blocking = can ? { start: waitStart, cancel: waitCancel } : null
  }
  return blocking
}

const waits = createWaits<WaitState, PosixHandle>(
  {
    blocking: () => blockingWaits() !== null,
    open: openWaiter,
    tryOnce,
    start,
    cancel,
    readHolder: (w) => (w.s.fd >= 0 ? native.readRecord(w.s.fd) : null),
    stillWaits: (w) => native.sameFile(w.s.fd, w.s.dir!.fd, fileArg(w.s.loc)) === true,
  },
  abortError,
)

/**
 * First: one try as tryLock makes, keeping the descriptor to wait on if it
 * is held. Otherwise the lock file is opened to wait on.
 */
function openWaiter(w: PosixWaiter, first: boolean): Acquired<PosixHandle> | null {
  const { s } = w
  if (first) {
    const at = Date.now()
    const r = take(s.loc, w.record(at), true)
    if (typeof r === 'number') return { handle: handleOf(r), at }
    s.dir ??= openDir(s.loc)
    ;[s.fd, s.writable] = r as [number, boolean]
    return null
  }
  s.dir ??= openDir(s.loc)
  openWaiterFd(s)
  return null
}

function openWaiterFd(s: WaitState): void {
  for (let attempt = 0; ; attempt++) {
    try {
      const [fd, writable] = native.open(s.dir!.fd, fileArg(s.loc), s.loc.mode, checksOf(s.loc, s.dir!))
      s.fd = fd
      s.writable = writable
      return
    } catch (err) {
      if (attempt === 0 && isNoEnt(err)) {
        forgetDir(s.loc.dir)
        s.dir = openDir(s.loc, true)
        continue
      }
      fromNative(err, s.loc.path)
    }
  }
}

/** The descriptor, which is the lock's holder now, is no longer the waiter's. */
function handOver(s: WaitState, at: number): Acquired<PosixHandle> {
  const fd = s.fd
  s.fd = -1
  return { handle: { fd, writable: s.writable }, at }
}

function tryOnce(w: PosixWaiter): Acquired<PosixHandle> | null {
  let at: number
  try {
    at = attempt(w.s, w.record)
  } catch (err) {
    throw withPath(err, w.s.loc.path)
  }
  return at >= 0 ? handOver(w.s, at) : null
}

function start(w: PosixWaiter): void {
  const { s } = w
  try {
    s.blocked = blocking!.start(s.fd, s.dir!.fd, fileArg(s.loc), s.writable, s.loc.mode, checksOf(s.loc, s.dir!), w.record(UNSTAMPED))
  } catch (err) {
    throw withPath(err, s.loc.path)
  }
  blocked.set(s.blocked, w)
}

// What the addon's lock() and a blocking wait end with (besides held, and
// failures): the lock is ours, or the descriptor no longer names the lock file.
const ACQUIRED = 0
const STALE = 2

/**
 * The blocking wait ended: acquired at `value` ms, acquired a file that is
 * no longer the lock file, or failed with errno `value` in `syscall`.
 */
function onWaitEnded(id: number, state: number, value: number, syscall: string): void {
  const w = blocked.get(id)
  if (w === undefined) return
  blocked.delete(id)
  w.s.blocked = undefined
  if (state === ACQUIRED) return waits.acquired(w, handOver(w.s, value))
  if (state === STALE) {
    try {
      reopen(w.s)
    } catch (err) {
      return waits.failed(w, err)
    }
    return waits.retry(w)
  }
  waits.failed(w, systemError(value, syscall, w.s.loc.path))
}

/** One try: the time it was acquired, or -1 while held. */
function attempt(s: WaitState, record: (at: number) => string): number {
  for (let i = 0; i < 64; i++) {
    const at = Date.now()
    const { loc } = s
    const state = native.lock(s.fd, s.dir!.fd, fileArg(loc), s.writable, loc.mode, checksOf(loc, s.dir!), record(at))
    if (state === ACQUIRED) return at
    if (state !== STALE) return -1
    reopen(s)
  }
  throw systemError(11, 'flock', s.loc.path)
}

/** The file we waited on was unlinked or replaced: follow the new one. */
function reopen(s: WaitState): void {
  native.close(s.fd)
  s.fd = -1
  openWaiterFd(s)
}

/**
 * Ends the blocking wait, if any: when the addon returns, its thread has let
 * go, and the descriptor is unlocked and closed (dropping the lock if the
 * thread took it just now). Otherwise the descriptor, if still the waiter's,
 * is closed. Either way the wait holds nothing.
 */
function cancel(w: PosixWaiter): void {
  const { s } = w
  // Only blocking waits set `blocked`.
  if (s.blocked !== undefined && blocking) {
    blocking.cancel(s.blocked)
    blocked.delete(s.blocked)
    s.blocked = undefined
    s.fd = -1
  }
  if (s.fd >= 0) {
    native.close(s.fd)
    s.fd = -1
  }
}

function wait(l: Location, record: (at: number) => string, timeout: number | undefined, signal: AbortSignal | undefined): Promise<Acquired<PosixHandle> | Held> {
  const loc = l as PosixLocation
  return waits.wait(loc.id, { loc, dir: undefined, fd: -1, writable: false, blocked: undefined }, record, timeout, signal)
}

/**
 * Whether the system shows which process holds a flock, so that it can be
 * proven (see proc.ts): Linux, as the addon says. Not macOS, the BSDs or the
 * addon's portable build, which takes their paths on Linux. Elsewhere nobody
 * is ever named as proven holder, so nobody is ever signalled on a guess.
 */
const PROVES_HOLDERS: boolean = native.PROVES_HOLDERS === true

function holders(l: Location): number[] {
  return PROVES_HOLDERS ? flockHolders(l.path) : []
}

function taker(l: Location): number | undefined {
  return PROVES_HOLDERS ? flockTaker(l.path) : undefined
}

// Linux >= 5.3: a holder is signalled through a pidfd opened before it is
// verified, so the process signalled is the one verified (src/backends/flock/signal.ts).
// Without pidfds (an older kernel, a seccomp filter that refuses them; or not
// Linux, where no holder is ever proven) it is verified right before
// kill(pid). Whether pidfd_open works is learned once: null once it does not.
let pidfds: { open: NonNullable<PosixAddon['pidfdOpen']>; signal: NonNullable<PosixAddon['pidfdSignal']> } | null =
  native.pidfdOpen !== undefined && native.pidfdSignal !== undefined ? { open: native.pidfdOpen, signal: native.pidfdSignal } : null

function terminate(l: Location, pid: number, signal: NodeJS.Signals): boolean {
  return signalHolder(pid, signal, {
    open: openPidfd,
    holds: (p) => flockHeldBy(l.path, p),
    send: (fd, s) => signalPidfd(fd, pid, s),
    kill: (p, s) => process.kill(p, s),
    close: (fd) => native.close(fd),
  })
}

function openPidfd(pid: number): number | null {
  if (pidfds === null) return null
  try {
    return pidfds.open(pid)
  } catch (err) {
    // A seccomp filter refuses with ENOSYS or EPERM (pidfd_open itself has no
    // EPERM case).
    if (unsupported(err, true)) {
      pidfds = null
      return null
    }
    fromNative(err, String(pid))
  }
}

function signalPidfd(fd: number, pid: number, signal: NodeJS.Signals): void {
  // node:os only on this path: the guard's start-up would pay for it.
  const number = (require('node:os') as typeof import('node:os')).constants.signals[signal]
  try {
    // Set: `fd` came from pidfds.open, and only this call unsets it after that.
    pidfds!.signal(fd, number)
  } catch (err) {
    // pidfd_open allowed but pidfd_send_signal refused (a seccomp filter):
    // the holder was verified after the pidfd was opened, as it would have
    // been without one.
    if (unsupported(err, false)) {
      pidfds = null
      process.kill(pid, signal)
      return
    }
    fromNative(err, String(pid))
  }
}

// ENOSYS, and for pidfd_open EPERM.
function unsupported(err: unknown, eperm: boolean): boolean {
  const n = (err as { errno?: unknown }).errno
  const { ENOSYS, EPERM } = (require('node:os') as typeof import('node:os')).constants.errno
  return n === ENOSYS || (eperm && n === EPERM)
}

// The record is written in place (pwrite on the lock file), so a watch on
// the file sees every acquisition, update() and ready() of a writable holder.
function recordFile(l: Location): string {
  return l.path
}

export const posix: Backend<PosixHandle> = {
  locate,
  acquire,
  wait,
  release,
  update,
  lost,
  provesHolders: PROVES_HOLDERS,
  ...(PROVES_HOLDERS ? { processStart, heldBy: (l: Location, pid: number) => flockTaker(l.path) === pid || flockHeldBy(l.path, pid) } : {}),
  probe,
  enumerate,
  holders,
  taker,
  terminate,
  recordFile,
  descriptor: (h) => h.fd,
}
