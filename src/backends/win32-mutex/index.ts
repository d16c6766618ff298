import { readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { basename, dirname, join, resolve as resolvePath } from 'node:path'
import { getSystemErrorMap } from 'node:util'
import type { Win32Addon } from '../addon.js'
import type { Acquired, Backend, Found, Held, Location, Probe } from '../../core/backend.js'
import type { abortError as AbortErrorOf, systemError as SystemErrorOf, SystemError } from '../../core/errors.js'
import type { Lock } from '../../core/lock.js'
import type { recordedProcess as RecordedProcessOf, withProcessStart as WithProcessStartOf } from '../../core/record.js'
import type { Scope } from '../../api/types.js'
import type { createWaits as CreateWaitsOf, Waiter, Waits } from '../../core/waiter.js'

/**
 * Windows: one named mutex per lock, owned by the thread that acquired it
 * (see native/win32/common.h for the thread rules), and beside it a small
 * holder record file, which is information only: it is believed when the
 * process it names is alive with the creation time it recorded.
 *
 *   user     Local\instance-lock.<user SID>.<name>[@<key hash>][#<dir hash>]
 *            record: <LocalAppData>\instance-lock\<name>[@<key hash>].lock
 *   machine  Global\instance-lock.<name>[@<key hash>][#<dir hash>]
 *            record: <ProgramData>\instance-lock\<name>[@<key hash>].lock
 *
 * With `dir`, the directory (resolved, case-folded) becomes part of the
 * identity, so processes passing the same `dir` contend, and the records go
 * into it as `<name>[@<key hash>][+machine].lock`.
 */

interface WinLocation extends Location {
  machine: boolean
  /** Directory of the holder record. */
  dir: string
  custom: boolean
  /** The holder record. */
  file: string
}

/** Owned by the JS thread (`mutex`) or by a waiter thread (`waiter`). */
type WinHandle = { mutex: number; recovered: boolean } | { waiter: number; recovered: boolean }

const NAME_RE = /^([A-Za-z0-9_-][A-Za-z0-9._-]{0,63}?)(?:@([0-9a-f]{32}))?(\+machine)?\.lock$/

let sid: string | undefined
const folders = new Map<string, string>()

function knownFolder(which: 'LocalAppData' | 'ProgramData'): string {
  let p = folders.get(which)
  if (p === undefined) {
    try {
      p = native.knownFolder(which)
    } catch (err) {
      fromNative(err, which)
    }
    folders.set(which, p)
  }
  return p
}

export function scopeDir(scope: Scope): string {
  return join(knownFolder(scope === 'machine' ? 'ProgramData' : 'LocalAppData'), 'instance-lock')
}

// The same directory named two ways (relative, another case, through a
// junction or symlink) must give the same lock. The part that exists is
// resolved; the rest (not created yet) is taken as written. Read-only.
function canonicalDir(dir: string): string {
  let head = resolvePath(dir)
  const tail: string[] = []
  for (;;) {
    try {
      head = realpathSync.native(head)
      break
    } catch {
      const parent = dirname(head)
      if (parent === head) break
      tail.unshift(basename(head))
      head = parent
    }
  }
  return join(head, ...tail)
}

function locate(id: { name: string; key: string | undefined; keyHash: string | undefined; scope: Scope; dir: string | undefined }): WinLocation {
  const machine = id.scope === 'machine'
  const custom = id.dir !== undefined
  const dir = custom ? canonicalDir(id.dir!) : scopeDir(id.scope)
  const tag = `${id.name}${id.keyHash === undefined ? '' : '@' + id.keyHash}`
  // No backslash may follow the namespace prefix; the SID keeps another user
  // of this session from creating our name first.
  if (sid === undefined) {
    try {
      sid = native.userSid()
    } catch (err) {
      fromNative(err)
    }
  }
  const mutex = (machine ? 'Global\\instance-lock.' : `Local\\instance-lock.${sid}.`) + tag + (custom ? '#' + keyHash(dir.toLowerCase()) : '')
  const file = join(dir, `${tag}${custom && machine ? '+machine' : ''}.lock`)
  return { name: id.name, key: id.key, scope: id.scope, path: mutex, id: mutex, machine, dir, custom, file }
}

// ---------------------------------------------------------------------------
// Errors. The addon reports Win32 error numbers; callers switch on Node's
// codes, as they do with `fs`, so they are mapped here once.

const WIN_CODES: Record<number, string> = {
  2: 'ENOENT', // ERROR_FILE_NOT_FOUND
  3: 'ENOENT', // ERROR_PATH_NOT_FOUND
  5: 'EACCES', // ERROR_ACCESS_DENIED
  6: 'EINVAL', // ERROR_INVALID_HANDLE: the name is another kind of object
  8: 'ENOMEM', // ERROR_NOT_ENOUGH_MEMORY
  14: 'ENOMEM', // ERROR_OUTOFMEMORY
  19: 'EROFS', // ERROR_WRITE_PROTECT
  32: 'EBUSY', // ERROR_SHARING_VIOLATION
  33: 'EBUSY', // ERROR_LOCK_VIOLATION
  87: 'EINVAL', // ERROR_INVALID_PARAMETER
  112: 'ENOSPC', // ERROR_DISK_FULL
  123: 'EINVAL', // ERROR_INVALID_NAME
  127: 'ENOSYS', // ERROR_PROC_NOT_FOUND
  183: 'EEXIST', // ERROR_ALREADY_EXISTS
  206: 'ENAMETOOLONG', // ERROR_FILENAME_EXCED_RANGE
  1450: 'ENOMEM', // ERROR_NO_SYSTEM_RESOURCES
}

// Where libuv's text for the code would not say what happened.
const DETAILS: Record<number, string> = {
  6: 'the name belongs to another kind of kernel object, not a mutex',
  127: 'NtQueryMutant is not available',
}

let uvErrnos: Map<string, number> | undefined

/**
 * A Win32 error as a Node-style error (systemError in errors.ts): `code`,
 * `errno` (libuv's number for the code), `syscall`, `path`, worded as fs
 * words its errors.
 */
function winError(winerror: number, syscall: string, p?: string): SystemError {
  const code = WIN_CODES[winerror]
  return codedError(code ?? 'UNKNOWN', DETAILS[winerror] ?? (code === undefined ? `unknown error (Win32 error ${winerror})` : undefined), syscall, p)
}

function codedError(code: string, detail: string | undefined, syscall: string, p?: string): SystemError {
  if (uvErrnos === undefined) {
    uvErrnos = new Map()
    for (const [n, [name]] of getSystemErrorMap()) uvErrnos.set(name, n)
  }
  return systemError(uvErrnos.get(code)!, syscall, p, detail)
}

function fromNative(err: unknown, p?: string): never {
  const e = err as { errno?: unknown; syscall?: unknown }
  if (e !== null && typeof e === 'object' && typeof e.errno === 'number' && typeof e.syscall === 'string') {
    throw winError(e.errno, e.syscall, p)
  }
  throw err
}

// ---------------------------------------------------------------------------
// Holder records. Written to a new file and renamed over the old one, so a
// reader sees the previous record or the next, never a torn one. Carries the
// holder's process creation time: pids are reused at once on Windows, a
// (pid, creation time) pair never is.

const dirsReady = new Set<string>()
let ownStart: string | null | false | undefined
let tmpSeq = 0

function ensureDir(loc: WinLocation): void {
  if (dirsReady.has(loc.dir)) return
  try {
    if (loc.machine && !loc.custom) native.makeSharedDir(loc.dir)
    else makeDirs(loc.dir)
  } catch (err) {
    fromNativeOrFs(err, loc.dir)
  }
  dirsReady.add(loc.dir)
}

function fromNativeOrFs(err: unknown, p: string): never {
  if (typeof (err as NodeJS.ErrnoException).code === 'string') throw err
  fromNative(err, p)
}

function startTimeOf(pid: number): string | null | false {
  if (pid === process.pid) return (ownStart ??= native.processStartTime(pid))
  return native.processStartTime(pid)
}

/** The record with the creation time of the process it names. */
function stamped(record: string): string {
  const start = startTimeOf(recordedProcess(record)!.pid)
  return typeof start === 'string' ? withProcessStart(record, start) : record
}

// A scanner or a reader without FILE_SHARE_DELETE can hold the old record
// open for a moment; the rename then fails with EPERM/EBUSY. Retried briefly.
const RENAME_TRIES = 20
const pause = new Int32Array(new SharedArrayBuffer(4))

function writeRecord(loc: WinLocation, record: string): void {
  const tmp = `${loc.file}.${process.pid}.${++tmpSeq}.tmp`
  // 'wx': a new file of our own, never through something planted at its name.
  writeFileSync(tmp, stamped(record), { flag: 'wx' })
  for (let i = 0; ; i++) {
    try {
      renameSync(tmp, loc.file)
      return
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (i + 1 >= RENAME_TRIES || (code !== 'EPERM' && code !== 'EBUSY' && code !== 'EACCES')) {
        rmSync(tmp, { force: true })
        throw err
      }
      Atomics.wait(pause, 0, 0, 5)
    }
  }
}

function removeRecord(loc: WinLocation): void {
  for (let i = 0; i < RENAME_TRIES; i++) {
    try {
      rmSync(loc.file, { force: true })
      return
    } catch {
      Atomics.wait(pause, 0, 0, 5)
    }
  }
}

interface Stored {
  text: string
  pid: number
  start: string | undefined
}

function readRecord(loc: WinLocation): Stored | null {
  let text: string
  try {
    text = readFileSync(loc.file, 'utf8')
  } catch {
    return null
  }
  const r = recordedProcess(text)
  return r === null ? null : { text, ...r }
}

/**
 * The record, unless it is disproved: its process is gone or is another one
 * with a reused pid, or the kernel names a different owner. When the process
 * exists but may not be queried (another user's), it stands as information.
 */
function believable(loc: WinLocation, owner: number): string | null {
  const r = readRecord(loc)
  if (r === null || (owner > 0 && r.pid !== owner)) return null
  const start = startTimeOf(r.pid)
  if (start === null || (typeof start === 'string' && start !== r.start)) return null
  return r.text
}

// ---------------------------------------------------------------------------

function acquire(l: Location, record: string): WinHandle | Held {
  const loc = l as WinLocation
  ensureDir(loc)
  let r: [number, boolean] | null
  try {
    r = native.acquire(loc.path, loc.machine)
  } catch (err) {
    fromNative(err, loc.path)
  }
  if (r === null) return { held: true, record: believable(loc, 0) }
  try {
    writeRecord(loc, record)
  } catch {
    // The lock is what was asked for; a record that cannot be written only
    // leaves the holder anonymous, as on Unix.
  }
  return { mutex: r[0], recovered: r[1] }
}

function release(l: Location, h: WinHandle): void {
  const loc = l as WinLocation
  // Removed while still holding: a record left behind by a process that
  // let go and lives on would name it as holder of the next one's lock.
  removeRecord(loc)
  if ('waiter' in h) native.waitStop(h.waiter)
  else native.release(h.mutex)
}

function update(l: Location, _h: WinHandle, record: string): void {
  const loc = l as WinLocation
  try {
    writeRecord(loc, record)
  } catch (err) {
    fromNativeOrFs(err, loc.file)
  }
}

function probe(l: Location): Probe | null {
  const loc = l as WinLocation
  let r: [boolean, number] | null
  try {
    r = native.probe(loc.path)
  } catch (err) {
    fromNative(err, loc.path)
  }
  if (r === null) return null
  return { held: r[0], record: r[0] ? believable(loc, r[1]) : null }
}

function enumerate(scope: Scope, dir: string | undefined): Found[] {
  const base = locate({ name: 'x', key: undefined, keyHash: undefined, scope, dir })
  const out: Found[] = []
  for (const n of entriesOf(base.dir)) {
    const m = NAME_RE.exec(n)
    if (m === null) continue
    if ((m[3] !== undefined) !== (base.custom && scope === 'machine')) continue
    out.push({ location: locate({ name: m[1]!, key: undefined, keyHash: m[2], scope, dir }), keyHash: m[2] })
  }
  return out
}

// Verified holders and their creation times, for terminate(): the process
// ended is the one verified, never a later process that reused its pid.
const verified = new Map<number, string>()

function holders(l: Location): number[] {
  const loc = l as WinLocation
  let r: [boolean, number] | null
  try {
    r = native.probe(loc.path)
  } catch {
    return []
  }
  if (r === null || !r[0]) return []
  // Real Windows names the owner (MutantOwnerInformation); without it the
  // record must name a live process with the creation time it recorded. A
  // holder removes its record before it lets go, so a verified record is
  // not one left by a process that released and lives on.
  const owner = r[1]
  const rec = readRecord(loc)
  const pid = owner > 0 ? owner : rec?.pid
  if (pid === undefined) return []
  const start = startTimeOf(pid)
  if (typeof start !== 'string' || (owner === 0 && start !== rec?.start)) return []
  verified.set(pid, start)
  return [pid]
}

// A mutex cannot be passed on to another process: its one holder took it.
function taker(l: Location): number | undefined {
  return holders(l)[0]
}

// The process ended is the verified one (its creation time is checked
// through the handle that terminates it), so no other process with its pid.
function terminate(_loc: Location, pid: number): boolean {
  const start = verified.get(pid)
  if (start === undefined) return false
  try {
    return native.terminate(pid, start)
  } catch (err) {
    fromNative(err, String(pid))
  }
}

// ---------------------------------------------------------------------------
// Waiting (the queue, timeout, abort and keep-alive are src/core/waiter.ts's): a
// waiter thread for the head of a lock's queue (native/win32/waiter.cc), which
// wakes the moment the owner releases or dies and then keeps owning the
// mutex for this Lock. A mutex is recursive, so the JS thread never
// re-acquires a lock this process holds (that would succeed), nor tries one
// while waiting: the thread does.

interface WaitState {
  loc: WinLocation
  /** The waiter thread's id while it waits (not once it owns the mutex). */
  thread: number | undefined
}

type WinWaiter = Waiter<WaitState, WinHandle>

let waits: Waits<WaitState, WinHandle>

function openWaiter(w: WinWaiter, first: boolean): Acquired<WinHandle> | null {
  const { loc } = w.s
  if (first && !registry.has(loc.id)) {
    const at = Date.now()
    const r = acquire(loc, w.record(at))
    if (!('held' in r)) return { handle: r, at }
  }
  ensureDir(loc)
  return null
}

function startThread(w: WinWaiter): void {
  const { s } = w
  const { loc } = s
  let id: number
  try {
    id = native.waitStart(loc.path, loc.machine, (state: number, winerror: number) => {
      if (s.thread !== id) return // timed out or aborted while the report was on its way
      if (state === 2) return waits.failed(w, winError(winerror, 'WaitForMultipleObjects', loc.path))
      // The thread owns the mutex for the Lock now: it is stopped by release().
      s.thread = undefined
      const at = Date.now()
      try {
        writeRecord(loc, w.record(at))
      } catch {
        // as in acquire(): the lock stands without a record
      }
      waits.acquired(w, { handle: { waiter: id, recovered: state === 1 }, at })
    })
  } catch (err) {
    fromNative(err, loc.path)
  }
  s.thread = id
}

// Joins the thread: the mutex is not owned by it once this returns.
function stopThread(w: WinWaiter): void {
  if (w.s.thread === undefined) return
  native.waitStop(w.s.thread)
  w.s.thread = undefined
}

function wait(l: Location, record: (at: number) => string, timeout: number | undefined, signal: AbortSignal | undefined): Promise<Acquired<WinHandle> | Held> {
  const loc = l as WinLocation
  return waits.wait(loc.id, { loc, thread: undefined }, record, timeout, signal)
}

/**
 * What this backend takes from the rest of the library. It is its own file,
 * loaded only on Windows, so the Unix start-up never compiles it; the shared
 * parts (the addon, the registry of held locks, the record codec) are handed
 * over rather than bundled twice.
 */
interface Win32Deps {
  native: Win32Addon
  registry: Map<string, Lock>
  createWaits: typeof CreateWaitsOf
  abortError: typeof AbortErrorOf
  systemError: typeof SystemErrorOf
  keyHash: (canonical: string) => string
  entriesOf: (dir: string) => string[]
  makeDirs: (dir: string) => void
  withProcessStart: typeof WithProcessStartOf
  recordedProcess: typeof RecordedProcessOf
}

let native: Win32Addon
let registry: Map<string, Lock>
let abortError: typeof AbortErrorOf
let systemError: typeof SystemErrorOf
let keyHash: (canonical: string) => string
let entriesOf: (dir: string) => string[]
let makeDirs: (dir: string) => void
let withProcessStart: typeof WithProcessStartOf
let recordedProcess: typeof RecordedProcessOf

export function createWin32(deps: Win32Deps): Backend<WinHandle> {
  let createWaits: typeof CreateWaitsOf
  ;({ native, registry, createWaits, abortError, systemError, keyHash, entriesOf, makeDirs, withProcessStart, recordedProcess } = deps)
  waits = createWaits<WaitState, WinHandle>(
    { blocking: () => true, open: openWaiter, tryOnce: () => null, start: startThread, cancel: stopThread, readHolder: (w) => believable(w.s.loc, 0) },
    abortError,
  )
  return { locate, acquire, wait, release, update, provesHolders: true, probe, enumerate, holders, taker, terminate }
}
