import { native } from '../backends/addon.js'

/**
 * The measures taken for speed: each makes the code less plain than it
 * could be, so each is here, or listed here, with what it gains, measured
 * against the plain version in the same run on the same machine, and the
 * test that fails if it stops working. A measure that no longer pays is
 * removed (Date#toISOString, once replaced by arithmetic, and a cache of
 * kill(pid, 0) answers gained nothing measurable and were taken out).
 * The figures: medians of 40-100 alternated runs (start-up: require and
 * guard in a fresh process; cycle and failed try: µs each over 100 000),
 * Node 20, Linux x64, 2 cores.
 *
 * Start-up (`require('instance-lock').singleInstance(...)`: 5.6-6.7 ms)
 * - The shipped prebuild is loaded directly where node-gyp-build would pick
 *   it (src/backends/addon.ts): -3.6 ms. Guarded by test/entrypoints.test.ts
 *   ("the shipped prebuild, without starting node-gyp-build").
 * - The host name comes from the addon, not node:os (`hostName` below):
 *   -1.4 ms. Guarded by test/guard.test.ts (no node:os).
 * - A key's hash comes from the addon, not node:crypto (`keyHash` below):
 *   -5 ms for a keyed guard. Guarded by test/guard.test.ts (no node:crypto).
 * - `import` gets a small main that names the exports and requires the
 *   bundle (scripts/build-ts.mjs), so Node's CommonJS lexer never scans the
 *   bundle: an ES module's guard 13.7 ms instead of 39.6 ms. Guarded by
 *   test/entrypoints.test.ts (the main requires only the bundle).
 * - One bundle: loading one file, not twenty (scripts/build-ts.mjs); no
 *   "exports" map, whose first use costs a CommonJS program Node 20's ESM
 *   resolver. Guarded by test/guard.test.ts (no ESM resolver).
 *
 * Every lock and release
 * - Released descriptors are kept until the end of the turn and flocked
 *   again by the next acquisition of the same lock ("spares",
 *   src/backends/flock/index.ts): a tryLock/release cycle 4.3 µs instead of
 *   6.1 µs. Guarded by test/race.test.ts (the addon's use of a spare).
 * - The last record made per lock is reused within its millisecond
 *   (`recordAt`, src/core/record.ts): 4.3 µs instead of 5.4 µs a cycle.
 * - The last record read is parsed once (`parseRecord`): a failed try
 *   7.8 µs instead of 9.0 µs.
 * - A LockedError captures no stack trace (src/core/errors.ts): a failed
 *   try 8.7 µs instead of 16.1 µs. Guarded by test/exclusion.test.ts.
 *
 * Messages
 * - Files of /proc are read with open, read and close into a kept buffer
 *   (src/backends/flock/proc.ts), not readFileSync: 11 µs instead of 26 µs
 *   a read of /proc/locks, which a sender reads once per message to check
 *   the endpoint's process holds the lock. Guarded by test/holder.test.ts
 *   (a /proc/locks longer than the first buffer).
 */

let host: string | undefined

/** os.hostname(), from the addon on Unix. Read once: records name the host as it was then. */
export function hostName(): string {
  if (host === undefined) {
    const name = native.platform === 'posix' ? native.hostname() : undefined
    host = name ?? (require('node:os') as typeof import('node:os')).hostname()
  }
  return host
}

/**
 * Short, portable, collision-resistant tag for a key in file and mutex names:
 * the first 128 bits of its SHA-256, from the addon.
 */
export function keyHash(canonical: string): string {
  return native.sha256(canonical).slice(0, 32)
}
