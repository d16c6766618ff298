import { closeSync, lstatSync, openSync, readSync, readdirSync } from 'node:fs'
import type { BigIntStats } from 'node:fs'

/**
 * Linux: who holds a flock on a file, as the kernel says — never a pid read
 * from a file (pids are reused; a record left by a crashed holder names a
 * dead or unrelated process).
 *
 * /proc/locks names the process that *took* each flock, which can be dead
 * while the lock lives on in a descriptor it passed to a child (`run`'s
 * COMMAND). /proc/<pid>/fdinfo/<fd> lists the locks owned by that open file
 * description, so a process proves it holds the lock when one of its
 * descriptors shows a FLOCK WRITE lock on our device and inode. Candidates
 * from /proc/locks are checked first; if none proves out, every process we
 * may look at is scanned. (/proc/locks is filtered by pid namespace: a holder
 * in another container is not found, and not signalled.)
 */
export function flockHolders(path: string): number[] {
  const needle = needleOf(path)
  if (needle === undefined) return []
  const proven = candidates(needle).filter((pid) => holdsLock(pid, needle))
  if (proven.length > 0) return proven
  const all: number[] = []
  let entries: string[]
  try {
    entries = readdirSync('/proc')
  } catch {
    return []
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue
    const pid = Number(e)
    if (holdsLock(pid, needle)) all.push(pid)
  }
  return all
}

/**
 * Linux: the process that took the flock on a file, as /proc/locks records
 * it. A descriptor passed on (to `run`'s COMMAND, to a shell's child) keeps
 * the lock under the pid of the process that took it, even after that
 * process has exited, so only a new acquisition changes it. Undefined when
 * the file is not locked, or when its taker has exited and is outside this
 * PID namespace (the kernel then leaves the lock out).
 */
export function flockTaker(path: string): number | undefined {
  const needle = needleOf(path)
  return needle === undefined ? undefined : candidates(needle)[0]
}

/**
 * Linux: does `pid` hold the flock on the file right now? The proof
 * flockHolders asks of each process, asked again of one.
 */
export function flockHeldBy(path: string, pid: number): boolean {
  const needle = needleOf(path)
  return needle !== undefined && holdsLock(pid, needle)
}

// How /proc/locks and fdinfo name the file: "MAJOR:MINOR:INODE".
function needleOf(path: string): string | undefined {
  let st: BigIntStats
  try {
    st = lstatSync(path, { bigint: true })
  } catch {
    return undefined
  }
  return `${devString(st.dev)}:${st.ino}`
}

// The kernel prints a dev_t as "%02x:%02x" of MAJOR:MINOR (new encoding).
function devString(dev: bigint): string {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn)
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn)
  return `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}`
}

function candidates(needle: string): number[] {
  let text: string
  try {
    text = readProc('/proc/locks')
  } catch {
    return []
  }
  const out: number[] = []
  for (const line of text.split('\n')) {
    // "1: FLOCK  ADVISORY  WRITE 1234 00:1a:5678 0 EOF"; "->" lines are waiters.
    const f = line.trim().split(/\s+/)
    if (f[1] !== 'FLOCK' || f[3] !== 'WRITE' || f[5] !== needle) continue
    const pid = Number(f[4])
    if (pid > 0 && !out.includes(pid)) out.push(pid)
  }
  return out
}

function holdsLock(pid: number, needle: string): boolean {
  let fds: string[]
  try {
    fds = readdirSync(`/proc/${pid}/fdinfo`)
  } catch {
    return false
  }
  for (const fd of fds) {
    let info: string
    try {
      info = readProc(`/proc/${pid}/fdinfo/${fd}`)
    } catch {
      continue
    }
    for (const line of info.split('\n')) {
      if (!line.startsWith('lock:')) continue
      const f = line.slice(5).trim().split(/\s+/)
      if (f[1] === 'FLOCK' && f[3] === 'WRITE' && f[5] === needle) return true
    }
  }
  return false
}

// The wall-clock time the system booted, in ms: /proc/<pid>/stat counts a
// process's start in clock ticks since boot.
let bootMs: number | undefined

/**
 * Linux: when process `pid` started, in ms since the epoch as the wall clock
 * reads now (to the clock tick; a step of the clock since boot shifts it),
 * or undefined when it is gone or cannot be read.
 */
export function processStart(pid: number): number | undefined {
  let stat: string
  try {
    if (bootMs === undefined) bootMs = Date.now() - Number.parseFloat(readProc('/proc/uptime')) * 1000
    stat = readProc(`/proc/${pid}/stat`)
  } catch {
    return undefined
  }
  // "pid (comm) state ppid ... starttime ...": comm may hold spaces and
  // parentheses, so fields are counted from its last ')'; starttime is the
  // 22nd field, in USER_HZ ticks (100 a second on every Linux ABI).
  const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19])
  return Number.isFinite(ticks) && Number.isFinite(bootMs) ? bootMs + ticks * 10 : undefined
}

let buffer = Buffer.allocUnsafe(16 * 1024)

/**
 * A file of /proc, whole, as text (ASCII): open, read, close, into one
 * buffer kept for the next. readFileSync costs more than twice as much
 * (it sizes the file with fstat first, which /proc reports as empty): a
 * message's sender reads /proc/locks once per message. Throws as open and
 * read do.
 */
function readProc(path: string): string {
  const fd = openSync(path, 'r')
  try {
    let n = 0
    for (;;) {
      if (n === buffer.length) {
        const bigger = Buffer.allocUnsafe(buffer.length * 2)
        buffer.copy(bigger, 0, 0, n)
        buffer = bigger
      }
      const got = readSync(fd, buffer, n, buffer.length - n, null)
      if (got === 0) return buffer.toString('latin1', 0, n)
      n += got
    }
  } finally {
    closeSync(fd)
  }
}
