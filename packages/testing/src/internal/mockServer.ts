import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo, Socket } from "node:net"
import * as Text from "./mockText.js"

export interface Behavior {
  readonly status?: number | undefined
  readonly headers?: Readonly<Record<string, string>> | undefined
  readonly message?: string | undefined
  readonly refuse?: boolean | undefined
  readonly resetBeforeHeaders?: boolean | undefined
  readonly stallBeforeHeaders?: boolean | undefined
  readonly headersDelayMs?: number | undefined
  readonly firstChunkDelayMs?: number | undefined
  readonly chunkDelayMs?: number | undefined
  readonly cutAfterChunks?: number | undefined
  readonly endWithoutTerminator?: boolean | undefined
  readonly stallAfterChunks?: number | undefined
  readonly malformedAfterChunks?: number | undefined
  readonly errorEventAfterChunks?: number | undefined
  readonly pingEveryMs?: number | undefined
  readonly splitUtf8?: boolean | undefined
  readonly toolCall?: boolean | undefined
  readonly words?: number | undefined
  readonly text?: string | undefined
  readonly model?: string | undefined
  readonly overlap?: number | undefined
  readonly restart?: boolean | undefined
  readonly rejectPrefill?: boolean | undefined
}

export interface RecordedRequest {
  readonly method: string
  readonly path: string
  readonly headers: IncomingHttpHeaders
  readonly body: any
  readonly at: number
  /** The behavior applied. */
  readonly behavior: Behavior
  /** Whether the client went away before the response ended (not counting the mock's own cuts and `stop`). */
  readonly clientAborted: boolean
  /** Resolves with `clientAborted` once the exchange is over. */
  readonly closed: Promise<boolean>
}

export interface Options {
  readonly port?: number | undefined
  readonly host?: string | undefined
  readonly words?: number | undefined
  readonly seed?: number | undefined
  /** Default delay between stream chunks (ms); 0 writes them back to back. */
  readonly chunkDelayMs?: number | undefined
  /** Benchmark mode: rendered answers are cached per request body, and requests are counted but not logged. */
  readonly fast?: boolean | undefined
  readonly maxRequests?: number | undefined
}

export interface ChaosOptions {
  readonly rate: number
  readonly behaviors: ReadonlyArray<Behavior>
  readonly seed?: number | undefined
}

type Format = "openai" | "anthropic"

interface Exchange {
  /** Set when the mock itself ends the exchange abnormally (a cut, a reset, `stop`). */
  byMock: boolean
}

const errorTypes: Record<number, [openai: string, anthropic: string, code: string | null]> = {
  400: ["invalid_request_error", "invalid_request_error", null],
  401: ["invalid_request_error", "authentication_error", "invalid_api_key"],
  403: ["invalid_request_error", "permission_error", null],
  404: ["invalid_request_error", "not_found_error", "model_not_found"],
  413: ["invalid_request_error", "request_too_large", null],
  429: ["requests", "rate_limit_error", "rate_limit_exceeded"],
  500: ["server_error", "api_error", null],
  502: ["server_error", "api_error", null],
  503: ["server_error", "api_error", null],
  504: ["server_error", "api_error", null],
  529: ["server_error", "overloaded_error", null]
}

const errorBody = (format: Format, status: number, message: string): string => {
  const [openai, anthropic, code] = errorTypes[status] ?? ["server_error", "api_error", null]
  return format === "openai"
    ? JSON.stringify({ error: { message, type: openai, param: null, code } })
    : JSON.stringify({ type: "error", error: { type: anthropic, message } })
}

const defaultMessage = (status: number): string =>
  status === 429 ? "Rate limit reached for requests. Please try again later." :
  status === 529 ? "Overloaded" :
  status >= 500 ? "The server had an error while processing your request. Sorry about that!" :
  status === 401 ? "Incorrect API key provided." :
  status === 403 ? "Your API key does not have permission to use the specified resource." :
  status === 404 ? "The model does not exist or you do not have access to it." : "Invalid request."

/** A xorshift PRNG, so chaos is reproducible from its seed. */
const prng = (seed: number) => {
  let s = (seed >>> 0) || 0x9e3779b9
  return () => {
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    return s / 0x100000000
  }
}

/** Splits a frame in two inside its first multi-byte character (or in the middle). */
const splitInsideCharacter = (bytes: Buffer): [Buffer, Buffer] => {
  let at = -1
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i]! >= 0xc0) {
      at = i + 1
      break
    }
  }
  if (at < 0) at = bytes.length >> 1
  return [bytes.subarray(0, at), bytes.subarray(at)]
}

const noop = () => {}

interface Frames {
  /** Frames before the content (role chunk; Anthropic's message_start, block start and ping). */
  readonly head: ReadonlyArray<Buffer>
  /** One frame per content chunk. */
  readonly content: ReadonlyArray<Buffer>
  /** Frames after the content, the terminator excepted. */
  readonly tail: ReadonlyArray<Buffer>
  readonly terminator: Buffer
}

/** What a request gets, rendered once (and, in fast mode, cached per behavior and body). */
type Rendered =
  | { readonly _tag: "error"; readonly status: number; readonly body: Buffer }
  | { readonly _tag: "json"; readonly body: Buffer }
  | { readonly _tag: "stream"; readonly frames: Frames }

const keepAlive = Buffer.from(": keep-alive\n\n")
const anthropicPing = Buffer.from(`event: ping\ndata: {"type": "ping"}\n\n`)
const malformed = {
  openai: Buffer.from("data: {\"id\":\"broken\",\"choices\":[{\"delta\":{\"content\n\n"),
  anthropic: Buffer.from("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\n\n")
}
const errorEvent = {
  openai: Buffer.from(`data: ${JSON.stringify({ error: { message: "The server had an error while processing your request. Sorry about that!", type: "server_error", param: null, code: null } })}\n\n`),
  anthropic: Buffer.from(`event: error\ndata: ${JSON.stringify({ type: "error", error: { type: "overloaded_error", message: "Overloaded" } })}\n\n`)
}

let created = 1_732_000_000

export class MockServer {
  readonly requests: Array<RecordedRequest> = []
  private readonly maxRequests: number
  /** Requests received since the last reset (also counted in fast mode, which keeps no log). */
  received = 0
  private queue: Array<Behavior> = []
  private fallback: Behavior = {}
  private chaosSettings: { rate: number; behaviors: ReadonlyArray<Behavior>; random: () => number } | undefined
  private readonly sockets = new Set<Socket>()
  private readonly open = new Map<ServerResponse, Exchange>()
  private readonly waiters: Array<{ n: number; resolve: () => void }> = []
  private readonly cache = new WeakMap<Behavior, Map<string, Rendered>>()
  private server: Server | undefined
  private counter = 0
  port = 0
  readonly host: string
  readonly words: number
  readonly chunkDelayMs: number
  readonly fast: boolean

  constructor(readonly options: Options) {
    this.host = options.host ?? "127.0.0.1"
    this.words = options.words ?? 24
    this.chunkDelayMs = options.chunkDelayMs ?? 0
    this.fast = options.fast === true
    this.maxRequests = options.maxRequests ?? Infinity
  }

  get openConnections(): number {
    return this.sockets.size
  }

  /** Responses still being written (streams in flight, stalls, delayed headers). */
  get openResponses(): number {
    return this.open.size
  }

  script(behaviors: ReadonlyArray<Behavior>): void {
    this.queue.push(...behaviors)
  }

  setDefault(behavior: Behavior): void {
    this.fallback = behavior
  }

  chaos(options: ChaosOptions | undefined): void {
    this.chaosSettings = options === undefined || options.rate <= 0 || options.behaviors.length === 0
      ? undefined
      : { rate: options.rate, behaviors: options.behaviors, random: prng(options.seed ?? this.options.seed ?? 1) }
  }

  reset(): void {
    this.requests.length = 0
    this.received = 0
    this.queue = []
    this.fallback = {}
    this.chaosSettings = undefined
  }

  waitFor(n: number, timeoutMs: number): Promise<void> {
    if (this.received >= n) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const waiter = { n, resolve: () => (clearTimeout(timer), resolve()) }
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1)
        reject(new Error(`MockUpstream: ${this.received} of ${n} requests after ${timeoutMs} ms`))
      }, timeoutMs)
      this.waiters.push(waiter)
    })
  }

  listen(port: number): Promise<void> {
    if (this.server !== undefined) return Promise.resolve()
    const server = createServer({ keepAliveTimeout: 30_000, requestTimeout: 0 }, (req, res) => this.handle(req, res))
    server.on("connection", (socket) => {
      this.sockets.add(socket)
      socket.on("close", () => this.sockets.delete(socket))
    })
    server.on("clientError", (_error, socket) => socket.destroy())
    this.server = server
    return new Promise((resolve, reject) => {
      server.once("error", reject)
      server.listen(port, this.host, () => {
        server.off("error", reject)
        this.port = (server.address() as AddressInfo).port
        resolve()
      })
    })
  }

  close(): Promise<void> {
    const server = this.server
    this.server = undefined
    if (server === undefined) return Promise.resolve()
    for (const [res, exchange] of this.open) {
      exchange.byMock = true
      res.destroy()
    }
    // Wait for every socket's close, so `openConnections` is 0 and the port is free once this resolves.
    const closing: Array<Promise<void>> = [new Promise((resolve) => server.close(() => resolve()))]
    for (const socket of this.sockets) {
      closing.push(new Promise((resolve) => socket.once("close", () => resolve())))
      socket.destroy()
    }
    return Promise.all(closing).then(noop)
  }

  private next(): Behavior {
    const scripted = this.queue.shift()
    if (scripted !== undefined) return scripted
    const chaos = this.chaosSettings
    if (chaos !== undefined && chaos.random() < chaos.rate) {
      return chaos.behaviors[Math.floor(chaos.random() * chaos.behaviors.length)]!
    }
    return this.fallback
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    // A client that resets mid-request must not crash the test process.
    req.on("error", noop)
    res.on("error", noop)
    const parts: Array<Buffer> = []
    req.on("data", (part: Buffer) => parts.push(part))
    req.on("end", () => this.received_(req, res, parts))
  }

  private received_(req: IncomingMessage, res: ServerResponse, parts: Array<Buffer>): void {
    const method = req.method ?? "GET"
    const url = req.url ?? "/"
    const q = url.indexOf("?")
    const path = q < 0 ? url : url.slice(0, q)
    const raw = parts.length === 0 ? "" : (parts.length === 1 ? parts[0]! : Buffer.concat(parts)).toString("utf8")
    const behavior = method === "POST" ? this.next() : {}
    const exchange: Exchange = { byMock: false }
    const cached = this.fast ? this.cache.get(behavior)?.get(raw) : undefined
    let body: any
    if (cached === undefined && raw.length > 0) {
      try {
        body = JSON.parse(raw)
      } catch {
        body = undefined
      }
    }
    if (!this.fast) {
      let settle!: (aborted: boolean) => void
      const closed = new Promise<boolean>((resolve) => (settle = resolve))
      const record = { method, path, headers: req.headers, body, at: Date.now(), behavior, clientAborted: false, closed }
      this.requests.push(record)
      // A long-running mock (the reference server's) keeps only the most recent requests.
      if (this.requests.length > this.maxRequests) this.requests.splice(0, this.requests.length - this.maxRequests)
      res.on("close", () => {
        record.clientAborted = !res.writableFinished && !exchange.byMock
        settle(record.clientAborted)
      })
    }
    this.received++
    if (this.waiters.length > 0) {
      for (const w of this.waiters.filter((w) => this.received >= w.n)) {
        this.waiters.splice(this.waiters.indexOf(w), 1)
        w.resolve()
      }
    }
    this.route(method, path, raw, body, cached, behavior, res, exchange)
  }

  private route(
    method: string,
    path: string,
    raw: string,
    body: any,
    cached: Rendered | undefined,
    behavior: Behavior,
    res: ServerResponse,
    exchange: Exchange
  ): void {
    if (method === "GET" && path.endsWith("/models")) {
      res.writeHead(200, { "content-type": "application/json" })
      res.end(JSON.stringify({ object: "list", data: [{ id: behavior.model ?? "mock-model", object: "model", created: 0, owned_by: "mock" }] }))
      return
    }
    const format: Format | undefined = method !== "POST" ? undefined
      : path.endsWith("/chat/completions") ? "openai"
      : path.endsWith("/messages") ? "anthropic"
      : undefined
    if (format === undefined) {
      res.writeHead(404, { "content-type": "application/json" })
      res.end(JSON.stringify({ error: { message: `Unknown request URL: ${method} ${path}.`, type: "invalid_request_error", param: null, code: "unknown_url" } }))
      return
    }
    if (behavior.refuse === true || behavior.resetBeforeHeaders === true) {
      exchange.byMock = true
      res.socket?.destroy()
      return
    }
    if (behavior.stallBeforeHeaders === true) {
      // Never answer; the socket stays open until the client gives up or the mock stops.
      this.track(res, exchange)
      return
    }
    const go = () => {
      if (res.destroyed) return
      let rendered = cached
      if (rendered === undefined) {
        rendered = this.render(format, body, behavior)
        if (this.fast) {
          let perBody = this.cache.get(behavior)
          if (perBody === undefined) this.cache.set(behavior, perBody = new Map())
          // Bounded: a benchmark sends a handful of distinct bodies; anything else is not cached forever.
          if (perBody.size >= 1_000) perBody.clear()
          perBody.set(raw, rendered)
        }
      }
      this.respond(format, rendered, behavior, res, exchange)
    }
    const delay = behavior.headersDelayMs ?? 0
    if (delay > 0) {
      this.track(res, exchange)
      const timer = setTimeout(go, delay)
      res.on("close", () => clearTimeout(timer))
    } else go()
  }

  private track(res: ServerResponse, exchange: Exchange): void {
    if (this.open.has(res)) return
    this.open.set(res, exchange)
    res.on("close", () => this.open.delete(res))
  }

  private render(format: Format, body: any, behavior: Behavior): Rendered {
    if (body === undefined || body === null || typeof body !== "object") {
      return { _tag: "error", status: 400, body: Buffer.from(errorBody(format, 400, "We could not parse the JSON body of your request.")) }
    }
    if (behavior.status !== undefined && behavior.status >= 400) {
      return { _tag: "error", status: behavior.status, body: Buffer.from(errorBody(format, behavior.status, behavior.message ?? defaultMessage(behavior.status))) }
    }
    const messages: ReadonlyArray<Text.WireMessage> | undefined = Array.isArray(body.messages) ? body.messages : undefined
    const last = messages?.[messages.length - 1]
    if (behavior.rejectPrefill === true && last?.role === "assistant") {
      return {
        _tag: "error",
        status: 400,
        body: Buffer.from(errorBody(format, 400, "This model does not support assistant message prefill. The conversation must end with a user message."))
      }
    }
    const count = behavior.words ?? this.words
    const planned = Text.plan(messages, count, { overlap: behavior.overlap, restart: behavior.restart, text: behavior.text })
    const model = behavior.model ?? (typeof body.model === "string" ? body.model : "mock-model")
    const id = format === "openai" ? `chatcmpl-mock${++this.counter}` : `msg_mock${++this.counter}`
    const tool = behavior.toolCall === true ? Text.toolArguments(Text.seedOf(messages)) : undefined
    const pieces = tool !== undefined ? tool.pieces : Text.chunks(planned.text)
    let promptTokens = 1
    for (const m of messages ?? []) promptTokens += Math.ceil(Text.contentText(m?.content as never).length / 4)
    const completionTokens = pieces.length
    if (body.stream !== true) {
      return {
        _tag: "json",
        body: Buffer.from(format === "openai"
          ? JSON.stringify({
            id, object: "chat.completion", created: created++, model,
            choices: [{
              index: 0,
              message: tool !== undefined
                ? { role: "assistant", content: null, tool_calls: [{ id: "call_mock_1", type: "function", function: { name: tool.name, arguments: tool.pieces.join("") } }], refusal: null }
                : { role: "assistant", content: planned.text, refusal: null },
              logprobs: null,
              finish_reason: tool !== undefined ? "tool_calls" : "stop"
            }],
            usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
            system_fingerprint: "fp_mock"
          })
          : JSON.stringify({
            id, type: "message", role: "assistant", model,
            content: tool !== undefined
              ? [{ type: "tool_use", id: "toolu_mock_1", name: tool.name, input: JSON.parse(tool.pieces.join("")) }]
              : [{ type: "text", text: planned.text }],
            stop_reason: tool !== undefined ? "tool_use" : "end_turn",
            stop_sequence: null,
            usage: { input_tokens: promptTokens, output_tokens: completionTokens }
          }))
      }
    }
    const includeUsage = body.stream_options?.include_usage === true
    return {
      _tag: "stream",
      frames: format === "openai"
        ? openAiFrames(id, model, pieces, tool?.name, includeUsage, promptTokens)
        : anthropicFrames(id, model, pieces, tool?.name, promptTokens)
    }
  }

  private respond(format: Format, rendered: Rendered, behavior: Behavior, res: ServerResponse, exchange: Exchange): void {
    const headers = behavior.headers
    switch (rendered._tag) {
      case "error":
      case "json": {
        const status = rendered._tag === "error" ? rendered.status : 200
        res.writeHead(status, headers === undefined
          ? { "content-type": "application/json", "content-length": rendered.body.length }
          : { "content-type": "application/json", "content-length": rendered.body.length, ...headers })
        res.end(rendered.body)
        return
      }
      case "stream":
        return this.stream(format, rendered.frames, behavior, res, exchange)
    }
  }

  private stream(format: Format, frames: Frames, behavior: Behavior, res: ServerResponse, exchange: Exchange): void {
    const base = { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", connection: "keep-alive" }
    res.writeHead(200, behavior.headers === undefined ? base : { ...base, ...behavior.headers })
    this.track(res, exchange)
    const gap = behavior.chunkDelayMs ?? this.chunkDelayMs
    const first = behavior.firstChunkDelayMs ?? gap
    const split = behavior.splitUtf8 === true
    const content = frames.content
    let timer: ReturnType<typeof setTimeout> | undefined
    let ping: ReturnType<typeof setInterval> | undefined
    if ((behavior.pingEveryMs ?? 0) > 0) {
      const frame = format === "openai" ? keepAlive : anthropicPing
      ping = setInterval(() => res.write(frame), behavior.pingEveryMs)
    }
    if (ping !== undefined || gap > 0 || first > 0 || split) {
      res.on("close", () => {
        if (timer !== undefined) clearTimeout(timer)
        if (ping !== undefined) clearInterval(ping)
      })
    }
    const finish = () => {
      if (ping !== undefined) clearInterval(ping)
      res.end()
    }
    const write = (frame: Buffer, then: () => void) => {
      if (res.destroyed) return
      if (split) {
        const [a, b] = splitInsideCharacter(frame)
        // The second half goes out a moment later, so the client reads the halves separately.
        res.write(a, () => {
          timer = setTimeout(() => {
            timer = undefined
            if (!res.destroyed) res.write(b, then)
          }, 1)
        })
      } else res.write(frame, then)
    }
    // One state machine per response: `stage` 0 head, 1 content, 2 tail, 3 done.
    let stage = 0
    let i = 0
    let sent = 0
    const step = (): void => {
      timer = undefined
      if (res.destroyed) return
      if (stage === 0) {
        if (i < frames.head.length) return write(frames.head[i++]!, step)
        stage = 1
        i = 0
        if (first > 0) {
          timer = setTimeout(step, first)
          return
        }
      }
      if (stage === 1) {
        if (behavior.cutAfterChunks !== undefined && sent >= behavior.cutAfterChunks) {
          exchange.byMock = true
          res.socket?.destroy()
          return
        }
        if (behavior.stallAfterChunks !== undefined && sent >= behavior.stallAfterChunks) return
        if (behavior.malformedAfterChunks !== undefined && sent >= behavior.malformedAfterChunks) return write(malformed[format], finish)
        if (behavior.errorEventAfterChunks !== undefined && sent >= behavior.errorEventAfterChunks) return write(errorEvent[format], finish)
        if (sent < content.length) {
          const frame = content[sent++]!
          if (gap > 0 && sent < content.length) return write(frame, delayed)
          return write(frame, step)
        }
        stage = 2
        i = 0
      }
      if (stage === 2) {
        if (i < frames.tail.length) return write(frames.tail[i++]!, step)
        stage = 3
        if (behavior.endWithoutTerminator === true) return finish()
        return write(frames.terminator, finish)
      }
    }
    const delayed = () => {
      if (!res.destroyed) timer = setTimeout(step, gap)
    }
    step()
  }
}

const openAiFrames = (
  id: string,
  model: string,
  pieces: ReadonlyArray<string>,
  tool: string | undefined,
  includeUsage: boolean,
  promptTokens: number
): Frames => {
  const c = created++
  // With include_usage, OpenAI sends `"usage":null` on every chunk and the totals in a last chunk without choices.
  const frame = (delta: unknown, finish: string | null = null) =>
    Buffer.from(`data: ${
      JSON.stringify({
        id, object: "chat.completion.chunk", created: c, model, system_fingerprint: "fp_mock",
        choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
        ...(includeUsage ? { usage: null } : {})
      })
    }\n\n`)
  const content = tool === undefined
    ? pieces.map((p) => frame({ content: p }))
    : pieces.map((p, i) =>
      frame({ tool_calls: [i === 0 ? { index: 0, id: "call_mock_1", type: "function", function: { name: tool, arguments: p } } : { index: 0, function: { arguments: p } }] })
    )
  const tail = [frame({}, tool === undefined ? "stop" : "tool_calls")]
  if (includeUsage) {
    tail.push(Buffer.from(`data: ${
      JSON.stringify({
        id, object: "chat.completion.chunk", created: c, model, system_fingerprint: "fp_mock", choices: [],
        usage: { prompt_tokens: promptTokens, completion_tokens: pieces.length, total_tokens: promptTokens + pieces.length }
      })
    }\n\n`))
  }
  return {
    head: [frame(tool === undefined ? { role: "assistant", content: "", refusal: null } : { role: "assistant", content: null, refusal: null })],
    content,
    tail,
    terminator: Buffer.from("data: [DONE]\n\n")
  }
}

const anthropicFrames = (id: string, model: string, pieces: ReadonlyArray<string>, tool: string | undefined, promptTokens: number): Frames => {
  const event = (type: string, data: Record<string, unknown>) => Buffer.from(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`)
  return {
    head: [
      event("message_start", {
        message: {
          id, type: "message", role: "assistant", content: [], model, stop_reason: null, stop_sequence: null,
          usage: { input_tokens: promptTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1 }
        }
      }),
      event("content_block_start", {
        index: 0,
        content_block: tool === undefined ? { type: "text", text: "" } : { type: "tool_use", id: "toolu_mock_1", name: tool, input: {} }
      }),
      anthropicPing
    ],
    content: pieces.map((p) =>
      event("content_block_delta", { index: 0, delta: tool === undefined ? { type: "text_delta", text: p } : { type: "input_json_delta", partial_json: p } })
    ),
    tail: [
      event("content_block_stop", { index: 0 }),
      event("message_delta", { delta: { stop_reason: tool === undefined ? "end_turn" : "tool_use", stop_sequence: null }, usage: { output_tokens: pieces.length } })
    ],
    terminator: event("message_stop", {})
  }
}
