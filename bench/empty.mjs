// `node empty.mjs`: Node starting and exiting as an ES module, the baseline
// of guard.mjs.
