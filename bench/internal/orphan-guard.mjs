/**
 * Preloaded (`node --import`, or imported first) into every benchmark child:
 *
 * - exit when the orchestrator is gone, even if it died by SIGKILL and could not clean up
 *   (one unref'd timer per second);
 * - on SIGUSR2, collect garbage (when started with `--expose-gc`) and print one line
 *   `bench-memory {"seq":…,"rss":…,"heapUsed":…,…}` on stderr, so the orchestrator can tell
 *   retained memory from heap the process simply has not returned yet.
 */
const parent = process.ppid
setInterval(() => {
  if (process.ppid !== parent) process.exit(0)
}, 1000).unref()

let seq = 0
process.on("SIGUSR2", () => {
  if (typeof globalThis.gc === "function") {
    globalThis.gc()
    globalThis.gc()
  }
  const m = process.memoryUsage()
  process.stderr.write(`bench-memory ${JSON.stringify({ seq: ++seq, rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers })}\n`)
})
