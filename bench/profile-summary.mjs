#!/usr/bin/env node
/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`, e.g. `node bench/run.mjs --cpu-prof`)
 * into the shares BENCHMARKS.md quotes under "Where the time and memory go":
 *   - busy time (every sample but `(idle)`),
 *   - garbage collection (`(garbage collector)`),
 *   - Effect run loops entered from the host scheduler with no Breakwater frame below them
 *     (samples whose stack has a frame from `effect` and none from a Breakwater package, the
 *     host scheduler itself aside),
 *   - Breakwater code (samples with a Breakwater frame on the stack), and the self time grouped by
 *     the innermost Breakwater frame (its package and function),
 *   - the rest (node internals, undici, `(program)`),
 *   - the largest self-time functions overall.
 *
 *   node bench/profile-summary.mjs <file.cpuprofile | dir> [--top N] [--skip SECONDS] [--json]
 *
 * `--skip` leaves out the first seconds of each profile (the server's start-up: module loading
 * and compilation, which a short run would otherwise be dominated by).
 * A directory sums every `.cpuprofile` in it whose process shows Breakwater frames (the gateway's,
 * not the load generator's or the mock upstream's).
 */
import { readdirSync, readFileSync, statSync } from "node:fs"
import { basename, join } from "node:path"
import { parseArgs } from "node:util"

const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    top: { type: "string", default: "12" },
    skip: { type: "string", default: "0" },
    json: { type: "boolean", default: false }
  }
})
if (positionals.length !== 1) {
  process.stderr.write("usage: node bench/profile-summary.mjs <file.cpuprofile | dir> [--top N] [--skip SECONDS] [--json]\n")
  process.exit(2)
}

/** Where a frame comes from: a Breakwater package (its name), effect, or neither. */
const BREAKWATER = /\/(?:packages|examples)\/([a-z-]+)\/(?:dist|src)\//
const EFFECT = /\/node_modules\/(?:effect|@effect\/[a-z-]+)\//
// The host scheduler (gateway's HostRuntime) sits at the bottom of every fiber it resumes: it is
// the entry point, not Breakwater work, so it counts as no Breakwater frame.
const SCHEDULER = /\/packages\/gateway\/(?:dist|src)\/HostRuntime\.[jt]s$/
const breakwaterPackage = (url) => (url.includes("/node_modules/") || SCHEDULER.test(url) ? undefined : BREAKWATER.exec(url)?.[1])

/** Milliseconds per node, split by category, for one profile. */
const summarise = (profile, skipMicros) => {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  // Sample i lasts until sample i + 1 (timeDeltas[i + 1], µs); the last one gets the mean.
  const deltas = profile.timeDeltas
  const mean = deltas.reduce((a, b) => a + b, 0) / Math.max(1, deltas.length)
  const totals = { total: 0, idle: 0, gc: 0, program: 0, effectOnly: 0, breakwater: 0, other: 0 }
  const byInnermost = new Map()
  const bySelf = new Map()
  const memo = new Map()
  const classify = (id) => {
    const known = memo.get(id)
    if (known !== undefined) return known
    let innermost
    let effect = false
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const url = byId.get(at).callFrame.url
      const pkg = breakwaterPackage(url)
      if (pkg !== undefined && innermost === undefined) {
        const frame = byId.get(at).callFrame
        innermost = `${pkg}/${basename(frame.url)}:${frame.lineNumber + 1} ${frame.functionName || "(anonymous)"}`
      }
      if (EFFECT.test(url)) effect = true
    }
    const result = { innermost, effect }
    memo.set(id, result)
    return result
  }
  let elapsed = 0
  profile.samples.forEach((id, i) => {
    elapsed += deltas[i] ?? 0
    if (elapsed < skipMicros) return
    const ms = (deltas[i + 1] ?? mean) / 1_000
    const node = byId.get(id)
    const name = node.callFrame.functionName
    totals.total += ms
    if (name === "(idle)") return void (totals.idle += ms)
    if (name === "(garbage collector)") totals.gc += ms
    else if (name === "(program)") totals.program += ms
    else {
      const { effect, innermost } = classify(id)
      if (innermost !== undefined) {
        totals.breakwater += ms
        byInnermost.set(innermost, (byInnermost.get(innermost) ?? 0) + ms)
      } else if (effect) totals.effectOnly += ms
      else totals.other += ms
    }
    const self = `${name || "(anonymous)"} ${basename(node.callFrame.url)}:${node.callFrame.lineNumber + 1}`
    bySelf.set(self, (bySelf.get(self) ?? 0) + ms)
  })
  return { totals, byInnermost, bySelf }
}

const merge = (summaries) => {
  const totals = { total: 0, idle: 0, gc: 0, program: 0, effectOnly: 0, breakwater: 0, other: 0 }
  const byInnermost = new Map()
  const bySelf = new Map()
  for (const s of summaries) {
    for (const k of Object.keys(totals)) totals[k] += s.totals[k]
    for (const [k, v] of s.byInnermost) byInnermost.set(k, (byInnermost.get(k) ?? 0) + v)
    for (const [k, v] of s.bySelf) bySelf.set(k, (bySelf.get(k) ?? 0) + v)
  }
  return { totals, byInnermost, bySelf }
}

const target = positionals[0]
const files = statSync(target).isDirectory()
  ? readdirSync(target).filter((f) => f.endsWith(".cpuprofile")).map((f) => join(target, f))
  : [target]
const summaries = files.map((f) => ({ file: f, ...summarise(JSON.parse(readFileSync(f, "utf8")), Number(flags.skip) * 1e6) }))
// In a directory, the gateway's profiles are those with Breakwater frames.
const chosen = files.length === 1 ? summaries : summaries.filter((s) => s.totals.breakwater > 0)
if (chosen.length === 0) throw new Error(`no profile with Breakwater frames in ${target}`)
const { byInnermost, bySelf, totals } = merge(chosen)
const busy = totals.total - totals.idle
const pct = (ms) => `${((100 * ms) / busy).toFixed(1)}%`
const top = Number(flags.top)
const rank = (m) => [...m].sort((a, b) => b[1] - a[1]).slice(0, top)

if (flags.json) {
  process.stdout.write(`${JSON.stringify({
    profiles: chosen.map((s) => s.file),
    busyMs: Math.round(busy),
    shares: {
      gc: totals.gc / busy,
      effectRunLoops: totals.effectOnly / busy,
      breakwater: totals.breakwater / busy,
      program: totals.program / busy,
      other: totals.other / busy
    },
    innermostBreakwater: Object.fromEntries(rank(byInnermost).map(([k, v]) => [k, v / busy])),
    self: Object.fromEntries(rank(bySelf).map(([k, v]) => [k, v / busy]))
  }, null, 2)}\n`)
} else {
  const lines = [
    `profiles: ${chosen.map((s) => s.file).join(", ")}`,
    `busy: ${(busy / 1_000).toFixed(1)} s of ${(totals.total / 1_000).toFixed(1)} s sampled`,
    "",
    "share of busy time",
    `  Effect run loops, no Breakwater frame below  ${pct(totals.effectOnly)}`,
    `  garbage collection                           ${pct(totals.gc)}`,
    `  under a Breakwater frame                     ${pct(totals.breakwater)}`,
    `  (program): native, unattributed              ${pct(totals.program)}`,
    `  other (node internals, undici, ...)          ${pct(totals.other)}`,
    "",
    `innermost Breakwater frame (self time below it), top ${top}`,
    ...rank(byInnermost).map(([k, v]) => `  ${pct(v).padStart(6)}  ${k}`),
    "",
    `self time by function, top ${top}`,
    ...rank(bySelf).map(([k, v]) => `  ${pct(v).padStart(6)}  ${k}`)
  ]
  process.stdout.write(`${lines.join("\n")}\n`)
}
