#!/usr/bin/env node
/**
 * The in-memory stream journal's own cost per stream once it is full (every new stream evicts
 * one), on the path the HTTP host takes for a back-to-back stream: open (`openNow`), 50 frames
 * appended in one batch with the client's bytes (`appendNow` with the UTF-8 write, after the
 * `retry:` hint), the end frame, `finishNow`. No HTTP, no policies: the journal's bookkeeping and
 * the garbage collection of what it keeps. The stream ids, frames and bytes are made the same way
 * in both modes; `--none` makes them and calls no journal, so the difference is the journal's.
 *
 *   node bench/journal-memory.mjs [streams per round, default 100000] [--none]
 *   valgrind --tool=callgrind node --single-threaded bench/journal-memory.mjs 4000 [--none]
 *
 * Prints CPU µs per stream for 4 rounds (the first fills the journal). Under callgrind, the
 * instructions per stream are (total with N − total with 1) / (4 × (N − 1)), with and without
 * `--none`.
 */
import { StreamJournal } from "@breakwater/stream-resume"
import { Effect } from "effect"
import { randomUUID } from "node:crypto"

const args = process.argv.slice(2)
const none = args.includes("--none")
const N = Number(args.find((a) => !a.startsWith("--")) ?? 100_000)
const journal = Effect.runSync(StreamJournal.makeMemory())
const utf8 = new TextEncoder()
const hint = "retry: 1000\n\n"
const frame = (id, i) =>
  `id: ${id}:${i}\ndata: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1733300000,"model":"bench-model","choices":[{"index":0,"delta":{"content":"word${i} "},"finish_reason":null}]}\n\n`
const one = () => {
  const id = `bws_${randomUUID().replaceAll("-", "")}`
  const frames = []
  for (let i = 1; i <= 50; i++) frames.push(frame(id, i))
  const bytes = utf8.encode(hint + frames.join(""))
  const end = `id: ${id}:51\ndata: [DONE]\n\n`
  if (none) return bytes.length + end.length
  journal.openNow(id, { owner: "" })
  journal.appendNow(id, 1, frames, bytes, hint.length)
  journal.appendNow(id, 51, [end])
  journal.finishNow(id)
  return 0
}
for (let r = 0; r < 4; r++) {
  const c0 = process.cpuUsage()
  for (let i = 0; i < N; i++) one()
  const c = process.cpuUsage(c0)
  console.log(`round ${r + 1}: ${((c.user + c.system) / N).toFixed(1)} µs CPU per stream${none ? " (no journal)" : ""}`)
}
