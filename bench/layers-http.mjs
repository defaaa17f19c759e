#!/usr/bin/env node
/**
 * `npm run bench:layers:http`: what each policy layer of the default stack costs *in situ*: the
 * real OpenAI adapter over HTTP to the bench's upstream (in a process of its own, on the other
 * CPU), 64 calls in flight, each stack one layer deeper than the last (attempt timeout, breaker,
 * router, retry, stream-resume, deadline: the order GatewayBuilder stacks them), every call run
 * as a host runs it (`RequestPipeline.startGenerate`: a fiber on the host runtime that starts with
 * the request context, handed down the stack in the call options). Reports µs of CPU per
 * non-streaming call, the median of 3 interleaved rounds, next to undici alone (the same request
 * with `Pool.request`, its body read and parsed), so the adapter's own cost shows too.
 * `npm run bench:layers` measures the layers with no network; this one includes the allocation
 * and garbage-collection pressure of real concurrent traffic, which multiplies them.
 *
 *   node bench/layers-http.mjs [--calls N]
 */
import { CircuitBreaker } from "@breakwater/circuit-breaker"
import { RequestContext, V8Flags } from "@breakwater/core"
import { HostRuntime } from "@breakwater/gateway"
import { OpenAiProvider } from "@breakwater/provider-openai"
import { Retry } from "@breakwater/retry"
import { Router } from "@breakwater/router"
import { StreamResume } from "@breakwater/stream-resume"
import { AttemptTimeout, Deadline } from "@breakwater/timeout"
import { Context, Effect, Exit, Runtime, Scope } from "effect"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { Pool } from "undici"
import { canPin, pinPid, startNode } from "./internal/procs.mjs"
import { markdownTable } from "./internal/markdown.mjs"

// As the reference server runs (allocation-site pretenuring off): see ARCHITECTURE.md "The process".
V8Flags.apply()

const { values: flags } = parseArgs({ options: { calls: { type: "string", default: "5000" } } })
const CALLS = Number(flags.calls)
const CONCURRENCY = 64
const BENCH = fileURLToPath(new URL(".", import.meta.url))
const pin = canPin(2)
if (pin) pinPid(process.pid, 0)
const upstream = await startNode({
  name: "upstream",
  args: [join(BENCH, "upstream.mjs"), "--port", "0"],
  cpu: pin ? 1 : undefined,
  ready: /upstream listening on (http:\/\/\S+)/
})
const url = upstream.url
const request = { model: "bench-model", messages: [{ role: "user", content: "hi" }] }
const body = JSON.stringify(request)
const scope = Effect.runSync(Scope.make())
const runtime = HostRuntime.make({ secrets: [], level: "warning" }).runtime
const adapter = await Effect.runPromise(Scope.extend(OpenAiProvider.make({ baseUrl: `${url}/v1` }), scope))
const layers = [
  ["adapter alone", (m) => Effect.succeed(m)],
  ["+ attempt timeout", (m) => AttemptTimeout.withPolicy(m, { headers: "30 seconds", firstToken: "30 seconds", idle: "30 seconds" })],
  ["+ breaker", (m, breakers) => Effect.succeed(breakers.wrap("u", m))],
  ["+ router", (m, breakers) => Router.make({ strategy: "fallback", upstreams: [{ name: "u", model: m, isAvailable: (k) => breakers.isAvailable(k) }] })],
  ["+ retry", (m) => Retry.withPolicy(m, { maxRetries: 2 })],
  ["+ stream-resume", (m) => StreamResume.withPolicy(m, { maxResumes: 3 })],
  ["+ deadline", (m) => Deadline.withPolicy(m, { total: "120 seconds" })]
]
const stacks = []
for (let depth = 0; depth < layers.length; depth++) {
  stacks.push(await Effect.runPromise(Scope.extend(Effect.gen(function*() {
    const breakers = yield* CircuitBreaker.make({})
    let m = adapter
    for (let i = 0; i <= depth; i++) m = yield* layers[i][1](m, breakers)
    return m
  }), scope)))
}
const pool = new Pool(url)
const undiciAlone = () =>
  pool.request({ path: "/v1/chat/completions", method: "POST", headers: { "content-type": "application/json" }, body })
    .then(async (r) => JSON.parse(await r.body.text()))
// As `RequestPipeline.startGenerate` runs a call: a fiber started with the request's context,
// which is handed down the stack in the call options.
const base = runtime.runSync(Effect.runtime())
const viaHost = (model) => () =>
  new Promise((resolve, reject) => {
    const ctx = RequestContext.make({ requestId: "bench" })
    const perRequest = Runtime.make({
      context: Context.add(base.context, RequestContext.RequestContext, ctx),
      fiberRefs: base.fiberRefs,
      runtimeFlags: base.runtimeFlags
    })
    Runtime.runFork(perRequest)(model.generate(request, model.takesContext ? { context: ctx } : undefined))
      .addObserver((exit) => (Exit.isSuccess(exit) ? resolve(exit.value) : reject(exit.cause)))
  })
const cpuPerCall = async (call) => {
  let issued = 0
  const worker = async () => {
    while (issued++ < CALLS) await call()
  }
  const before = process.cpuUsage()
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  const used = process.cpuUsage(before)
  return (used.user + used.system) / CALLS
}
const cases = [["undici alone (Pool.request)", undiciAlone], ...layers.map(([name], i) => [name, viaHost(stacks[i])])]
const samples = cases.map(() => [])
for (let round = 0; round < 3; round++) {
  for (let i = 0; i < cases.length; i++) {
    await cpuPerCall(cases[i][1]) // warm-up
    samples[i].push(await cpuPerCall(cases[i][1]))
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const rows = cases.map(([name], i) => ({ stack: name, "µs CPU / call (c=64, median of 3)": median(samples[i]).toFixed(1) }))
process.stdout.write(`${markdownTable(rows)}\n`)
await pool.close()

process.exit(0)
