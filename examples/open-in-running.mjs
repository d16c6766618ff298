// An editor that runs once per user: the first instance opens the files it
// is given and stays up; a later `node examples/open-in-running.mjs FILE`
// hands FILE (with its working directory) to the running one and exits 0,
// as Electron's requestSingleInstanceLock + 'second-instance' does.
//
//   node examples/open-in-running.mjs a.txt     # first: opens a.txt, stays up
//   node examples/open-in-running.mjs b.txt     # second: a.txt's window opens b.txt; exits 0
//   npx instance-lock send open-in-running-example --json '"ping"'
import path from 'node:path'
import { singleInstance } from 'instance-lock'

const name = process.env.OPEN_IN_RUNNING_NAME ?? 'open-in-running-example'

/**
 * What a real editor would do: show the file. Relative paths are the sender's.
 * @param {string} file
 * @param {string} cwd
 */
function open(file, cwd) {
  console.log(`opened ${path.resolve(cwd, file)}`)
}

// A second instance does not get past this line: its argv goes to the first
// instance, which answers, and it exits 0 (1 if the first does not answer).
await singleInstance(name, {
  onLocked: 'forward',
  onSecondInstance: ({ argv, cwd }) => {
    // argv is the sender's process.argv exactly: [node, this script, ...files].
    const files = argv.slice(2)
    for (const file of files) open(file, cwd)
    return { opened: files.length }
  },
})

for (const file of process.argv.slice(2)) open(file, process.cwd())
console.log(`ready (pid ${process.pid}): run "node examples/open-in-running.mjs FILE" to open FILE here`)
// An editor's window keeps it running; messages alone do not.
setInterval(() => {}, 1 << 30)
