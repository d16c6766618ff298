'use strict'
// One adapter per library, each used the way its README shows, with the
// library's own defaults wherever it has them. Every adapter offers:
//   tryAcquire()  -> handle | null        take it now or report "held"
//   release(h)                            (may return a promise)
//   wait(onWaiting) -> Promise<handle>    wait until free; onWaiting() is
//                                         called once the library is known
//                                         to be waiting (its first attempt
//                                         saw the lock held)
//   failedTry()   -> holder pid | null    one try on a lock held elsewhere;
//                                         the holder's pid when the library
//                                         reports one
// Each library gets its own directory, so no two ever touch one file.
const fs = require('node:fs')
const path = require('node:path')

const LOCK_NAME = 'bench'

// How the libraries without an event-driven wait poll, and when a dead
// holder's lock is taken over. Stated in docs/benchmarks.md next to the
// results.
const SETTINGS = {
  'instance-lock': 'lock(): flock(LOCK_EX) on a thread of its own (not the libuv pool), cancelled on timeout or abort; no polling, no staleness (the kernel frees the lock)',
  'proper-lockfile': 'stale 10000 ms and update 5000 ms (defaults); waiting: retries { forever, minTimeout 10, maxTimeout 100 } (default is no waiting)',
  lockfile: 'stale 10000 ms (it has no default: without one a crashed holder is never taken over); waiting: wait 600000, pollPeriod 100 ms (default)',
  'fs-ext': 'flock(fd, "ex", cb): blocks a libuv thread-pool thread while waiting',
  'fs-native-extensions': 'waitForLock(fd): F_OFD_SETLKW, blocks a libuv thread-pool thread while waiting',
}

function openRw(file) {
  return fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644)
}

const adapters = {
  'instance-lock'(dir) {
    const il = require('instance-lock')
    const opts = { dir }
    return {
      file: path.join(dir, `${LOCK_NAME}.lock`),
      tryAcquire() {
        try {
          return il.tryLock(LOCK_NAME, opts)
        } catch (err) {
          if (err.code === 'ELOCKED') return null
          throw err
        }
      },
      release(l) {
        l.release()
      },
      wait(onWaiting) {
        // The waiter is registered (file open, first flock refused, its
        // thread started) before lock() returns its promise.
        const p = il.lock(LOCK_NAME, opts)
        onWaiting()
        return p
      },
      failedTry() {
        try {
          il.tryLock(LOCK_NAME, opts).release()
        } catch (err) {
          if (err.code !== 'ELOCKED') throw err
          return err.holder === undefined ? null : err.holder.pid
        }
        throw new Error('tryLock succeeded on a held lock')
      },
    }
  },

  'proper-lockfile'(dir) {
    const plf = require('proper-lockfile')
    const gfs = require('graceful-fs')
    const file = path.join(dir, LOCK_NAME)
    const retries = { forever: true, minTimeout: 10, maxTimeout: 100 }
    return {
      file: `${file}.lock`,
      tryAcquire() {
        try {
          return plf.lockSync(file, { realpath: false })
        } catch (err) {
          if (err.code === 'ELOCKED') return null
          throw err
        }
      },
      release(release) {
        return release()
      },
      wait(onWaiting) {
        // proper-lockfile takes an `fs`: ours reports its first refused mkdir.
        let told = false
        const watched = Object.create(gfs)
        watched.mkdir = (p, cb) =>
          gfs.mkdir(p, (err) => {
            if (err && err.code === 'EEXIST' && !told) {
              told = true
              onWaiting()
            }
            cb(err)
          })
        return plf.lock(file, { realpath: false, retries, fs: watched })
      },
      failedTry() {
        try {
          plf.lockSync(file, { realpath: false })()
        } catch (err) {
          if (err.code !== 'ELOCKED') throw err
          return null
        }
        throw new Error('lockSync succeeded on a held lock')
      },
    }
  },

  lockfile(dir) {
    const lockfile = require('lockfile')
    const file = path.join(dir, `${LOCK_NAME}.lock`)
    const opts = () => ({ wait: 600000, stale: 10000 })
    return {
      file,
      tryAcquire() {
        try {
          lockfile.lockSync(file, { stale: 10000 })
          return true
        } catch (err) {
          if (err.code === 'EEXIST') return null
          throw err
        }
      },
      release() {
        lockfile.unlockSync(file)
      },
      wait(onWaiting) {
        // lockfile calls fs.open at call time: watch for its first EEXIST.
        const open = fs.open
        fs.open = function (p, flags, ...rest) {
          const cb = rest.pop()
          return open.call(fs, p, flags, ...rest, (err, fd) => {
            if (err && err.code === 'EEXIST' && p === file) {
              fs.open = open
              onWaiting()
            }
            cb(err, fd)
          })
        }
        return new Promise((resolve, reject) => {
          lockfile.lock(file, opts(), (err) => {
            fs.open = open
            if (err) reject(err)
            else resolve(true)
          })
        })
      },
      failedTry() {
        try {
          lockfile.lockSync(file, { stale: 10000 })
        } catch (err) {
          if (err.code !== 'EEXIST') throw err
          return null
        }
        throw new Error('lockSync succeeded on a held lock')
      },
    }
  },

  'fs-ext'(dir) {
    const fsext = require('fs-ext')
    const file = path.join(dir, `${LOCK_NAME}.lock`)
    return {
      file,
      tryAcquire() {
        const fd = openRw(file)
        try {
          fsext.flockSync(fd, 'exnb')
          return fd
        } catch (err) {
          fs.closeSync(fd)
          if (err.code === 'EAGAIN' || err.code === 'EWOULDBLOCK') return null
          throw err
        }
      },
      release(fd) {
        fs.closeSync(fd)
      },
      wait(onWaiting) {
        const fd = openRw(file)
        return new Promise((resolve, reject) => {
          try {
            fsext.flockSync(fd, 'exnb')
            return resolve(fd)
          } catch (err) {
            if (err.code !== 'EAGAIN' && err.code !== 'EWOULDBLOCK') return reject(err)
          }
          fsext.flock(fd, 'ex', (err) => (err ? reject(err) : resolve(fd)))
          onWaiting()
        })
      },
      failedTry() {
        const fd = openRw(file)
        try {
          fsext.flockSync(fd, 'exnb')
        } catch (err) {
          if (err.code !== 'EAGAIN' && err.code !== 'EWOULDBLOCK') throw err
          return null
        } finally {
          fs.closeSync(fd)
        }
        throw new Error('flock succeeded on a held lock')
      },
    }
  },

  'fs-native-extensions'(dir) {
    const fsne = require('fs-native-extensions')
    const file = path.join(dir, `${LOCK_NAME}.lock`)
    return {
      file,
      tryAcquire() {
        const fd = openRw(file)
        if (fsne.tryLock(fd)) return fd
        fs.closeSync(fd)
        return null
      },
      release(fd) {
        fs.closeSync(fd)
      },
      wait(onWaiting) {
        const fd = openRw(file)
        if (fsne.tryLock(fd)) return Promise.resolve(fd)
        const p = fsne.waitForLock(fd).then(() => fd)
        onWaiting()
        return p
      },
      failedTry() {
        const fd = openRw(file)
        const got = fsne.tryLock(fd)
        fs.closeSync(fd)
        if (got) throw new Error('tryLock succeeded on a held lock')
        return null
      },
    }
  },
}

const LIBRARIES = Object.keys(adapters)

module.exports = { adapters, LIBRARIES, SETTINGS, LOCK_NAME }
