#!/usr/bin/env node
/**
 * `npm run bench:held`: the gateway holding many slow streams, as real model streams are (one
 * token at a time, each its own wake-up), in process with the mock upstream in a child process.
 * Reports how long N streams took to start, the gateway's CPU per delivered chunk while they
 * trickle, and its live heap per held stream. `npm run bench`'s memory case measures the same
 * against the bare proxy at 5,000 streams; this one isolates the gateway and is quick to profile.
 *
 *   node --expose-gc bench/held-streams.mjs [--streams 600] [--chunk-delay-ms 1000] [--cpu-prof file] [--route '{"retry":{"enabled":false}}']
 */
import { V8Flags } from "@breakwater/core"
import { ConfigLoader, GatewayBuilder } from "@breakwater/gateway"
import { HttpHost } from "@breakwater/host-http"
import { Effect, Scope } from "effect"
import { spawn } from "node:child_process"
import { writeFileSync } from "node:fs"
import { parseArgs } from "node:util"
import { Agent, request } from "undici"

// As the reference server runs (allocation-site pretenuring off): see ARCHITECTURE.md "The process".
V8Flags.apply()

if (typeof globalThis.gc !== "function") throw new Error("run with node --expose-gc")
const { values } = parseArgs({
  options: {
    streams: { type: "string", default: "600" },
    "chunk-delay-ms": { type: "string", default: "1000" },
    "cpu-prof": { type: "string" },
    // Route settings merged into the default route, to see what a policy costs (e.g. '{"retry":{"enabled":false}}').
    route: { type: "string", default: "{}" }
  }
})
const N = Number(values.streams)
const delay = Number(values["chunk-delay-ms"])

// The upstream in its own process, so its work and memory are not counted as the gateway's.
const child = spawn(process.execPath, ["--input-type=module", "-e",
  `import { MockUpstream } from "@breakwater/testing"
   const m = await MockUpstream.start({ words: 1000, chunkDelayMs: ${delay}, fast: true })
   process.stdout.write(m.url + "\\n")`], { stdio: ["ignore", "pipe", "inherit"] })
process.on("exit", () => child.kill())
const upstreamUrl = await new Promise((resolve) => child.stdout.once("data", (d) => resolve(String(d).trim())))

const scope = Effect.runSync(Scope.make())
const config = await Effect.runPromise(ConfigLoader.fromObject({
  server: { maxConcurrentRequests: Math.max(4096, 2 * N) },
  upstreams: { mock: { provider: "openai", baseUrl: upstreamUrl, models: ["m"], connections: Math.max(4096, 2 * N) } },
  routes: { m: { upstreams: ["mock"], ...JSON.parse(values.route) } }
}, {}))
const gateway = await Effect.runPromise(Scope.extend(GatewayBuilder.make(config), scope))
const running = await Effect.runPromise(Scope.extend(HttpHost.serve(gateway, { port: 0, logLevel: "error" }), scope))
const agent = new Agent({ connections: 2 * N })
const liveHeap = () => {
  globalThis.gc()
  globalThis.gc()
  return process.memoryUsage().heapUsed
}

const heapBefore = liveHeap()
const t0 = performance.now()
let started = 0
let chunks = 0
const failures = new Map()
const fail = (kind) => failures.set(kind, (failures.get(kind) ?? 0) + 1)
await new Promise((resolve) => {
  for (let i = 0; i < N; i++) {
    request(`${running.url}/v1/chat/completions`, {
      method: "POST",
      dispatcher: agent,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "m", messages: [{ role: "user", content: `held ${i}` }], stream: true }),
      headersTimeout: 0,
      bodyTimeout: 0
    }).then((res) => {
      if (res.statusCode !== 200) fail(`http ${res.statusCode}`)
      res.body.once("data", () => {
        if (++started === N) resolve()
      })
      res.body.on("data", () => chunks++)
      res.body.on("error", () => {})
    }, (error) => fail(error.code ?? "error"))
  }
})
const startSeconds = (performance.now() - t0) / 1000
await new Promise((r) => setTimeout(r, 2 * delay))

let profile
if (values["cpu-prof"] !== undefined) {
  const { Session } = await import("node:inspector/promises")
  profile = new Session()
  profile.connect()
  await profile.post("Profiler.enable")
  await profile.post("Profiler.start")
}
const c0 = process.cpuUsage()
const w0 = performance.now()
const k0 = chunks
await new Promise((r) => setTimeout(r, 8_000))
const cpu = process.cpuUsage(c0)
const wall = performance.now() - w0
const delivered = chunks - k0
if (profile !== undefined) {
  const { profile: p } = await profile.post("Profiler.stop")
  writeFileSync(values["cpu-prof"], JSON.stringify(p))
}
const heapHeld = liveHeap()
const cpuMs = (cpu.user + cpu.system) / 1000
console.log(JSON.stringify({
  streams: N,
  chunkDelayMs: delay,
  startSeconds: Number(startSeconds.toFixed(1)),
  failures: Object.fromEntries(failures),
  chunksPerSecond: Math.round(delivered / (wall / 1000)),
  cpuShareOfACore: Number((cpuMs / wall).toFixed(3)),
  cpuMsPerChunk: Number((cpuMs / delivered).toFixed(3)),
  heapKbPerHeldStream: Number(((heapHeld - heapBefore) / N / 1024).toFixed(1))
}))
process.exit(0)
