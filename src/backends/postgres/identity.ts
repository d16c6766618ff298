import { createHash } from 'node:crypto'

/**
 * The advisory lock key of a lock: the first 8 bytes of SHA-256 over a
 * prefix of this package, the name and the key, as the signed bigint that
 * `pg_advisory_lock(bigint)` takes. The database is not hashed in: the
 * server keeps advisory locks per database already.
 *
 * The one-bigint key space (pg_locks shows it with `objsubid = 1`) and not
 * the two-int4 one (`objsubid = 2`), where applications put small table ids
 * and row ids: a 64-bit hash meets another application's small integers with
 * negligible probability, and two of our own identities with probability
 * about n²/2⁶⁵ (one in 36 million for a million names). Either collision is
 * seen, not believed: the holder's record names its identity, and a lock
 * held with no record of this identity is reported as foreign.
 */
export function advisoryKey(name: string, key: string | undefined): string {
  const h = createHash('sha256').update('instance-lock/1\0').update(name)
  if (key !== undefined) h.update('\0').update(key)
  return h.digest().readBigInt64BE(0).toString()
}
