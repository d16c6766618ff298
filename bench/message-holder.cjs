'use strict'
// The other end of the message round trip: `node message-holder.cjs DIR`
// holds an instance-lock lock in DIR and answers every message, and beside
// it serves a bare Unix socket (DIR/bare.sock) that answers each request
// with a few bytes, as the floor: what one connect + write + read + close
// costs between two Node processes. Prints {"id":0} once both listen.
const net = require('node:net')
const path = require('node:path')
const { tryLock } = require('instance-lock')

const dir = process.argv[2]
const lock = tryLock('bench-messages', { dir })
lock.onMessage(() => 'ok')
const bare = net.createServer((socket) => {
  socket.once('data', () => socket.end('"ok"'))
})
bare.listen(path.join(dir, 'bare.sock'), () => process.stdout.write('{"id":0}\n'))
// Until the bench closes stdin.
process.stdin.on('end', () => process.exit(0))
process.stdin.resume()
