import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

/** Whether every user can reach `dir`: each directory on its path lets others search it. */
export function traversableByAll(dir: string): boolean {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    try {
      if ((fs.statSync(d).mode & 0o001) === 0) return false
    } catch {
      return false
    }
    if (d === path.dirname(d)) return true
  }
}

// Where a copy every user can read can be made: the checkout may sit under
// a directory only its owner can enter (a clone in a `mktemp -d`), where a
// process running as another user could load nothing from it.
export const OPEN_TMP: string | undefined = [os.tmpdir(), '/tmp', '/dev/shm'].find(traversableByAll)
