#!/usr/bin/env node
/**
 * In process, no network: one back-to-back stream's 50 upstream events (the bench mock's chunks,
 * sliced out of one read as the SSE reader does) through the OpenAI adapter's frame handler and
 * the gateway's client writer (`ClientStream`), as in one socket read. Prints CPU µs per stream
 * (min and median of 5 timed runs). It isolates the per-chunk decode and encode work; to compare
 * two builds, run it on each (the figures are only comparable within one sitting).
 *
 *   npm run bench:encode        (or: node bench/stream-encode.mjs [streams per run, default 20000])
 */
import { V8Flags } from "@breakwater/core"
import { ClientStream } from "@breakwater/gateway"
import { frameHandler } from "../packages/provider-openai/dist/internal/openai.js"

V8Flags.apply()
const handle = frameHandler("bench", (s) => s)
const event = (i) =>
  JSON.stringify({
    id: "chatcmpl-mock2",
    object: "chat.completion.chunk",
    created: 1732000001,
    model: "bench-model",
    system_fingerprint: null,
    choices: [{ index: 0, delta: i === 0 ? { role: "assistant", content: "" } : { content: "résumé " }, logprobs: null, finish_reason: null }]
  })
const read = Array.from({ length: 50 }, (_, i) => `data: ${event(i)}\n\n`).join("")
const sink = { commit: () => {}, write: () => true }

const oneStream = () => {
  const chunks = []
  const context = { emit: (chunk) => chunks.push(chunk), heartbeat: () => {}, interrupted: () => { throw new Error("unexpected") } }
  for (let at = 0, start; (start = read.indexOf("data: ", at)) !== -1;) {
    const end = read.indexOf("\n\n", start)
    handle({ data: read.slice(start + 6, end) }, context)
    at = end
  }
  ClientStream.make({ includeUsage: false, sink }).onChunks(chunks)
}

const n = Number(process.argv[2] ?? 20_000)
for (let i = 0; i < 5_000; i++) oneStream()
const runs = []
for (let r = 0; r < 5; r++) {
  const c0 = process.cpuUsage()
  for (let i = 0; i < n; i++) oneStream()
  const c = process.cpuUsage(c0)
  runs.push((c.user + c.system) / n)
}
runs.sort((a, b) => a - b)
console.log(`stream-encode: ${runs[0].toFixed(1)} µs per 50-event stream (min), ${runs[2].toFixed(1)} (median)`)
