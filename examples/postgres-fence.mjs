// A write protected by a PostgreSQL lock and its fencing token. Two writers
// take turns holding the lock; the first, paused past the point where it lost
// its lock (as a long GC pause or a frozen VM would), writes late: the store
// refuses its stale fence, and the newer holder's write stands.
//
//   DATABASE_URL=postgres://user:password@localhost/db node examples/postgres-fence.mjs
import pg from 'pg'
import { postgres } from 'instance-lock/postgres'

const url = process.env.DATABASE_URL ?? 'postgres://postgres@localhost/postgres'
const db = new pg.Client({ connectionString: url })
await db.connect()
await db.query('CREATE TEMP TABLE report (id int PRIMARY KEY, body text, fence bigint NOT NULL)')
await db.query("INSERT INTO report VALUES (1, '', 0)")

/**
 * The protected write: applied only if no holder with a greater fence has
 * written since. Resolves whether it was applied.
 * @param {string} body
 * @param {bigint} fence
 */
async function write(body, fence) {
  const r = await db.query('UPDATE report SET body = $1, fence = $2 WHERE id = 1 AND fence < $2', [body, fence.toString()])
  return r.rowCount === 1
}

const a = postgres(url)
const b = postgres(url)

const first = await a.lock('report-writer')
console.log(`writer A holds the lock with fence ${first.fence}`)
// A stalls here, still believing it holds the lock; meanwhile its lock is
// released (here by hand; in life, its session ended under it).
first.release()

const second = await b.lock('report-writer')
console.log(`writer B holds the lock with fence ${second.fence}`)
console.log(`B writes: ${(await write('from B', second.fence)) ? 'applied' : 'refused'}`)

// A wakes up and writes with the fence it had.
console.log(`A writes late: ${(await write('from A', first.fence)) ? 'applied' : 'refused (stale fence)'}`)
console.log(`the report says: ${(await db.query('SELECT body FROM report WHERE id = 1')).rows[0].body}`)

second.release()
await Promise.all([a.close(), b.close(), db.end()])
