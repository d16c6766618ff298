/**
 * `instance-lock/postgres`: the same locks, one per cluster, on PostgreSQL
 * session advisory locks. Loads `pg` (an optional peer dependency) on first
 * use; the main entry never loads this file.
 */
export { postgres, LockedError } from './locks.js'
export type { PostgresLocks } from './locks.js'
export type { PostgresConfig } from './config.js'
export type { PostgresLock } from './lock.js'
export type { ClusterGuardOptions, ClusterHolder, ClusterLockOptions, ClusterLockStatus, ClusterStopOptions, ClusterStopResult, ClusterWaitOptions } from './types.js'
