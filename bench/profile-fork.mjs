#!/usr/bin/env node
/**
 * What one forked fiber costs, the figure BENCHMARKS.md quotes under "Where the time and memory
 * go": µs of wall time and of CPU (user + system, GC included) per operation, for
 *   - `Effect.runPromise(Effect.succeed(1))` (the floor: running an effect at all),
 *   - `Effect.runPromise(Effect.fork(Effect.succeed(1)) + join)` (one fork),
 *   - `TimeLimit.race` of an effect against a timer (how a time limit runs: a fork),
 *   - `Effect.timeout` (Effect's own).
 * Each is run in rounds, interleaved, and the median round is reported.
 *
 *   node bench/profile-fork.mjs [--ops N] [--rounds N] [--json]
 */
import { TimeLimit } from "@breakwater/core"
import { Effect, Fiber } from "effect"
import { parseArgs } from "node:util"
import { markdownTable } from "./internal/markdown.mjs"

const { values: flags } = parseArgs({
  options: { ops: { type: "string", default: "20000" }, rounds: { type: "string", default: "5" }, json: { type: "boolean", default: false } }
})
const OPS = Number(flags.ops)
const ROUNDS = Number(flags.rounds)

const cases = [
  ["runPromise(succeed)", () => Effect.succeed(1)],
  ["fork + join", () => Effect.flatMap(Effect.fork(Effect.succeed(1)), Fiber.join)],
  ["TimeLimit.race", () => TimeLimit.race(Effect.succeed(1), 60_000, () => Effect.dieMessage("timed out"))],
  ["Effect.timeout", () => Effect.timeout(Effect.succeed(1), "60 seconds")]
]

/** µs of wall time and of CPU per op over `OPS` sequential runs. */
const measure = async (make) => {
  const cpu = process.cpuUsage()
  const started = performance.now()
  for (let i = 0; i < OPS; i++) await Effect.runPromise(make())
  const wall = performance.now() - started
  const used = process.cpuUsage(cpu)
  return { wallUs: (wall * 1_000) / OPS, cpuUs: (used.user + used.system) / OPS }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

for (const [, make] of cases) await measure(make) // warm-up
const rounds = cases.map(() => [])
for (let r = 0; r < ROUNDS; r++) {
  for (const [i, [, make]] of cases.entries()) rounds[i].push(await measure(make))
}
const results = cases.map(([name], i) => ({
  name,
  wallUs: median(rounds[i].map((m) => m.wallUs)),
  cpuUs: median(rounds[i].map((m) => m.cpuUs))
}))
const floor = results[0]
if (flags.json) {
  process.stdout.write(`${JSON.stringify({ ops: OPS, rounds: ROUNDS, results }, null, 2)}\n`)
} else {
  process.stdout.write(`${OPS} sequential ops per round, median of ${ROUNDS} rounds (node ${process.version})\n\n`)
  process.stdout.write(`${markdownTable(results.map((r) => ({
    operation: r.name,
    "µs wall / op": r.wallUs.toFixed(1),
    "µs CPU / op": r.cpuUs.toFixed(1),
    "µs wall over runPromise(succeed)": (r.wallUs - floor.wallUs).toFixed(1)
  })))}\n`)
}
