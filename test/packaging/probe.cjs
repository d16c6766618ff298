// Runs inside the consumer project on the Node under test, loaded as
// CommonJS: tries the lock once, releases it if it got it, and reports.
//
//   node probe.cjs RESULT_FILE NAME [DIR]
'use strict'
const fs = require('node:fs')

const [resultFile, name, dir] = process.argv.slice(2)

function report(result) {
  fs.writeFileSync(`${resultFile}.tmp`, JSON.stringify(result))
  fs.renameSync(`${resultFile}.tmp`, resultFile)
}

try {
  const { tryLock } = require('instance-lock')
  const lock = tryLock(name, dir ? { dir } : {})
  lock.release()
  report({ acquired: true })
} catch (err) {
  report({ acquired: false, error: { name: err.name, code: err.code, message: err.message }, holderPid: err.holder?.pid })
}
