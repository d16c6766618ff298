import type { Acquired, Held } from './backend.js'

/**
 * Waiting for a lock, the policy both backends share: waiters of one process
 * queue per lock in FIFO order and only the head waits; a timeout settles
 * as held, with the holder's record, after the head's last try; an AbortSignal rejects with an
 * AbortError; a pending wait keeps the process alive as a timer does and a
 * settled one leaves nothing behind. A backend plugs in only its blocking
 * primitive (a `Primitive`).
 */

/** One pending wait: the backend's state `s`, and the queue's bookkeeping. */
export interface Waiter<S, H> {
  /** The lock's registry id: the waiters of one lock queue together. */
  readonly id: string
  /** The record to write for an acquisition at `at` ms since the epoch. */
  readonly record: (at: number) => string
  /** What the backend keeps for this wait (a descriptor, a thread's id). */
  readonly s: S
  /** In the backend's blocking wait, which ends with `acquired`, `retry` or `failed`. */
  blocked: boolean
  /** Tried just now and found held: block at once. */
  tried: boolean
  timer: NodeJS.Timeout | undefined
  signal: AbortSignal | undefined
  onAbort: (() => void) | undefined
  resolve: (v: Acquired<H> | Held) => void
  reject: (e: unknown) => void
}

/** A backend's way to wait for a lock. Errors it throws name the lock. */
export interface Primitive<S, H> {
  /**
   * Whether waits block in the kernel (then `start` is used), or the head is
   * tried every POLL_INTERVAL instead. Asked as each wait begins.
   */
  blocking(): boolean
  /**
   * Readies `w` to wait. `first`: nobody of ours waits for the lock, so try
   * once now, as tryLock does: acquired, or null when held (and `w` then
   * waits at once). Not first: only ready, null.
   */
  open(w: Waiter<S, H>, first: boolean): Acquired<H> | null
  /** One try by the queue's head: acquired, or null while held. */
  tryOnce(w: Waiter<S, H>): Acquired<H> | null
  /** Begins a blocking wait, which ends with `acquired`, `retry` or `failed`. */
  start(w: Waiter<S, H>): void
  /**
   * Synchronous: ends the blocking wait, if any, and when it returns nothing
   * of the wait is held (a lock its wait took just now is let go).
   */
  cancel(w: Waiter<S, H>): void
  /** The holder's record as it is now, for a wait that timed out. */
  readHolder(w: Waiter<S, H>): string | null
  /**
   * Whether a blocked head still waits on the lock itself (every
   * CHECK_INTERVAL); if not, it is cancelled, opened again, and waits anew.
   * Absent where a blocking wait cannot be misled.
   */
  stillWaits?(w: Waiter<S, H>): boolean
}

export interface Waits<S, H> {
  /** Backend.wait: `s` is the new wait's own state. */
  wait(id: string, s: S, record: (at: number) => string, timeout: number | undefined, signal: AbortSignal | undefined): Promise<Acquired<H> | Held>
  /** The head's blocking wait took the lock. */
  acquired(w: Waiter<S, H>, r: Acquired<H>): void
  /** The head's blocking wait ended without the lock (what it waited on went stale): it tries again. */
  retry(w: Waiter<S, H>): void
  /** The head's blocking wait failed. */
  failed(w: Waiter<S, H>, err: unknown): void
  /** A lock of this process was released: where waits do not block, its waiters learn at once. */
  released(id: string): void
}

// With blocking waits, how often each head's wait is checked (stillWaits);
// without, how often the heads try again.
const CHECK_INTERVAL = 250
const POLL_INTERVAL = 10

export function createWaits<S, H>(p: Primitive<S, H>, abortError: (signal: AbortSignal) => Error): Waits<S, H> {
  const queues = new Map<string, Waiter<S, H>[]>()
  let pending = 0
  // Decided at the first wait.
  let blocking = false
  let checkTimer: NodeJS.Timeout | undefined

  /** Tries the head of a lock's queue, and has it block while held. */
  function pump(id: string): void {
    const q = queues.get(id)
    while (q !== undefined && q.length > 0) {
      const w = q[0]!
      if (w.blocked) return
      try {
        const r = w.tried ? null : p.tryOnce(w)
        w.tried = false
        if (r !== null) acquired(w, r)
        else if (blocking) {
          p.start(w)
          w.blocked = true
        }
      } catch (err) {
        settle(w)
        w.reject(err)
        continue
      }
      return
    }
  }

  // The backend has handed over what held the lock (it is no longer the
  // wait's to cancel).
  function acquired(w: Waiter<S, H>, r: Acquired<H>): void {
    w.blocked = false
    settle(w)
    w.resolve(r)
  }

  function retry(w: Waiter<S, H>): void {
    w.blocked = false
    pump(w.id)
  }

  function failed(w: Waiter<S, H>, err: unknown): void {
    w.blocked = false
    settle(w)
    w.reject(err)
  }

  function settle(w: Waiter<S, H>): void {
    const q = queues.get(w.id)
    let next = false
    if (q !== undefined) {
      const i = q.indexOf(w)
      if (i >= 0) q.splice(i, 1)
      if (q.length === 0) queues.delete(w.id)
      else next = i === 0
    }
    if (w.timer !== undefined) clearTimeout(w.timer)
    if (w.onAbort !== undefined) w.signal!.removeEventListener('abort', w.onAbort)
    p.cancel(w)
    w.blocked = false
    pending--
    keepAlive()
    // A new head takes over the waiting.
    if (next) queueMicrotask(() => pump(w.id))
  }

  // With blocking waits, is each head still waiting on the lock itself (if
  // not, it waits again on what is there now)? Without, the heads simply
  // try again.
  function check(): void {
    if (pending === 0) return stopChecking()
    for (const [id, q] of [...queues]) {
      const w = q[0]!
      if (w.blocked) {
        if (p.stillWaits!(w)) continue
        p.cancel(w)
        w.blocked = false
        try {
          p.open(w, false)
        } catch (err) {
          settle(w)
          w.reject(err)
          continue
        }
      }
      pump(id)
    }
  }

  // A pending wait keeps the process alive, as a pending timer does (the
  // blocking wait itself, or the retry timer); a settled one leaves nothing
  // behind that is its own, and nothing keeping the process alive. The
  // unreferenced check timer of blocking waits stops itself at its next run
  // with none pending: a lock acquired and released in a loop does not stop
  // and start it every time.
  function keepAlive(): void {
    if (pending > 0 && checkTimer === undefined) {
      if (blocking && p.stillWaits === undefined) return
      checkTimer = setInterval(check, blocking ? CHECK_INTERVAL : POLL_INTERVAL)
      if (blocking) checkTimer.unref()
    } else if (pending === 0 && !blocking) stopChecking()
  }

  function stopChecking(): void {
    if (checkTimer === undefined) return
    clearInterval(checkTimer)
    checkTimer = undefined
  }

  function wait(id: string, s: S, record: (at: number) => string, timeout: number | undefined, signal: AbortSignal | undefined): Promise<Acquired<H> | Held> {
    return new Promise((resolve, reject) => {
      const w: Waiter<S, H> = { id, record, s, blocked: false, tried: false, timer: undefined, signal, onAbort: undefined, resolve, reject }
      // Nobody of ours queued for it: one try as tryLock makes.
      const first = !queues.has(id)
      const r = p.open(w, first)
      if (r !== null) return resolve(r)
      w.tried = first
      // No time to wait: held, by whoever holds it now.
      if (timeout === 0) {
        const held = p.readHolder(w)
        p.cancel(w)
        return resolve({ held: true, record: held })
      }
      blocking = p.blocking()
      pending++
      keepAlive()
      let q = queues.get(id)
      if (q === undefined) queues.set(id, (q = []))
      q.push(w)
      if (timeout !== undefined) {
        w.timer = setTimeout(() => {
          // The deadline and the lock's release can fall in one turn of the
          // loop, the release first (a busy process, a slow machine): the
          // kernel may then have handed the lock to the head's wait, whose
          // report is still on its way. Cancelling it would drop a lock the
          // caller could have had and name a holder who has gone, so the
          // head makes one last try, as tryLock does.
          if (queues.get(id)?.[0] === w) {
            let r: Acquired<H> | null
            try {
              p.cancel(w)
              w.blocked = false
              r = p.open(w, true)
            } catch (err) {
              settle(w)
              return reject(err)
            }
            if (r !== null) return acquired(w, r)
          }
          // The holder as it is now (what a wait holds is its own to read
          // until it is cancelled).
          const held = p.readHolder(w)
          settle(w)
          resolve({ held: true, record: held })
        }, timeout)
        if (blocking) w.timer.unref()
      }
      if (signal !== undefined) {
        w.onAbort = () => {
          settle(w)
          reject(abortError(signal))
        }
        signal.addEventListener('abort', w.onAbort, { once: true })
      }
      if (q.length === 1) pump(id)
    })
  }

  function released(id: string): void {
    // A blocked waiter is woken by the kernel, as one in another process is;
    // one that retries learns at once.
    if (queues.has(id) && !blocking) queueMicrotask(() => pump(id))
  }

  return { wait, acquired, retry, failed, released }
}
