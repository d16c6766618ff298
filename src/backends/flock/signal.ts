/**
 * Signalling a process proven to hold a lock, so that only a process that
 * holds it at that moment is ever signalled. A pid is a name, not a process:
 * between "pid P holds the lock" and kill(P), P can exit on its own and its
 * number go to an unrelated process.
 */

/** What signalling needs of the system, one system call's worth each. */
export interface Reach<H> {
  /**
   * A handle on the process `pid` names now, which goes on naming that
   * process only (Linux: a pidfd); null where the system has none. Throws
   * ESRCH when no process has that pid.
   */
  open(pid: number): H | null
  /** `pid` holds the lock right now, as the kernel shows. */
  holds(pid: number): boolean
  /** Signals the process behind `handle`; throws ESRCH once it has exited, whatever has its pid now. */
  send(handle: H, signal: NodeJS.Signals): void
  /** Signals `pid`, where no handle could be had. */
  kill(pid: number, signal: NodeJS.Signals): void
  close(handle: H): void
}

/**
 * Tests only: `verified` runs between a holder's last verification and its
 * signal, the moment in which it can exit and its pid be reused.
 */
export const seam: { verified?: (pid: number) => void } = {}

/**
 * Signals `pid` if it holds the lock. The handle is opened first and the
 * holder verified after, so the process behind the handle is the one that
 * held the lock; if it exits before the signal, the signal fails with ESRCH
 * instead of reaching whatever has its pid by then. Where no handle can be
 * had the holder is verified right before kill(pid), and only the instant
 * between the two remains. True when the signal was sent; false when `pid`
 * no longer holds the lock or has exited, and nothing was signalled.
 */
export function signalHolder<H>(pid: number, signal: NodeJS.Signals, reach: Reach<H>): boolean {
  let handle: H | null
  try {
    handle = reach.open(pid)
  } catch (err) {
    if (gone(err)) return false
    throw err
  }
  try {
    if (!reach.holds(pid)) return false
    seam.verified?.(pid)
    if (handle === null) reach.kill(pid, signal)
    else reach.send(handle, signal)
    return true
  } catch (err) {
    if (gone(err)) return false
    throw err
  } finally {
    if (handle !== null) reach.close(handle)
  }
}

function gone(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === 'ESRCH'
}
