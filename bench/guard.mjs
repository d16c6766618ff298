// Guard start-up as an ES module: `node guard.mjs DIR` imports the package
// and takes the guard, as the first line of a program written as ESM does.
// Only the wall time from spawn to exit is measured (against empty.mjs, the
// same Node starting and exiting as an ES module): the import happens before
// any line of this module runs, and what it costs can outlast the module
// (work V8 left on its background threads delays exit).
import { singleInstance } from 'instance-lock'

singleInstance('bench', { dir: process.argv[2] })
