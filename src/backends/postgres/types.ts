/** Who holds a PostgreSQL lock, from its record, shown only while the server says that session holds it. */
export interface ClusterHolder {
  /** The holder's process, on its host. */
  pid: number
  hostname: string
  /** ISO 8601, when the lock was acquired. */
  startedAt: string
  name: string
  key?: string
  scope: 'cluster'
  data?: Record<string, unknown>
  /** True once the holder called `ready()`. */
  ready?: boolean
  /** The server process of the holder's session (pg_backend_pid()). */
  backendPid: number
}

/** The state of one PostgreSQL lock, as `inspect()` and `list()` report it. */
export interface ClusterLockStatus {
  name: string
  key?: string
  scope: 'cluster'
  locked: boolean
  /** Present when locked and the holder's record names this lock. */
  holder?: ClusterHolder
  /** The server and the advisory lock key, e.g. `postgres://db1:5432/app#advisory=-4087…`. */
  path: string
}

export interface ClusterLockOptions {
  /** A resource the lock is for, taken as written: one holder per `(name, key)`. */
  key?: string
  /** JSON metadata shown by `inspect()`, `list()` and `instance-lock status`. */
  data?: Record<string, unknown>
}

export interface ClusterWaitOptions extends ClusterLockOptions {
  /** Milliseconds to wait; default: no limit; `0` behaves like `tryLock`. */
  timeout?: number
  signal?: AbortSignal
}

export interface ClusterGuardOptions extends ClusterLockOptions {
  /** `'exit'` (default): print who holds it and exit; `'throw'`: reject with `LockedError`; `'replace'`: stop the holder, then take it. */
  onLocked?: 'exit' | 'throw' | 'replace'
  /** Exit code for `onLocked: 'exit'`; default 1. */
  exitCode?: number
  /** `'replace'`: milliseconds to wait for the holder to exit before ending its session; default 10000. */
  timeout?: number
}

export interface ClusterStopOptions {
  key?: string
  /** Milliseconds to wait for the lock to be free; default 10000. */
  timeout?: number
  /** After `timeout`, end the holder's session (`pg_terminate_backend`) and wait again. */
  force?: boolean
}

export interface ClusterStopResult {
  /** The lock is free now. */
  stopped: boolean
  /** The holder's process, when its record named it. */
  pid?: number
  hostname?: string
  /** Its session had to be ended. */
  forced: boolean
  /** The holder's record as stop found it (as the local `stop()` reports it): who held the lock, with what data. */
  holder?: ClusterHolder
}
