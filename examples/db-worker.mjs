// One worker per database file: workers for different databases run side by
// side; a second worker for the same database waits its turn (or gives up
// after --timeout ms). `./data.db`, `data.db` and a symlink to it are the
// same key.
//
//   node examples/db-worker.mjs ./a.db & node examples/db-worker.mjs ./b.db   # both run
//   node examples/db-worker.mjs ./a.db --timeout 2000                         # waits, then ELOCKED
import fs from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { LockedError, lock } from 'instance-lock'

const { positionals, values } = parseArgs({ allowPositionals: true, options: { timeout: { type: 'string' } } })
const db = positionals[0] ?? './example.db'
if (!fs.existsSync(db)) fs.writeFileSync(db, '')

const ac = new AbortController()
process.once('SIGINT', () => ac.abort())

try {
  const held = await lock('db-worker', {
    key: db,
    timeout: values.timeout === undefined ? undefined : Number(values.timeout),
    signal: ac.signal,
    data: { db },
  })
  try {
    console.log(`pid ${process.pid} owns ${held.key}; working for 3 s`)
    await sleep(3000)
  } finally {
    held.release()
  }
} catch (err) {
  if (err instanceof LockedError) console.error(`${db} is busy: pid ${err.holder?.pid} has it since ${err.holder?.startedAt}`)
  else if (err instanceof Error && err.name === 'AbortError') console.error('gave up waiting')
  else throw err
  process.exitCode = 1
}
