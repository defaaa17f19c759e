#!/usr/bin/env node
/**
 * `npm run bench:layers`: what each policy layer of the default stack costs, in process, with
 * no network: a model that answers at once is wrapped one layer at a time (attempt timeout,
 * breaker, router, retry, stream-resume, deadline — the order GatewayBuilder stacks them) and
 * each stack is measured for
 *   - a non-streaming call (µs per call, `Effect.runPromise` included),
 *   - a 200-chunk stream through `run`, as hosts call it, one chunk per push (µs of CPU per chunk),
 *   - the live heap of a held stream (KB per stream, 2,000 streams held after their first chunk).
 * It attributes the gateway's cost to layers; `npm run bench` measures the gateway as a whole.
 *
 *   node --expose-gc bench/layers.mjs
 */
import { LanguageModel, RequestContext, V8Flags } from "@breakwater/core"
import { Effect } from "effect"
import { markdownTable } from "./internal/markdown.mjs"
import { chunk, chunksOf, completion, layers, stackOf } from "./internal/policy-stack.mjs"

// As the reference server runs (allocation-site pretenuring off): see ARCHITECTURE.md "The process".
V8Flags.apply()

if (typeof globalThis.gc !== "function") throw new Error("run with node --expose-gc")
const CHUNKS = 200
const CALLS = 20_000
const HELD = 2_000

const chunks = chunksOf(CHUNKS)
const request = { model: "m", messages: [{ role: "user", content: "hi" }], stream: true }

// The adapter's shape: `run` pushes each chunk as its own batch (one per socket read, the costly
// case); held: the first chunk, then nothing (a slow stream). Its `generate` stops at once, so it
// honours the context's signal and takes the context in its call options, as the adapters do:
// the stack takes the default stack's path.
const base = (hold) => LanguageModel.make({
  generate: () => Effect.succeed(completion),
  honoursSignal: true,
  takesContext: true,
  run: (_request, _options, sink) =>
    Effect.suspend(() => {
      sink.start({ abort: () => {}, resume: () => {} })
      if (hold) {
        sink.push([chunk(0)])
        return Effect.never
      }
      for (const c of chunks) sink.push([c])
      return Effect.void
    })
})
// What a host hands the model: takes every batch.
const sink = { start: () => {}, push: () => true }

const stack = (depth, hold) => stackOf(base(hold), depth)

const cpuMicros = async (f) => {
  const c0 = process.cpuUsage()
  await f()
  const c = process.cpuUsage(c0)
  return c.user + c.system
}
const rows = []
for (let depth = 0; depth < layers.length; depth++) {
  const model = await Effect.runPromise(stack(depth, false))
  const run = LanguageModel.runOf(model)
  // Each call with a fresh request context in its options, as a host starts one.
  const options = () => ({ context: RequestContext.make({ requestId: "bench" }) })
  const drain = () => Effect.runPromise(run(request, options(), sink))
  const call = () => Effect.runPromise(model.generate(request, options()))
  for (let i = 0; i < 30; i++) await drain()
  for (let i = 0; i < CALLS; i++) await call()
  const callUs = await cpuMicros(async () => { for (let i = 0; i < CALLS; i++) await call() }) / CALLS
  const chunkUs = await cpuMicros(async () => { for (let i = 0; i < 60; i++) await drain() }) / (60 * chunks.length)

  const held = await Effect.runPromise(stack(depth, true))
  globalThis.gc()
  const h0 = process.memoryUsage().heapUsed
  const runHeld = LanguageModel.runOf(held)
  const fibers = Array.from({ length: HELD }, () => Effect.runFork(runHeld(request, options(), sink)))
  await new Promise((r) => setTimeout(r, 300))
  globalThis.gc()
  const heldKb = (process.memoryUsage().heapUsed - h0) / HELD / 1024
  for (const f of fibers) f.unsafeInterruptAsFork(f.id())
  await new Promise((r) => setTimeout(r, 300))
  rows.push({ stack: layers[depth][0], "generate µs/call": callUs.toFixed(1), "stream µs CPU/chunk": chunkUs.toFixed(1), "held stream KB heap": heldKb.toFixed(1) })
  process.stderr.write(`${JSON.stringify(rows.at(-1))}\n`)
}
console.log(markdownTable(rows))
process.exit(0)
