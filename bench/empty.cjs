'use strict'
// Required by guard.cjs before the library, to measure what any first
// require costs, so the library's own cost can be told apart from it.
