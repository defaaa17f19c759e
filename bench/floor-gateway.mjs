#!/usr/bin/env node
/**
 * The floor: a plain Node gateway that understands the traffic and applies no policy. What any
 * gateway built on Node has to do at least, so a missed target can be read against what plain
 * Node achieves on the same machine in the same run:
 *
 * - `node:http` in front, a keep-alive `undici` Pool behind (the bare proxy's sizes);
 * - the request JSON parsed and re-serialised, a non-streaming response too;
 * - every upstream SSE event parsed (`JSON.parse`) and re-encoded (`JSON.stringify`), the events
 *   of one socket read written in one `res.write`;
 * - backpressure from the client socket to the upstream body (a full client socket pauses the
 *   upstream read), and a client that goes away cancels the upstream call.
 *
 *   node bench/floor-gateway.mjs --upstream http://127.0.0.1:PORT [--port 0] [--connections 8192]
 *
 * With `BENCH_FLOOR_EFFECT=1` in its environment (`BENCH_FLOOR_EFFECT=1 node bench/run.mjs
 * --targets baseline,floor ...`), each upstream call is also one Effect fiber: an `Effect.async`
 * around the call, started with `runFork` on the gateway's own host runtime (`HostRuntime.make`:
 * its scheduler and its root-fiber registry), and ended when the response (a stream: its last
 * byte) is through, and nothing else. That is the least a
 * gateway that runs each attempt as an Effect, as issue #19's design asks, must pay; it shows
 * what is left of a target once that is paid.
 *
 * With `BENCH_FLOOR_JOURNAL=1`, each stream is also journaled as plainly as Node allows, for what
 * the gateway's reconnect journal (on by default) adds to be read against: the stream gets an
 * id (`bws_` and 32 hex digits, in the `x-breakwater-stream-id` header), a `retry:` hint, and
 * every event an `id: <streamId>:<seq>` line, `[DONE]` included; each write is encoded to UTF-8
 * once, written and kept as those bytes (with its events' lengths) in a Map, the oldest stream
 * dropped past 2,500 (the gateway's default per client key) and any stream 5 minutes after it
 * finished. No replay endpoint: keeping what a replay needs is the cost a stream pays. As
 * `--targets …,floor-journal` in `bench/run.mjs`.
 *
 * Prints `floor listening on <url>`.
 */
import { failUpstream, forward, proxyArgs, serve, upstreamPool } from "./internal/proxy-server.mjs"
import "./internal/orphan-guard.mjs"
import { randomUUID } from "node:crypto"

const args = proxyArgs()
const pool = upstreamPool(args)

/** Runs `start(done)` inside one Effect fiber that ends when `done` is called. */
let inFiber = (start) => start(() => {})
if (process.env.BENCH_FLOOR_EFFECT === "1") {
  const { Effect } = await import("effect")
  const { HostRuntime } = await import("@breakwater/gateway")
  const { runtime } = HostRuntime.make({ secrets: [], level: "warning" })
  inFiber = (start) => runtime.runFork(Effect.async((resume) => start(() => resume(Effect.void))))
}

const badRequest = (res, message) => {
  const body = JSON.stringify({ error: { message, type: "invalid_request_error" } })
  res.writeHead(400, { "content-type": "application/json", "content-length": Buffer.byteLength(body) })
  res.end(body)
}

/** The journal (`BENCH_FLOOR_JOURNAL=1`): stream id → its writes and their events' lengths. */
const journal = process.env.BENCH_FLOOR_JOURNAL === "1" ? new Map() : undefined
const journalCap = 2500
const finishedTtlMs = 5 * 60_000
const journalOpen = () => {
  const id = `bws_${randomUUID().replaceAll("-", "")}`
  const entry = { writes: [], lengths: [], seq: 0, finishedAt: 0 }
  journal.set(id, entry)
  if (journal.size > journalCap) journal.delete(journal.keys().next().value)
  return [id, entry]
}
const journalFinish = (entry) => {
  entry.finishedAt = Date.now()
  // Oldest first: expired ones leave from the front.
  for (const [id, e] of journal) {
    if (e.finishedAt === 0 || e.finishedAt > entry.finishedAt - finishedTtlMs) break
    journal.delete(id)
  }
}

/** One SSE event (without its blank-line terminator), its data re-encoded. */
const reencode = (event, id) => {
  let data
  let other = ""
  for (const line of event.split("\n")) {
    if (line.startsWith("data:")) {
      const value = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5)
      data = data === undefined ? value : `${data}\n${value}`
    } else if (line !== "") {
      other += `${line}\n`
    }
  }
  if (data === undefined) return `${other}\n`
  if (id !== undefined) other += `id: ${id}\n`
  if (data === "[DONE]") return `${other}data: [DONE]\n\n`
  return `${other}data: ${JSON.stringify(JSON.parse(data))}\n\n`
}

const relayStream = (upstreamBody, res, done) => {
  const [streamId, entry] = journal === undefined ? [] : journalOpen()
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", ...(streamId === undefined ? {} : { "x-breakwater-stream-id": streamId }) })
  upstreamBody.setEncoding("utf8")
  let pending = ""
  let hint = entry === undefined ? "" : "retry: 1000\n\n"
  let paused = false
  const resume = () => {
    paused = false
    upstreamBody.resume()
  }
  upstreamBody.on("data", (text) => {
    pending = pending === "" ? text : pending + text
    let out = ""
    let start = 0
    let end
    while ((end = pending.indexOf("\n\n", start)) !== -1) {
      if (entry === undefined) out += reencode(pending.slice(start, end))
      else {
        const event = reencode(pending.slice(start, end), `${streamId}:${++entry.seq}`)
        entry.lengths.push(event.length)
        out += event
      }
      start = end + 2
    }
    if (start > 0) pending = pending.slice(start)
    if (entry !== undefined && out !== "") {
      // What was written is what is kept, as bytes encoded once: kept as text (the string
      // written, flattened by the write) it cost ~4% more per back-to-back stream, kept as the
      // unflattened string tree of its events ~65% more (pinned-core alternation, BENCHMARKS.md).
      const bytes = Buffer.from(hint + out)
      entry.writes.push(bytes)
      out = bytes
      hint = ""
    }
    // One write per read, however many events it carried.
    if (out !== "" && !res.write(out) && !paused) {
      paused = true
      upstreamBody.pause()
      res.once("drain", resume)
    }
  })
  upstreamBody.on("end", () => {
    done()
    if (entry !== undefined) journalFinish(entry)
    res.end()
  })
  upstreamBody.on("error", (error) => {
    done()
    failUpstream(res, error)
  })
}

const relayWhole = async (statusCode, upstreamBody, res, done) => {
  const text = await upstreamBody.text()
  let out = text
  try {
    out = JSON.stringify(JSON.parse(text))
  } catch { /* an upstream error page: passed on as it is */ }
  done()
  res.writeHead(statusCode, { "content-type": "application/json", "content-length": Buffer.byteLength(out) })
  res.end(out)
}

serve({
  name: "floor",
  port: args.port,
  pool,
  handle: (req, res, raw) => {
    let request
    try {
      request = JSON.parse(raw)
    } catch (error) {
      return badRequest(res, `the request body is not JSON: ${error.message}`)
    }
    if (request === null || typeof request !== "object" || !Array.isArray(request.messages)) {
      return badRequest(res, "the request needs a messages array")
    }
    const body = JSON.stringify(request)
    const headers = forward(req.headers)
    headers["content-length"] = String(Buffer.byteLength(body))
    const abort = new AbortController()
    res.on("close", () => { if (!res.writableFinished) abort.abort() })
    inFiber((done) =>
      pool.request({ path: req.url, method: req.method, headers, body, signal: abort.signal }).then(
        ({ statusCode, body: upstreamBody }) => {
          if (request.stream === true && statusCode === 200) return relayStream(upstreamBody, res, done)
          return relayWhole(statusCode, upstreamBody, res, done)
        }
      ).catch((error) => {
        done()
        failUpstream(res, error)
      }))
  }
})
