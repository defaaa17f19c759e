#!/usr/bin/env node
/**
 * The benchmark's upstream, in a process of its own: `@breakwater/testing`'s MockUpstream in
 * fast mode (no delays unless scripted), or the bench's own lean mock when MockUpstream is not
 * built (or with `--impl fast`). Prints `upstream listening on <url> (<impl>)`.
 *
 *   node bench/upstream.mjs [--port 0] [--words 50] [--impl auto|mock|fast]
 *
 * Under `bench/run.mjs` it is controlled over IPC: `{ id, op: "script", behaviors }`,
 * `{ id, op: "setDefault", behavior }`, `{ id, op: "reset" }`, each answered `{ id, ok }`.
 */
import { parseArgs } from "node:util"
import { startFastUpstream } from "./internal/fast-upstream.mjs"
import "./internal/orphan-guard.mjs"

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "0" },
    words: { type: "string", default: "50" },
    impl: { type: "string", default: "auto" }
  }
})
const port = Number(values.port)
const words = Number(values.words)

const startMock = async () => {
  const testing = await import("@breakwater/testing")
  const Mock = testing.MockUpstream
  if (Mock === undefined || typeof Mock.start !== "function") throw new Error("@breakwater/testing does not export MockUpstream.start (is packages/testing built?)")
  // Fast mode keeps no request log (which would grow with every request of a long run).
  const m = await Mock.start({ port, words, fast: true })
  return {
    impl: "mock",
    url: m.origin,
    port: m.port,
    script: (...behaviors) => m.script(...behaviors),
    setDefault: (behavior) => m.setDefault(behavior ?? {}),
    reset: () => {
      m.setDefault({})
      if (typeof m.reset === "function") m.reset()
    },
    served: () => m.received,
    close: () => m.close()
  }
}

const start = async () => {
  if (values.impl === "fast") return startFastUpstream({ port, words })
  try {
    return await startMock()
  } catch (error) {
    if (values.impl === "mock") throw error
    process.stderr.write(`upstream: MockUpstream unavailable (${error.message}); using the bench's fast mock\n`)
    return startFastUpstream({ port, words })
  }
}

const upstream = await start()
process.stdout.write(`upstream listening on ${upstream.url} (${upstream.impl})\n`)

if (process.send !== undefined) {
  process.send({ op: "ready", url: upstream.url, impl: upstream.impl })
  process.on("message", async (msg) => {
    try {
      let value
      if (msg.op === "script") await upstream.script(...msg.behaviors)
      else if (msg.op === "setDefault") await upstream.setDefault(msg.behavior)
      else if (msg.op === "reset") await upstream.reset()
      else if (msg.op === "served") value = upstream.served()
      else throw new Error(`unknown op ${msg.op}`)
      process.send({ id: msg.id, ok: true, value })
    } catch (error) {
      process.send({ id: msg.id, ok: false, error: String(error?.message ?? error) })
    }
  })
  // The orchestrator going away (even by SIGKILL) closes the channel: never outlive it.
  process.on("disconnect", () => process.exit(0))
}
const stop = () => { Promise.resolve(upstream.close()).finally(() => process.exit(0)) }
process.once("SIGTERM", stop)
process.once("SIGINT", stop)
