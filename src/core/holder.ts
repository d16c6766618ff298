import type { Location } from './backend.js'
import { backend } from '../backends/index.js'
import { hostName } from './speed.js'
import type { Holder } from '../api/types.js'

// Only Linux shows who holds a flock (the backend's provesHolders and
// processStart). Windows
// needs nothing: a mutex cannot be handed to another process, so its holder
// wrote the record.

// How long an answer stands before its process is checked to be the same
// one (its start time read again), so that a pid that died and was reused
// meanwhile is noticed. Whether it is alive is asked every time.
const RECHECK = 1000

// How much later than the record's startedAt its process may seem to have
// started (clock ticks, the boot time's rounding) and still be its writer.
const SLACK = 1000

interface Answer {
  path: string
  recordPid: number
  startedAt: string
  /** The holder's pid, and when that process started (ms, undefined if unreadable). */
  pid: number
  start: number | undefined
  /** No process could be proven to hold the lock (or the record is another host's): `pid` is the record's. */
  unproven: boolean
  /** Until when `start` need not be read again. */
  until: number
}

// The last answer: failed tries against one holder ask the same question.
let last: Answer | undefined

/**
 * The holder with the pid of the process that holds the lock now, as the
 * kernel shows it (Linux). The record says who took the lock, but the
 * descriptor can outlive that process: `instance-lock run`'s COMMAND, or a
 * daemon it starts, inherits it. The record's pid is trusted while that
 * process lives and started before the record was written (so the pid was
 * not reused); otherwise the process proven to hold the lock is named, and
 * the record's pid kept as `recordedPid`. When none can be proven (another
 * user's process, another PID namespace) the record's pid stays.
 * `holder` is changed in place: it comes fresh from parseRecord. `now`:
 * Date.now(), when the caller has it.
 */
export function current(loc: Location, holder: Holder | undefined, now = Date.now()): Holder | undefined {
  if (!backend.provesHolders || backend.processStart === undefined || holder === undefined) return holder
  let a = last
  if (a === undefined || a.path !== loc.path || a.recordPid !== holder.pid || a.startedAt !== holder.startedAt || !stands(a, now)) {
    a = answer(loc, holder, now)
    last = a
  }
  if (a.pid !== holder.pid) {
    holder.recordedPid = holder.pid
    holder.pid = a.pid
  }
  return holder
}

/** Is `a` still true: its process alive, and the same process as when it was found? */
function stands(a: Answer, now: number): boolean {
  if (a.unproven) return now < a.until
  if (!alive(a.pid)) return false
  if (now < a.until) return true
  if (backend.processStart!(a.pid) !== a.start) return false
  a.until = now + RECHECK
  return true
}

function answer(loc: Location, holder: Holder, now: number): Answer {
  const a: Answer = { path: loc.path, recordPid: holder.pid, startedAt: holder.startedAt, pid: holder.pid, start: undefined, unproven: false, until: now + RECHECK }
  // A record from another host (a lock directory both share) names a pid of that host.
  if (holder.hostname !== hostName()) {
    a.unproven = true
    return a
  }
  if (alive(holder.pid)) {
    a.start = backend.processStart!(holder.pid)
    if (a.start !== undefined && !(a.start > Date.parse(holder.startedAt) + SLACK)) return a
  }
  const proven = backend.holders(loc)
  if (proven.length === 0) a.unproven = true
  else {
    a.pid = proven[0]!
    a.start = backend.processStart!(a.pid)
  }
  return a
}

/** The process exists, ours or another user's. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
