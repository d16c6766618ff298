/**
 * Whom a stop signals, when it escalates, and what it concludes, decided
 * without touching anything: a state machine fed what the operating system
 * was seen to say, one step at a time. src/api/stop.ts carries out its steps
 * (the backend's taker, holders, terminate, wait) and reports back.
 *
 * A stop sees the lock in snapshots, and between two of them the holder can
 * exit, pass its descriptor on, or let go while another instance takes the
 * lock. Every decision below is taken on the kernel's word at the latest
 * snapshot, never on a pid read from the holder's record.
 */
import type { Holder } from '../api/types.js'

// While the lock is waited for, who holds it is looked at again this often: a
// holder can pass its descriptor on (`instance-lock run` gives it to COMMAND,
// a shell to the program it starts), and then the lock outlives the process
// we signalled. The release itself is seen by the backend's waiter within
// milliseconds; this interval only bounds how late such an heir is found.
export const RECHECK = 250

// A SIGKILLed process cannot delay its exit, but the kernel may need a moment
// to tear down a large one; this bounds the wait for one stuck in the kernel
// (uninterruptible sleep on a dead NFS server, say).
export const KILL_WAIT = 5_000

/** What a stop was asked to do. */
export interface Plan {
  signal: NodeJS.Signals
  timeout: number
  force: boolean
  /**
   * This process, never signalled: its own locks are refused up front, and a
   * lock it is taking for a moment (stop's wait) is not a reason to exit.
   */
  self: number
}

/** How ending the current holder went. */
export interface Outcome {
  /**
   * `free`: nobody holds the lock now (or a replace took it). `gone`: the
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
}

/**
 * What is to be done next, and the observation it is answered with:
 * - `taker`: who took the lock, as the operating system records it →
 *   `{ taker, ours }`, `ours` when this process holds the lock as a Lock;
 * - `look`: is it free now (a replace takes it)? → a Sighting;
 * - `holders`: the pids proven to hold it now, each once → `{ holders }`;
 * - `signal`: each pid in turn, if it still holds the lock → `{ reached }`,
 *   the pids signalled (not those that had let go or exited);
 * - `wait`: up to `ms` for the lock to be free (a replace keeps it, a stop
 *   lets go at once) → a Sighting;
 * - `read`: the record of whoever holds it now, taking nothing → a Sighting;
 * - `end`: done.
 */
export type Step =
  | { do: 'taker' }
  | { do: 'look' }
  | { do: 'holders' }
  | { do: 'signal'; pids: number[]; signal: NodeJS.Signals }
  | { do: 'wait'; ms: number }
  | { do: 'read' }
  | { do: 'end'; outcome: Outcome }

/** Free, or held, with the holder's record when it could be read. */
export type Sighting = { free: true } | { free: false; holder: Holder | undefined }

export type Observation = Sighting | { taker: number | undefined; ours: boolean } | { holders: number[] } | { reached: number[] }

/** A stop between two steps: everything it has seen that still matters. */
export interface Stopping {
  readonly plan: Plan
  /** The step taken, whose observation comes next. */
  readonly at: 'before' | 'look' | 'proof' | 'origin' | 'signal' | 'wait' | 'heirs' | 'taker' | 'kill' | 'successor'
  /** The first look saw it held and no holder could be proven: this is the second. */
  readonly again: boolean
  /** Who took the lock before the first look. */
  readonly before: number | undefined
  /** Who took it once its holders were proven: the instance being ended. */
  readonly origin: number | undefined
  /** The holder's record as last read, when readable. */
  readonly holder: Holder | undefined
  /** The holders last proven, to be signalled once `taker` has vouched for them. */
  readonly proven: readonly number[]
  /** Every pid signalled, in order; the first is the one reported. */
  readonly signalled: readonly number[]
  /** A SIGKILL reached a holder. */
  readonly forced: boolean
  readonly phase: Phase
  /** `gone`: who took the lock. */
  readonly successor: number | undefined
}

/** One signal, which reaches each holder at most once, and the wait that follows it. */
export interface Phase {
  readonly signal: NodeJS.Signals
  readonly kill: boolean
  /** How long the lock is waited for once the first signals are sent. */
  readonly length: number
  /** The pids this phase's signal reached: not signalled again in it. */
  readonly sent: readonly number[]
  /** Set once the first signals are sent (or none were to be). */
  readonly deadline: number | undefined
  /** The wait under way began past the deadline: the phase ends with it. */
  readonly last: boolean
}

export interface Next {
  state: Stopping
  step: Step
}

/** The first step: who took the lock, before it is looked at. */
export function begin(plan: Plan): Next {
  const state: Stopping = {
    plan,
    at: 'before',
    again: false,
    before: undefined,
    origin: undefined,
    holder: undefined,
    proven: [],
    signalled: [],
    forced: false,
    phase: { signal: plan.signal, kill: false, length: plan.timeout, sent: [], deadline: undefined, last: false },
    successor: undefined,
  }
  return { state, step: { do: 'taker' } }
}

/** The step after `s`, given what its step observed, at `now` (ms since the epoch). */
export function next(s: Stopping, o: Observation, now: number): Next {
  switch (s.at) {
    case 'before':
      // Who took the lock, read before the first look and again once its
      // holders are proven. If it changed in between, the lock changed hands
      // and the holders found are a newer instance than the one seen.
      return go({ ...s, at: 'look', before: taker(o).taker }, { do: 'look' })

    case 'look': {
      const seen = sighting(o)
      // Free now: a stop has nothing to do, a replace took it.
      if (seen.free) return end(s, { state: 'free', forced: false })
      return go({ ...s, at: 'proof', holder: s.again ? (seen.holder ?? s.holder) : seen.holder }, { do: 'holders' })
    }

    case 'proof': {
      const proven = others(s, o)
      if (proven.length > 0) return go({ ...s, at: 'origin', proven }, { do: 'taker' })
      // It may have been released between the two looks.
      if (!s.again) return go({ ...s, at: 'look', again: true }, { do: 'look' })
      return end(s, outcome(s, 'unproven'))
    }

    case 'origin': {
      const origin = taker(o).taker
      if (s.before !== undefined && origin !== undefined && origin !== s.before) return succeededBy({ ...s, origin }, origin)
      return send({ ...s, origin }, s.proven, now)
    }

    case 'signal': {
      const { reached } = field(o, 'reached')
      const phase = s.phase
      return wait(
        {
          ...s,
          signalled: [...s.signalled, ...reached.filter((p) => !s.signalled.includes(p))],
          // Only a SIGKILL sent counts: a holder gone before its signal got none.
          forced: s.forced || (phase.kill && reached.length > 0),
          phase: { ...phase, sent: [...phase.sent, ...reached], deadline: phase.deadline ?? now + phase.length },
        },
        now,
      )
    }

    case 'wait': {
      const seen = sighting(o)
      if (seen.free) return end(s, outcome(s, 'free'))
      // Held still: the holders, then who took the lock. If that is still the
      // instance we came to end, so are the holders found before.
      return go({ ...s, at: 'heirs', holder: seen.holder ?? s.holder }, { do: 'holders' })
    }

    case 'heirs':
      return go({ ...s, at: 'taker', proven: others(s, o) }, { do: 'taker' })

    case 'taker': {
      const t = taker(o)
      if (newcomer(s, t.taker, t.ours)) return succeededBy(s, t.taker!)
      // Same instance, new holder: a process it handed the lock to.
      if (!s.phase.last) return send(s, s.proven, now)
      // Time is up. With force, whoever holds the lock then is killed, and
      // the lock waited for again.
      if (s.plan.force && !s.phase.kill) {
        const phase: Phase = { signal: 'SIGKILL', kill: true, length: Math.max(s.plan.timeout, KILL_WAIT), sent: [], deadline: undefined, last: false }
        return go({ ...s, at: 'kill', phase }, { do: 'holders' })
      }
      // Held still, and not one holder could be signalled: each let go or
      // exited before its signal, and whoever holds the lock now is unproven.
      return end(s, outcome(s, s.signalled.length === 0 ? 'unproven' : 'held'))
    }

    case 'kill':
      return send(s, others(s, o), now)

    case 'successor': {
      // The newcomer's own record, once it has written one.
      const seen = sighting(o)
      const e: Outcome = { state: 'gone', forced: s.forced, successor: s.successor! }
      if (s.signalled.length > 0) e.pid = s.signalled[0]!
      if (!seen.free && seen.holder !== undefined && seen.holder.pid === s.successor) e.holder = seen.holder
      return end(s, e)
    }
  }
}

// Signals the pids not yet sent this phase's signal; with none, the wait goes on.
function send(s: Stopping, pids: readonly number[], now: number): Next {
  const fresh = pids.filter((p) => !s.phase.sent.includes(p))
  if (fresh.length > 0) return go({ ...s, at: 'signal' }, { do: 'signal', pids: fresh, signal: s.phase.signal })
  return wait({ ...s, phase: { ...s.phase, deadline: s.phase.deadline ?? now + s.phase.length } }, now)
}

function wait(s: Stopping, now: number): Next {
  const left = s.phase.deadline! - now
  return go({ ...s, at: 'wait', phase: { ...s.phase, last: left <= 0 } }, { do: 'wait', ms: Math.max(0, Math.min(RECHECK, left)) })
}

/**
 * A process that took the lock after the instance we came to end, and not
 * one we signalled (that instance taking it again): the instance is gone. A
 * process it passed the lock on to is not one: the taker stays the same.
 * Decided on the operating system's word, not the record's: a record read a
 * moment ago can still be the old instance's when a newcomer holds the lock,
 * and the newcomer must not be signalled for it. This process counts when it
 * holds the lock as a Lock: one of its own waits, cancelled just as it got
 * the lock, holds it for a moment too.
 */
function newcomer(s: Stopping, taker: number | undefined, ours: boolean): boolean {
  return taker !== undefined && taker !== s.origin && !s.signalled.includes(taker) && (taker !== s.plan.self || ours)
}

function succeededBy(s: Stopping, taker: number): Next {
  return go({ ...s, at: 'successor', successor: taker }, { do: 'read' })
}

function outcome(s: Stopping, state: Outcome['state']): Outcome {
  const e: Outcome = { state, forced: s.forced }
  if (s.signalled.length > 0) e.pid = s.signalled[0]!
  if (s.holder !== undefined) e.holder = s.holder
  return e
}

function others(s: Stopping, o: Observation): number[] {
  return field(o, 'holders').holders.filter((p) => p !== s.plan.self)
}

function go(state: Stopping, step: Step): Next {
  return { state, step }
}

function end(s: Stopping, outcome: Outcome): Next {
  return { state: s, step: { do: 'end', outcome } }
}

function taker(o: Observation): { taker: number | undefined; ours: boolean } {
  return field(o, 'taker')
}

function sighting(o: Observation): Sighting {
  return field(o, 'free')
}

// An observation that does not answer the step taken is the driver's mistake.
function field<K extends 'taker' | 'free' | 'holders' | 'reached'>(o: Observation, k: K): Extract<Observation, Record<K, unknown>> {
  if (!(k in o)) throw new Error(`a stop expected an observation with '${k}', got ${JSON.stringify(o)}`)
  return o as Extract<Observation, Record<K, unknown>>
}
