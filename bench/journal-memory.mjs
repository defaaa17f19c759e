#!/usr/bin/env node
/**
 * The in-memory stream journal's own cost per stream once it is full (every new stream evicts
 * one): open, 50 frames appended in one batch (as from one socket read), finish. No HTTP, no
 * policies: the journal's bookkeeping and the garbage collection of what it keeps.
 *
 *   node bench/journal-memory.mjs [streams per round, default 100000]
 *
 * Prints CPU µs per stream for 4 rounds (the first fills the journal).
 */
import { StreamJournal } from "@breakwater/stream-resume"
import { Effect } from "effect"

const journal = Effect.runSync(StreamJournal.makeMemory())
const frame = (id, i) =>
  `id: ${id}:${i}\ndata: {"id":"chatcmpl-${id}","object":"chat.completion.chunk","created":1733300000,"model":"bench-model","choices":[{"index":0,"delta":{"content":"word${i} "},"finish_reason":null}]}\n\n`
let n = 0
const one = () => {
  const id = `bws_${(n++).toString(16).padStart(32, "0")}`
  Effect.runSync(journal.open(id, { owner: "anonymous" }))
  const frames = []
  for (let i = 1; i <= 50; i++) frames.push(frame(id, i))
  journal.appendNow(id, 1, frames)
  Effect.runSync(journal.finish(id))
}
const N = Number(process.argv[2] ?? 100_000)
for (let r = 0; r < 4; r++) {
  const c0 = process.cpuUsage()
  for (let i = 0; i < N; i++) one()
  const c = process.cpuUsage(c0)
  console.log(`round ${r + 1}: ${((c.user + c.system) / N).toFixed(1)} µs CPU per stream`)
}
