#!/usr/bin/env node
/**
 * What survives a scavenge: the default policy stack called in process (64 calls in flight against
 * the bench's upstream, no HTTP host in front), once per configuration, each in a fresh process
 * under `node --trace-gc-nvp`. For each it prints the CPU per call and, over the last 20
 * young-generation collections, the bytes that survived them, the bytes promoted to the old
 * generation and the time the collections paused the program.
 *
 *   node bench/gc-survivors.mjs [--calls 20000] [--rounds 3]
 *
 * The configurations (BENCHMARKS.md, "What survives a scavenge"):
 * - `before`: Effect's root fibers in its global `Set`, V8's allocation-site pretenuring on;
 * - `roots`: the root fibers in an `InFlightSet` (`HostRuntime.make` installs it);
 * - `roots + no pretenuring`: and `node --no-allocation-site-pretenuring` (measured, not adopted:
 *   BENCHMARKS.md says why).
 *
 * Needs the packages built (`npm run build`). The upstream runs on CPU 1 and the configuration
 * on CPU 0 when `taskset` works, as in `bench/run.mjs`.
 */
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { cpus } from "node:os"
import { canPin, startNode } from "./internal/procs.mjs"

const { values: flags } = parseArgs({
  options: {
    calls: { type: "string", default: "20000" },
    rounds: { type: "string", default: "3" },
    worker: { type: "string" },
    upstream: { type: "string" }
  }
})
const calls = Number(flags.calls)
const pinned = canPin(cpus().length)
const SELF = fileURLToPath(import.meta.url)

// --- the worker: one configuration, in its own process -------------------------------------
const worker = async (mode, url) => {
  const { HostRuntime, ConfigLoader, GatewayBuilder } = await import("@breakwater/gateway")
  const { RequestContext } = await import("@breakwater/core")
  const { Context, Effect, Exit, Layer, ManagedRuntime, Runtime, Scope } = await import("effect")
  // `before` keeps Effect's own root-fiber registry: a runtime with the host's scheduler only.
  const managed = mode === "before"
    ? ManagedRuntime.make(Layer.setScheduler(HostRuntime.hostScheduler()))
    : HostRuntime.make({ secrets: [], level: "warning" }).runtime
  const base = await managed.runtime()
  const config = await Effect.runPromise(ConfigLoader.fromObject({
    server: { host: "127.0.0.1", port: 0 },
    upstreams: { mock: { provider: "openai", baseUrl: `${url}/v1`, models: ["bench-model"], connections: 256 } },
    routes: { "bench-model": { upstreams: ["mock"] } }
  }))
  const scope = Effect.runSync(Scope.make())
  const gateway = await Effect.runPromise(Scope.extend(GatewayBuilder.make(config), scope))
  const request = { model: "bench-model", messages: [{ role: "user", content: "Say something." }] }
  // As a host starts a request: its own runtime over the host's, the context handed down.
  const call = () => new Promise((resolve, reject) => {
    const ctx = RequestContext.make({ requestId: "r" })
    const runtime = Runtime.make({ context: Context.add(base.context, RequestContext.RequestContext, ctx), fiberRefs: base.fiberRefs, runtimeFlags: base.runtimeFlags })
    Runtime.runFork(runtime)(gateway.model.generate(request, { context: ctx }))
      .addObserver((exit) => Exit.isSuccess(exit) ? resolve(JSON.stringify(exit.value)) : reject(new Error(String(exit.cause))))
  })
  const run = async () => {
    let started = 0
    const loop = async () => { while (started++ < calls) await call() }
    const cpu0 = process.cpuUsage()
    await Promise.all(Array.from({ length: 64 }, loop))
    const cpu = process.cpuUsage(cpu0)
    return (cpu.user + cpu.system) / calls
  }
  await run() // warm-up
  process.stdout.write(`cpu-per-call-us ${(await run()).toFixed(1)}\n`)
  process.exit(0)
}

// --- the orchestrator ------------------------------------------------------------------------
const configurations = [
  { name: "before", mode: "before", node: [] },
  { name: "roots in an InFlightSet", mode: "roots", node: [] },
  { name: "roots + --no-allocation-site-pretenuring", mode: "roots", node: ["--no-allocation-site-pretenuring"] }
]

const measure = (configuration, url) => new Promise((resolve, reject) => {
  const pin = pinned ? ["taskset", "-c", "0"] : []
  const argv = [...configuration.node, "--trace-gc-nvp", SELF, "--worker", configuration.mode, "--upstream", url, "--calls", String(calls)]
  const child = pin.length > 0 ? spawn(pin[0], [...pin.slice(1), process.execPath, ...argv]) : spawn(process.execPath, argv)
  let out = ""
  child.stdout.on("data", (d) => { out += d })
  child.stderr.on("data", (d) => { out += d })
  child.once("exit", (code) => {
    if (code !== 0) return reject(new Error(`${configuration.name} exited ${code}\n${out.slice(-2000)}`))
    const cpu = Number(/cpu-per-call-us ([\d.]+)/.exec(out)?.[1])
    const scavenges = out.split("\n").filter((l) => / gc=s /.test(l)).slice(-20).map((l) => {
      const field = (k) => Number(new RegExp(` ${k}=([\\d.]+)`).exec(l)?.[1] ?? 0)
      return { pause: field("pause"), survived: field("new_space_survived"), promoted: field("promoted"), allocated: field("allocated") }
    })
    const sum = (k) => scavenges.reduce((a, s) => a + s[k], 0)
    resolve({ cpu, scavenges: scavenges.length, pauseMs: sum("pause"), survivedMB: sum("survived") / 1e6, promotedMB: sum("promoted") / 1e6, allocatedMB: sum("allocated") / 1e6 })
  })
})

const main = async () => {
  const upstream = await startNode({ name: "upstream", args: [fileURLToPath(new URL("./upstream.mjs", import.meta.url)), "--port", "0"], cpu: pinned ? 1 : undefined, ready: /upstream listening on (http:\/\/\S+)/ })
  try {
    const results = Object.fromEntries(configurations.map((c) => [c.name, []]))
    for (let r = 0; r < Number(flags.rounds); r++) {
      for (const c of configurations) results[c.name].push(await measure(c, upstream.url))
    }
    const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
    console.log(`node bench/gc-survivors.mjs --calls ${calls} --rounds ${flags.rounds}: medians; the last 20 scavenges of each run\n`)
    console.log("| configuration | CPU µs per call | survived (MB) | promoted (MB) | scavenge pauses (ms) | allocated (MB) |")
    console.log("|---|---|---|---|---|---|")
    for (const c of configurations) {
      const rs = results[c.name]
      const m = (k) => median(rs.map((x) => x[k])).toFixed(k === "cpu" ? 1 : 2)
      console.log(`| ${c.name} | ${m("cpu")} | ${m("survivedMB")} | ${m("promotedMB")} | ${m("pauseMs")} | ${m("allocatedMB")} |`)
    }
  } finally {
    await upstream.stop()
  }
}

if (flags.worker !== undefined) await worker(flags.worker, flags.upstream)
else await main()
