#!/usr/bin/env node
/**
 * The benchmark's upstream, in a process of its own: `@breakwater/testing`'s MockUpstream in
 * fast mode (no delays unless scripted), or the bench's own lean mock when MockUpstream is not
 * built (or with `--impl fast`). Prints `upstream listening on <url> (<impl>)`.
 *
 *   node bench/upstream.mjs [--port 0] [--words 50] [--impl auto|mock|fast]
 *
 * Under `bench/run.mjs` it is controlled over IPC: `{ id, op: "script", behaviors }`,
 * `{ id, op: "setDefault", behavior }`, `{ id, op: "reset" }`, each answered `{ id, ok }`;
 * `{ id, op: "stats" }` answers the responses served and how many of them were bursts.
 *
 * `setDefault({ burst: true })` makes every stream arrive back to back (all its events in one
 * write). MockUpstream has no such behaviour (it writes each event once the previous one has
 * been flushed), so under MockUpstream those requests are answered by the fast mock's responder
 * on MockUpstream's own server, with the same port and the same connections.
 */
import http from "node:http"
import { syncBuiltinESMExports } from "node:module"
import { parseArgs } from "node:util"
import { fastResponder, startFastUpstream } from "./internal/fast-upstream.mjs"
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

/**
 * Runs `start` with `http.createServer` wrapped so that requests go to `alternative` while
 * `useAlternative()` holds: the servers `start` creates answer both ways on one port.
 */
const withAlternative = async (start, useAlternative, alternative) => {
  const original = http.createServer
  http.createServer = (...args) => {
    const i = args.findIndex((a) => typeof a === "function")
    if (i >= 0) {
      const handler = args[i]
      args[i] = (req, res) => (useAlternative() ? alternative(req, res) : handler(req, res))
    }
    return original(...args)
  }
  syncBuiltinESMExports()
  try {
    return await start()
  } finally {
    http.createServer = original
    syncBuiltinESMExports()
  }
}

const startMock = async () => {
  const testing = await import("@breakwater/testing")
  const Mock = testing.MockUpstream
  if (Mock === undefined || typeof Mock.start !== "function") throw new Error("@breakwater/testing does not export MockUpstream.start (is packages/testing built?)")
  const burst = fastResponder({ words })
  let bursting = false
  // Fast mode keeps no request log (which would grow with every request of a long run).
  const m = await withAlternative(() => Mock.start({ port, words, fast: true }), () => bursting, burst.handle)
  return {
    impl: "mock",
    url: m.origin,
    port: m.port,
    script: (...behaviors) => m.script(...behaviors),
    setDefault: (behavior) => {
      bursting = behavior?.burst === true
      burst.setDefault(behavior)
      m.setDefault(bursting ? {} : behavior ?? {})
    },
    reset: () => {
      bursting = false
      burst.reset()
      m.setDefault({})
      if (typeof m.reset === "function") m.reset()
    },
    served: () => m.received + burst.served(),
    bursts: burst.bursts,
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
      else if (msg.op === "stats") value = { served: upstream.served(), bursts: upstream.bursts() }
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
