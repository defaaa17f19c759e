/**
 * A lean OpenAI-compatible upstream for the benchmark, used when `@breakwater/testing`'s
 * MockUpstream is not built yet (or with `--impl fast`). It implements the subset of the
 * MockUpstream behaviours the bench scripts (the `Status` and `Cut` faults, `headers`,
 * `chunkDelayMs`, `firstChunkDelayMs`, `words`), with responses serialized once so the upstream
 * costs as little CPU as possible: it shares a core with the load generator. One behaviour is
 * the bench's own: `burst` writes a whole stream (every event, the tail and `[DONE]`) in one
 * write, so the server under test reads many SSE events at once (`bench/upstream.mjs` serves it
 * with this responder under MockUpstream too).
 */
import { createServer } from "node:http"

const words = (n) => Array.from({ length: n }, (_, i) => `w${i} `)

const chunkOf = (id, delta, finish) =>
  `data: ${JSON.stringify({
    id, object: "chat.completion.chunk", created: 1700000000, model: "bench-model",
    choices: [{ index: 0, delta, finish_reason: finish }]
  })}\n\n`

const render = (n) => {
  const id = "chatcmpl-bench"
  const ws = words(n)
  const text = ws.join("")
  const json = Buffer.from(JSON.stringify({
    id, object: "chat.completion", created: 1700000000, model: "bench-model",
    choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: "stop" }],
    usage: { prompt_tokens: 8, completion_tokens: n, total_tokens: n + 8 }
  }))
  // One SSE event per word: the first carries the role, the last the finish reason and usage.
  const events = ws.map((w, i) => Buffer.from(chunkOf(id, i === 0 ? { role: "assistant", content: w } : { content: w }, null)))
  const tail = Buffer.from(
    chunkOf(id, {}, "stop") +
    `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created: 1700000000, model: "bench-model", choices: [], usage: { prompt_tokens: 8, completion_tokens: n, total_tokens: n + 8 } })}\n\n` +
    "data: [DONE]\n\n"
  )
  return { json, events, tail, burst: Buffer.concat([...events, tail]) }
}

/**
 * The request handler of the fast upstream and its controls, so it can serve on a server of
 * its own or beside another upstream.
 *
 * @param {{ words?: number }} options
 */
export const fastResponder = ({ words: defaultWords = 50 } = {}) => {
  const cache = new Map()
  const rendered = (n) => {
    let r = cache.get(n)
    if (r === undefined) cache.set(n, r = render(n))
    return r
  }
  let defaultBehavior = {}
  const queue = []
  let served = 0
  let bursts = 0

  const handle = (req, res) => {
    if (req.method !== "POST" || !req.url.endsWith("/chat/completions")) {
      res.writeHead(404, { "content-type": "application/json" }).end(`{"error":{"message":"not found"}}`)
      return
    }
    const behavior = queue.length > 0 ? queue.shift() : defaultBehavior
    const body = []
    req.on("data", (c) => body.push(c))
    req.on("end", () => {
      served++
      const fault = behavior.fault
      if (fault?._tag === "Status" && fault.status >= 400) {
        res.writeHead(fault.status, { "content-type": "application/json", ...behavior.headers })
        res.end(JSON.stringify({ error: { message: `scripted ${fault.status}`, type: "server_error" } }))
        return
      }
      // The stream flag is found without parsing the whole body: the bench sends compact JSON.
      const stream = Buffer.concat(body).includes('"stream":true')
      const r = rendered(behavior.words ?? defaultWords)
      if (!stream) {
        res.writeHead(200, { "content-type": "application/json", "content-length": r.json.length, ...behavior.headers })
        res.end(r.json)
        return
      }
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", ...behavior.headers })
      if (behavior.burst === true) {
        bursts++
        res.end(r.burst)
        return
      }
      const cut = fault?._tag === "Cut" ? fault.afterChunks : undefined
      const delay = behavior.chunkDelayMs ?? 0
      const first = behavior.firstChunkDelayMs ?? 0
      let i = 0
      let timer
      const next = () => {
        timer = undefined
        if (cut !== undefined && i >= cut) {
          res.socket?.destroy()
          return
        }
        if (i >= r.events.length) {
          res.end(r.tail)
          return
        }
        res.write(r.events[i++])
        // With no delay, each event still goes out on its own turn of the event loop, so it
        // reaches the server under test as its own read, as a provider's tokens do.
        if (delay > 0) timer = setTimeout(next, delay)
        else immediate = setImmediate(next)
      }
      let immediate
      res.on("close", () => {
        if (timer !== undefined) clearTimeout(timer)
        if (immediate !== undefined) clearImmediate(immediate)
      })
      if (first > 0) timer = setTimeout(next, first)
      else next()
    })
  }
  return {
    handle,
    script: (...behaviors) => { queue.push(...behaviors) },
    setDefault: (behavior) => { defaultBehavior = behavior ?? {} },
    reset: () => { queue.length = 0; defaultBehavior = {} },
    served: () => served,
    bursts: () => bursts
  }
}

/**
 * Starts the fast upstream on 127.0.0.1.
 *
 * @param {{ port?: number, words?: number }} options
 */
export const startFastUpstream = async ({ port = 0, words } = {}) => {
  const responder = fastResponder({ words })
  const server = createServer(responder.handle)
  server.keepAliveTimeout = 60_000
  server.headersTimeout = 65_000
  server.requestTimeout = 0
  server.maxRequestsPerSocket = 0
  await new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(port, "127.0.0.1", resolve)
  })
  const actual = server.address().port
  return {
    impl: "fast",
    url: `http://127.0.0.1:${actual}`,
    port: actual,
    script: responder.script,
    setDefault: responder.setDefault,
    reset: responder.reset,
    served: responder.served,
    bursts: responder.bursts,
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(() => resolve()) })
  }
}
