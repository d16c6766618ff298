'use strict'
// Guard start-up: `node guard.cjs LIBRARY DIR` takes the library's
// single-instance guard as the first thing `main` does and prints how long
// the require + guard took. An empty module is required first, so what any
// first require pays (the CommonJS loader's own warm-up) is not counted.
// LIBRARY `bare` requires only the empty module: its wall time is `node`
// starting and exiting.
const fs = require('node:fs')
const path = require('node:path')
const [library, dir] = process.argv.slice(2)
const t0 = process.hrtime.bigint()
require('./empty.cjs')
const t1 = process.hrtime.bigint()

const guards = {
  bare() {},
  'instance-lock'() {
    require('instance-lock').singleInstance('bench', { dir })
  },
  'proper-lockfile'() {
    require('proper-lockfile').lockSync(path.join(dir, 'bench'), { realpath: false })
  },
  lockfile() {
    require('lockfile').lockSync(path.join(dir, 'bench.lock'))
  },
  'fs-ext'() {
    const fd = fs.openSync(path.join(dir, 'bench.lock'), fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644)
    require('fs-ext').flockSync(fd, 'exnb')
  },
  'fs-native-extensions'() {
    const fd = fs.openSync(path.join(dir, 'bench.lock'), fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644)
    if (!require('fs-native-extensions').tryLock(fd)) throw new Error('held')
  },
}

guards[library]()
const t2 = process.hrtime.bigint()
process.stdout.write(JSON.stringify({ emptyNs: Number(t1 - t0), guardNs: Number(t2 - t1) }) + '\n')
