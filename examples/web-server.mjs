// A web server that must run once per user: a second start prints who is
// running (pid, since when, port) and how to stop it, then exits 1.
//
//   node examples/web-server.mjs          # serves on a free port
//   node examples/web-server.mjs          # second copy: refused, exit 1
//   npx instance-lock status web-example  # shows pid, age and port
import http from 'node:http'
import { singleInstance } from 'instance-lock'

const lock = singleInstance('web-example')

const server = http.createServer((req, res) => res.end('hello\n'))
server.listen(Number(process.env.PORT ?? 0), () => {
  const address = server.address() // an object once a TCP server listens
  if (address === null || typeof address !== 'object') return
  // Record the port so `status` and the refusal message can show it.
  lock.update({ port: address.port })
  console.log(`listening on http://localhost:${address.port} (pid ${process.pid})`)
})

// No signal handlers are needed for the lock: the kernel frees it however
// this process ends. This one is only for a tidy shutdown of the server.
process.once('SIGTERM', () => server.close(() => process.exit(0)))
