import { isHeld } from '../core/backend.js'
import type { Location } from '../core/backend.js'
import { LockedError, fromNative, invalidArgType, invalidArgValue } from '../core/errors.js'
import { current } from '../core/holder.js'
import { locateIdentity } from '../core/locate.js'
import { Lock, lockedError, newLock, registry } from '../core/lock.js'
import { backend } from '../backends/index.js'
import { local } from './holding.js'
import { hostName } from '../core/speed.js'
import { makeRecord, parseRecord } from '../core/record.js'
import { begin, next } from '../core/stopping.js'
import type { Observation, Outcome, Sighting, Step } from '../core/stopping.js'
import type { StopOptions, StopResult } from './types.js'
import { checkIdentity, checkTimeout } from './validate.js'

/** `stop()`'s and `onLocked: 'replace'`'s documented default `timeout`, which the command line's help and report name. */
export const DEFAULT_TIMEOUT = 10_000

/** How ending the current holder went, and the lock a replace took. */
export interface Ending extends Outcome {
  /** With `take`: the acquired lock's backend handle. */
  handle?: unknown
  acquiredAt?: Date
}

export interface EndOptions {
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
 * Whom to signal and when is decided in src/core/stopping.ts; this carries out
 * its steps. Only `wait` yields to the event loop: each other step is done
 * and decided on within one turn, as one look at the lock.
 */
export async function endHolder(loc: Location, opts: EndOptions): Promise<Ending> {
  const own = registry.get(loc.id)
  if (own !== undefined) throw lockedError(loc, own.holder)
  const record = (at: number): string => makeRecord(hostName(), loc, opts.take?.data, at)
  let taken: { handle: unknown; acquiredAt: Date } | undefined

  const held = (text: string | null): Sighting => ({ free: false, holder: parseRecord(text, loc) })
  const read = (): Sighting => {
    const p = backend.probe(loc)
    return p === null || !p.held ? { free: true } : held(p.record)
  }
  const look = (): Sighting => {
    if (opts.take === undefined) return read()
    const now = Date.now()
    const r = backend.acquire(loc, record(now))
    if (isHeld(r)) return held(r.record)
    taken = { handle: r, acquiredAt: new Date(now) }
    return { free: true }
  }
  const wait = async (ms: number): Promise<Sighting> => {
    let r: Awaited<ReturnType<typeof backend.wait>>
    try {
      r = await backend.wait(loc, record, ms, undefined)
    } catch (err) {
      fromNative(err, loc.path)
    }
    if (isHeld(r)) return held(r.record)
    if (opts.take !== undefined) taken = { handle: r.handle, acquiredAt: new Date(r.at) }
    else backend.release(loc, r.handle) // `flock -w T file true`: free was all we wanted to know
    return { free: true }
  }
  const act = (step: Exclude<Step, { do: 'wait' | 'end' }>): Observation => {
    switch (step.do) {
      case 'taker':
        return { taker: backend.taker(loc), ours: registry.has(loc.id) }
      case 'look':
        return look()
      case 'holders':
        return { holders: backend.holders(loc) }
      case 'signal':
        // Exited or let go since it was proven to hold the lock: not
        // signalled, nor whatever process has its pid now.
        return { reached: step.pids.filter((p) => backend.terminate(loc, p, step.signal)) }
      case 'read':
        return read()
    }
  }

  let { state, step } = begin({ signal: opts.signal, timeout: opts.timeout, force: opts.force, self: process.pid })
  while (step.do !== 'end') ({ state, step } = next(state, step.do === 'wait' ? await wait(step.ms) : act(step), Date.now()))
  return taken === undefined ? step.outcome : { ...step.outcome, ...taken }
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
export function checkStopOptions(o: Record<string, unknown>): Omit<EndOptions, 'take'> {
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
 * (nothing was signalled then; `unverified` says why). `holder` is the
 * record last read, and `successor` the instance that took the lock as soon
 * as the one stopped let go. A lock this process holds is refused with
 * `LockedError`: release it instead.
 *
 * @example
 * const { stopped, pid } = await stop('web', { timeout: 5000, force: true })
 */
export async function stop(name: string, options?: StopOptions): Promise<StopResult> {
  const id = checkIdentity(name, options)
  const opts = checkStopOptions(id.options)
  return stopResult(await endHolder(locateIdentity(id), opts))
}

/** What a stop concluded, as `StopResult` tells it: all the command line's report needs. */
function stopResult(e: Outcome): StopResult {
  const r: StopResult = { stopped: e.state === 'free' || e.state === 'gone', forced: e.forced }
  if (e.pid !== undefined) r.pid = e.pid
  if (e.holder !== undefined) r.holder = e.holder
  if (e.successor !== undefined) r.successor = e.successor
  // Whether this system can prove a holder at all is said here, with the one
  // result it explains, rather than as a constant of its own: a user of
  // stop() (and the command line) needs it only to tell why nobody was
  // signalled, and to know whether doing it as another user could help.
  if (e.state === 'unproven') r.unverified = backend.provesHolders ? 'unseen' : 'unsupported'
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
    return newLock(local, loc, e.handle, e.acquiredAt!, data, recovered)
  }
  const err = lockedError(loc, current(loc, e.holder))
  if (e.state !== 'unproven') throw err
  throw new LockedError(`${err.message}; no process could be verified as its holder, so none was signalled`, e.holder)
}
