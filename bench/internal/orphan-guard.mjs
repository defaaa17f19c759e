/**
 * Preloaded (`node --import`) into every benchmark child: exit when the orchestrator is gone,
 * even if it died by SIGKILL and could not clean up. One unref'd timer per second.
 */
const parent = process.ppid
setInterval(() => {
  if (process.ppid !== parent) process.exit(0)
}, 1000).unref()
