#!/usr/bin/env node
/**
 * `npm run bench:steps`: how many Effect run-loop steps each policy layer of the default stack
 * adds to one call, counted (not timed, so the figure is the same on any machine). Every step
 * the run loop executes allocates (a closure, an effect object, a continuation), so steps are
 * what a layer's per-call Effect code costs beyond its plain functions. The stacks are
 * `bench/layers.mjs`'s (attempt timeout, breaker, router, retry, stream-resume, deadline over a
 * model that answers at once and takes the request context as the adapters do), measured for a
 * non-streaming call and a 20-chunk stream through `run`.
 *
 * The count comes from Effect's own hook: with the `OpSupervision` runtime flag on, the run loop
 * calls the fiber's supervisor once per step (`Supervisor.onEffect`).
 *
 *   node bench/run-loop-steps.mjs [--json]
 */
import { LanguageModel } from "@breakwater/core"
import { Effect, RuntimeFlags, RuntimeFlagsPatch, Supervisor } from "effect"
import { markdownTable } from "./internal/markdown.mjs"
import { chunksOf, completion, layers, stackOf } from "./internal/policy-stack.mjs"

const CALLS = 200
const CHUNKS = 20

const chunks = chunksOf(CHUNKS)
const request = { model: "m", messages: [{ role: "user", content: "hi" }] }

// An adapter's shape: an asynchronous answer (as a socket's), the signal honoured, the context
// taken from the call options.
const base = LanguageModel.make({
  generate: () => Effect.async((resume) => { setImmediate(() => resume(Effect.succeed(completion))) }),
  run: (_request, _options, sink) =>
    Effect.async((resume) => {
      sink.start({ abort: () => {}, resume: () => {} })
      setImmediate(() => {
        sink.push(chunks)
        resume(Effect.void)
      })
    }),
  honoursSignal: true,
  takesContext: true
})
const sink = { start: () => {}, push: () => true }

const opSupervision = RuntimeFlagsPatch.enable(RuntimeFlags.OpSupervision)

class StepCounter extends Supervisor.AbstractSupervisor {
  steps = 0
  get value() {
    return Effect.sync(() => this.steps)
  }
  onEffect() {
    this.steps++
  }
}

/** Steps per call of `call()`, each call on a fresh fiber of its own, as a host runs a request. */
const stepsOf = async (call) => {
  const counter = new StepCounter()
  const counted = () => Effect.runPromise(Effect.supervised(Effect.withRuntimeFlagsPatch(call(), opSupervision), counter))
  for (let i = 0; i < 20; i++) await counted()
  counter.steps = 0
  for (let i = 0; i < CALLS; i++) await counted()
  return counter.steps / CALLS
}

const rows = []
let previous
for (let depth = 0; depth < layers.length; depth++) {
  const model = await Effect.runPromise(stackOf(base, depth))
  const run = LanguageModel.runOf(model)
  const generate = await stepsOf(() => model.generate(request))
  const stream = await stepsOf(() => run(request, undefined, sink))
  rows.push({
    stack: layers[depth][0],
    "generate: steps per call": generate.toFixed(0),
    "added by the layer": previous === undefined ? "" : (generate - previous.generate).toFixed(0),
    "stream: steps per call": stream.toFixed(0),
    "added by the layer ": previous === undefined ? "" : (stream - previous.stream).toFixed(0)
  })
  previous = { generate, stream }
}
console.log(process.argv.includes("--json") ? JSON.stringify(rows) : markdownTable(rows))
process.exit(0)
