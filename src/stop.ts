import { isHeld } from './backend.js'
import type { Location } from './backend.js'
import { LockedError, fromNative, invalidArgType, invalidArgValue } from './errors.js'
import { current } from './holder.js'
import { locateIdentity } from './locate.js'
import { Lock, lockedError, newLock, registry } from './lock.js'
import { backend } from './platform.js'
import { isoAt, makeRecord, parseRecord } from './record.js'
import type { Holder, StopOptions, StopResult } from './types.js'
import { checkIdentity, checkTimeout } from './validate.js'

export const DEFAULT_TIMEOUT = 10_000

// While the lock is waited for, who holds it is looked at again this often: a
// holder can pass its descriptor on (`instance-lock run` gives it to COMMAND,
// a shell to the program it starts), and then the lock outlives the process
// we signalled. The release itself is seen by the backend's waiter within
// milliseconds; this interval only bounds how late such an heir is found.
const RECHECK = 250

// A SIGKILLed process cannot delay its exit, but the kernel may need a moment
// to tear down a large one; this bounds the wait for one stuck in the kernel
// (uninterruptible sleep on a dead NFS server, say).
const KILL_WAIT = 5_000

/** How ending the current holder went. */
interface Ending {
  /**
   * `free`: nobody holds the lock now (or we took it: `handle`). `gone`: the
   * instance we signalled let go and another instance took the lock at once.
   * `held`: still held when time ran out. `unproven`: held, but no process
   * could be proven to hold it, so nothing was signalled.
   */
  state: 'free' | 'gone' | 'held' | 'unproven'
  /** The first verified holder that was signalled. */
  pid?: number
  /** SIGKILL was sent. */
  forced: boolean
  /** The holder's record as last read, when readable. */
  holder?: Holder
  /** `gone`: the process that took the lock after the instance let go. */
  successor?: number
  /** With `take`: the acquired lock's backend handle. */
  handle?: unknown
  acquiredAt?: Date
}

interface EndOptions {
  signal: NodeJS.Signals
  timeout: number
  force: boolean
  /** Keep the lock once it is free (replace), with this record data. */
  take?: { data: string | undefined }
}

/**
 * Asks the processes the kernel proves to hold the lock to exit, waits for the
 * lock (not merely the pid) to be free, and with `force` kills them after
 * `timeout`. A pid from the record is never signalled on its own word.
 */
export async function endHolder(loc: Location, opts: EndOptions): Promise<Ending> {
  const own = registry.get(loc.id)
  if (own !== undefined) throw lockedError(loc, own.holder)
  let acquiredAt = new Date()
  const record = (at: number): string => makeRecord(loc, opts.take?.data, isoAt(at))

  // Free now: a stop has nothing to do, a replace takes it. Otherwise the
  // holder's record as it is now.
  const look = (): { handle: unknown } | { record: string | null } | null => {
    if (opts.take !== undefined) {
      const now = Date.now()
      const r = backend.acquire(loc, record(now))
      if (!isHeld(r)) acquiredAt = new Date(now)
      return isHeld(r) ? { record: r.record } : { handle: r }
    }
    const p = backend.probe(loc)
    return p === null || !p.held ? null : { record: p.record }
  }
  // Who took the lock, read before the first look and again once its
  // holders are proven. If it changed in between, the lock changed hands
  // and the holders found are a newer instance than the one seen.
  const before = backend.taker(loc)
  let seen = look()
  if (seen === null) return { state: 'free', forced: false }
  if ('handle' in seen) return { state: 'free', forced: false, handle: seen.handle, acquiredAt }
  let holder = parseRecord(seen.record, loc)

  // Every pid signalled, to tell the instance we are ending from one that
  // takes the lock after it (see `gone`).
  const signalled = new Set<number>()
  let pid: number | undefined
  let forced = false
  let taken: unknown
  let successor: number | undefined
  let proven = others(backend.holders(loc))
  if (proven.length === 0) {
    // It may have been released between the two looks.
    seen = look()
    if (seen === null) return { state: 'free', forced: false }
    if ('handle' in seen) return { state: 'free', forced: false, handle: seen.handle, acquiredAt }
    holder = parseRecord(seen.record, loc) ?? holder
    proven = others(backend.holders(loc))
    if (proven.length === 0) return state('unproven')
  }
  const origin = backend.taker(loc)
  // A process that took the lock after the instance we came to end, and not
  // one we signalled (that instance taking it again): the instance is gone.
  // A process it passed the lock on to is not one: the taker stays the same.
  // Decided on the operating system's word, not the record's: a record read
  // a moment ago can still be the old instance's when a newcomer holds the
  // lock, and the newcomer must not be signalled for it.
  // This process counts when it holds the lock as a Lock: one of its own
  // waits, cancelled just as it got the lock, holds it for a moment too.
  const newcomer = (taker: number | undefined): boolean => taker !== undefined && taker !== origin && !signalled.has(taker) && (taker !== process.pid || registry.has(loc.id))
  if (before !== undefined && origin !== undefined && origin !== before) return gone(origin)

  const send = (pids: number[], signal: NodeJS.Signals, sentInPhase: Set<number>): void => {
    for (const p of pids) {
      if (sentInPhase.has(p)) continue
      // Exited or let go since it was proven to hold the lock: not signalled,
      // nor whatever process has its pid now.
      if (!backend.terminate(loc, p, signal)) continue
      sentInPhase.add(p)
      signalled.add(p)
      pid ??= p
    }
  }
  const waitFree = async (deadline: number, signal: NodeJS.Signals, sentInPhase: Set<number>): Promise<'free' | 'gone' | 'held'> => {
    for (;;) {
      const left = deadline - Date.now()
      let r: Awaited<ReturnType<typeof backend.wait>>
      try {
        r = await backend.wait(loc, record, Math.max(0, Math.min(RECHECK, left)), undefined)
      } catch (err) {
        fromNative(err, loc.path)
      }
      if (!isHeld(r)) {
        if (opts.take !== undefined) {
          taken = r.handle
          acquiredAt = new Date(r.at)
        } else backend.release(loc, r.handle) // `flock -w T file true`: free was all we wanted to know
        return 'free'
      }
      // The holders, then who took the lock: if that is still the instance
      // we came to end, so are the holders found before.
      const now = others(backend.holders(loc))
      const taker = backend.taker(loc)
      const h = parseRecord(r.record, loc)
      if (h !== undefined) holder = h
      if (newcomer(taker)) {
        successor = taker
        return 'gone'
      }
      if (left <= 0) return 'held'
      // Same instance, new holder: a process it handed the lock to.
      send(now, signal, sentInPhase)
    }
  }

  const term = new Set<number>()
  send(proven, opts.signal, term)
  let end = await waitFree(Date.now() + opts.timeout, opts.signal, term)
  if (end === 'held' && opts.force) {
    const kill = new Set<number>()
    send(others(backend.holders(loc)), 'SIGKILL', kill)
    end = await waitFree(Date.now() + Math.max(opts.timeout, KILL_WAIT), 'SIGKILL', kill)
    // Only a SIGKILL sent counts: a holder gone before its signal got none.
    forced = kill.size > 0
  }
  if (taken !== undefined) return { ...state('free'), handle: taken, acquiredAt }
  // Held still, and not one holder could be signalled: each let go or
  // exited before its signal, and whoever holds the lock now is unproven.
  return end === 'gone' ? gone(successor!) : state(end === 'held' && pid === undefined ? 'unproven' : end)

  function state(s: Ending['state']): Ending {
    const e: Ending = { state: s, forced }
    if (pid !== undefined) e.pid = pid
    if (holder !== undefined) e.holder = holder
    return e
  }

  // The newcomer's own record, once it has written one.
  function gone(taker: number): Ending {
    const e: Ending = { state: 'gone', forced, successor: taker }
    if (pid !== undefined) e.pid = pid
    const p = backend.probe(loc)
    const h = p?.held === true ? parseRecord(p.record, loc) : undefined
    if (h?.pid === taker) e.holder = h
    return e
  }
}

// This process is never signalled: its own locks are refused up front, and a
// lock it is taking for a moment (stop's wait) is not a reason to exit.
function others(pids: number[]): number[] {
  return pids.filter((p) => p !== process.pid)
}

function checkStopSignal(signal: unknown): NodeJS.Signals {
  if (signal === undefined) return 'SIGTERM'
  if (typeof signal !== 'string') throw invalidArgType('signal', "a signal name such as 'SIGTERM'", signal)
  // node:os only here, where a signal is named: the guard's start-up would pay for it.
  if (!Object.hasOwn((require('node:os') as typeof import('node:os')).constants.signals, signal)) {
    throw invalidArgValue('signal', `expected a signal name such as 'SIGTERM' or 'SIGINT', got ${JSON.stringify(signal.slice(0, 40))}`)
  }
  return signal as NodeJS.Signals
}

function checkForce(force: unknown): boolean {
  if (force === undefined) return false
  if (typeof force !== 'boolean') throw invalidArgType('force', 'a boolean', force)
  return force
}

/** The options of `stop()`, checked before anything is touched. */
function checkStopOptions(o: Record<string, unknown>): Omit<EndOptions, 'take'> {
  return {
    signal: checkStopSignal(o.signal),
    timeout: checkTimeout(o.timeout) ?? DEFAULT_TIMEOUT,
    force: checkForce(o.force),
  }
}

/**
 * Stops the instance that holds the lock: sends `signal` (default `SIGTERM`;
 * on Windows the process is terminated) to the process the operating system
 * proves to hold it right now, never to a pid read from a file, and waits up
 * to `timeout` ms (default 10000) until the lock is free. With `force`, kills
 * it (`SIGKILL`) after that and waits again. Resolves `{ stopped: true,
 * forced: false }` without a pid when nothing held it (or its holder exited
 * on its own before it could be signalled), and `{ stopped: false }`
 * when it is still held, or held by a process that could not be verified
 * (nothing was signalled then). A lock this process holds is refused with
 * `LockedError`: release it instead.
 *
 * @example
 * const { stopped, pid } = await stop('web', { timeout: 5000, force: true })
 */
export async function stop(name: string, options?: StopOptions): Promise<StopResult> {
  const id = checkIdentity(name, options)
  const opts = checkStopOptions(id.options)
  const e = await endHolder(locateIdentity(id), opts)
  const r: StopResult = { stopped: e.state === 'free' || e.state === 'gone', forced: e.forced }
  if (e.pid !== undefined) r.pid = e.pid
  return r
}

/**
 * `singleInstance(name, { onLocked: 'replace' })`: ends the running instance
 * as `stop({ force: true })` does and takes the lock. The lock is taken by
 * the waiter that saw it free, so of two replacers racing only one gets it;
 * the other finds a new instance holding it and rejects with `LockedError`
 * rather than ending the instance that just replaced the old one.
 */
export async function replaceHolder(loc: Location, data: string | undefined, timeout: number): Promise<Lock> {
  const e = await endHolder(loc, { signal: 'SIGTERM', timeout, force: true, take: { data } })
  if (e.handle !== undefined) {
    const recovered = (e.handle as { recovered?: boolean }).recovered === true
    return newLock(backend, loc, e.handle, e.acquiredAt!, data, recovered)
  }
  const err = lockedError(loc, current(loc, e.holder))
  if (e.state !== 'unproven') throw err
  throw new LockedError(`${err.message}; no process could be verified as its holder, so none was signalled`, e.holder)
}
