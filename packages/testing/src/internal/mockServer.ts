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
}

export interface Options {
  readonly port?: number | undefined
  readonly host?: string | undefined
  readonly words?: number | undefined
  readonly seed?: number | undefined
  /** Default delay between stream chunks (ms); 0 writes them back to back. */
  readonly chunkDelayMs?: number | undefined
}

export interface ChaosOptions {
  readonly rate: number
  readonly behaviors: ReadonlyArray<Behavior>
  readonly seed?: number | undefined
}

type Format = "openai" | "anthropic"

const errorTypes: Record<number, [openai: string, anthropic: string]> = {
  400: ["invalid_request_error", "invalid_request_error"],
  401: ["invalid_request_error", "authentication_error"],
  403: ["invalid_request_error", "permission_error"],
  404: ["invalid_request_error", "not_found_error"],
  413: ["invalid_request_error", "request_too_large"],
  429: ["rate_limit_error", "rate_limit_error"],
  500: ["server_error", "api_error"],
  502: ["server_error", "api_error"],
  503: ["server_error", "api_error"],
  504: ["server_error", "api_error"],
  529: ["server_error", "overloaded_error"]
}

const errorBody = (format: Format, status: number, message: string): string => {
  const [openai, anthropic] = errorTypes[status] ?? ["server_error", "api_error"]
  return format === "openai"
    ? JSON.stringify({ error: { message, type: openai, param: null, code: status === 429 ? "rate_limit_exceeded" : null } })
    : JSON.stringify({ type: "error", error: { type: anthropic, message } })
}

const defaultMessage = (status: number): string =>
  status === 429 ? "Rate limit reached; please try again later." :
  status === 529 ? "Overloaded" :
  status >= 500 ? "The server had an error while processing your request." :
  status === 401 ? "Incorrect API key provided." :
  status === 404 ? "The model does not exist." : "Invalid request."

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
const splitInsideCharacter = (frame: string): [Buffer, Buffer] => {
  const bytes = Buffer.from(frame, "utf8")
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

interface Frames {
  /** Frames before the content (role chunk; Anthropic's message_start and block start). */
  readonly head: ReadonlyArray<string>
  /** One frame per content chunk. */
  readonly content: ReadonlyArray<string>
  /** Frames after the content but the terminator. */
  readonly tail: ReadonlyArray<string>
  readonly terminator: string
}

let created = 1_732_000_000

export class MockServer {
  readonly requests: Array<RecordedRequest> = []
  private queue: Array<Behavior> = []
  private fallback: Behavior = {}
  private chaosSettings: { rate: number; behaviors: ReadonlyArray<Behavior>; random: () => number } | undefined
  private readonly sockets = new Set<Socket>()
  private readonly open = new Set<ServerResponse>()
  private readonly waiters: Array<{ n: number; resolve: () => void }> = []
  private server: Server | undefined
  private counter = 0
  port = 0
  readonly host: string
  readonly words: number
  readonly chunkDelayMs: number

  constructor(readonly options: Options) {
    this.host = options.host ?? "127.0.0.1"
    this.words = options.words ?? 24
    this.chunkDelayMs = options.chunkDelayMs ?? 0
  }

  get openConnections(): number {
    return this.sockets.size
  }

  /** Responses still being written (streams in flight, stalls). */
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
    this.queue = []
    this.fallback = {}
    this.chaosSettings = undefined
  }

  waitFor(n: number, timeoutMs: number): Promise<void> {
    if (this.requests.length >= n) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`MockUpstream: ${this.requests.length} of ${n} requests after ${timeoutMs} ms`)), timeoutMs)
      this.waiters.push({ n, resolve: () => (clearTimeout(timer), resolve()) })
    })
  }

  listen(port: number): Promise<void> {
    const server = createServer({ keepAliveTimeout: 30_000 }, (req, res) => this.handle(req, res))
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
    for (const res of this.open) res.destroy()
    for (const socket of this.sockets) socket.destroy()
    return new Promise((resolve) => server.close(() => resolve()))
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
    const parts: Array<Buffer> = []
    req.on("data", (part: Buffer) => parts.push(part))
    req.on("end", () => {
      const path = (req.url ?? "/").split("?")[0]!
      let body: any
      if (parts.length > 0) {
        try {
          body = JSON.parse(Buffer.concat(parts).toString("utf8"))
        } catch {
          body = undefined
        }
      }
      const behavior = req.method === "POST" ? this.next() : {}
      this.requests.push({ method: req.method ?? "GET", path, headers: req.headers, body, at: Date.now(), behavior })
      for (const w of this.waiters.filter((w) => this.requests.length >= w.n)) {
        this.waiters.splice(this.waiters.indexOf(w), 1)
        w.resolve()
      }
      this.route(req.method ?? "GET", path, body, behavior, res)
    })
  }

  private route(method: string, path: string, body: any, behavior: Behavior, res: ServerResponse): void {
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
      res.end(JSON.stringify({ error: { message: `no route ${method} ${path}`, type: "invalid_request_error" } }))
      return
    }
    if (body === undefined || typeof body !== "object") {
      this.fail(res, format, 400, "could not parse the JSON body of your request", {})
      return
    }
    if (behavior.refuse === true || behavior.resetBeforeHeaders === true) {
      res.socket?.destroy()
      return
    }
    if (behavior.stallBeforeHeaders === true) {
      // Never answer; the socket stays open until the client gives up or the mock stops.
      this.open.add(res)
      res.on("close", () => this.open.delete(res))
      return
    }
    const go = () => this.respond(format, body, behavior, res)
    if ((behavior.headersDelayMs ?? 0) > 0) {
      this.open.add(res)
      const timer = setTimeout(go, behavior.headersDelayMs)
      res.on("close", () => {
        clearTimeout(timer)
        this.open.delete(res)
      })
    } else go()
  }

  private fail(res: ServerResponse, format: Format, status: number, message: string, headers: Readonly<Record<string, string>>): void {
    res.writeHead(status, { "content-type": "application/json", ...headers })
    res.end(errorBody(format, status, message))
  }

  private respond(format: Format, body: any, behavior: Behavior, res: ServerResponse): void {
    if (res.destroyed) return
    const headers = behavior.headers ?? {}
    if (behavior.status !== undefined && behavior.status >= 400) {
      this.fail(res, format, behavior.status, behavior.message ?? defaultMessage(behavior.status), headers)
      return
    }
    const messages: ReadonlyArray<Text.WireMessage> | undefined = body.messages
    const last = messages?.[messages.length - 1]
    if (behavior.rejectPrefill === true && last?.role === "assistant") {
      this.fail(res, format, 400, "This model does not support assistant message prefill. The conversation must end with a user message.", headers)
      return
    }
    const count = behavior.words ?? this.words
    const planned = Text.plan(messages, count, { overlap: behavior.overlap, restart: behavior.restart })
    const model = behavior.model ?? (typeof body.model === "string" ? body.model : "mock-model")
    const id = `${format === "openai" ? "chatcmpl" : "msg"}-mock-${++this.counter}`
    const tool = behavior.toolCall === true ? Text.toolArguments(Text.seedOf(messages)) : undefined
    const pieces = tool !== undefined ? tool.pieces : Text.chunks(planned.text)
    const promptTokens = (messages ?? []).reduce((n, m) => n + Math.ceil(Text.contentText(m.content as never).length / 4), 0) + 1
    const completionTokens = pieces.length
    if (body.stream !== true) {
      res.writeHead(200, { "content-type": "application/json", ...headers })
      res.end(format === "openai"
        ? JSON.stringify({
          id, object: "chat.completion", created: created++, model,
          choices: [{
            index: 0,
            message: tool !== undefined
              ? { role: "assistant", content: null, tool_calls: [{ id: "call_mock_1", type: "function", function: { name: tool.name, arguments: tool.pieces.join("") } }] }
              : { role: "assistant", content: planned.text },
            finish_reason: tool !== undefined ? "tool_calls" : "stop"
          }],
          usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens }
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
      return
    }
    const includeUsage = body.stream_options?.include_usage === true
    const frames = format === "openai"
      ? openAiFrames(id, model, pieces, tool?.name, includeUsage, promptTokens)
      : anthropicFrames(id, model, pieces, tool?.name, promptTokens)
    this.stream(format, frames, behavior, res, headers)
  }

  private stream(format: Format, frames: Frames, behavior: Behavior, res: ServerResponse, headers: Readonly<Record<string, string>>): void {
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive", ...headers })
    this.open.add(res)
    const timers = new Set<ReturnType<typeof setTimeout>>()
    let ping: ReturnType<typeof setInterval> | undefined
    res.on("close", () => {
      this.open.delete(res)
      for (const t of timers) clearTimeout(t)
      if (ping !== undefined) clearInterval(ping)
    })
    if ((behavior.pingEveryMs ?? 0) > 0) {
      const frame = format === "openai" ? ": keep-alive\n\n" : `event: ping\ndata: {"type": "ping"}\n\n`
      ping = setInterval(() => res.write(frame), behavior.pingEveryMs)
    }
    const later = (ms: number, f: () => void) => {
      if (ms <= 0) return f()
      const t = setTimeout(() => {
        timers.delete(t)
        f()
      }, ms)
      timers.add(t)
    }
    const write = (frame: string, then: () => void) => {
      if (res.destroyed) return
      if (behavior.splitUtf8 === true) {
        const [a, b] = splitInsideCharacter(frame)
        res.write(a)
        res.write(b, () => then())
      } else res.write(frame, () => then())
    }
    const writeAll = (list: ReadonlyArray<string>, then: () => void) => {
      let i = 0
      const step = () => (i < list.length ? write(list[i++]!, step) : then())
      step()
    }
    const finish = () => {
      if (ping !== undefined) clearInterval(ping)
      res.end()
    }
    const gap = behavior.chunkDelayMs ?? this.chunkDelayMs
    const content = frames.content
    let sent = 0
    const nextContent = () => {
      if (res.destroyed) return
      if (behavior.cutAfterChunks !== undefined && sent >= behavior.cutAfterChunks) {
        res.socket?.destroy()
        return
      }
      if (behavior.stallAfterChunks !== undefined && sent >= behavior.stallAfterChunks) return
      if (behavior.malformedAfterChunks !== undefined && sent >= behavior.malformedAfterChunks) {
        write(format === "openai" ? "data: {\"id\":\"broken\",\"choices\":[{\"delta\":{\"content\n\n" : "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\n\n", finish)
        return
      }
      if (behavior.errorEventAfterChunks !== undefined && sent >= behavior.errorEventAfterChunks) {
        write(
          format === "openai"
            ? `data: ${JSON.stringify({ error: { message: "The server had an error while processing your request.", type: "server_error", code: null } })}\n\n`
            : `event: error\ndata: ${JSON.stringify({ type: "error", error: { type: "overloaded_error", message: "Overloaded" } })}\n\n`,
          finish
        )
        return
      }
      if (sent >= content.length) {
        writeAll(frames.tail, () => (behavior.endWithoutTerminator === true ? finish() : write(frames.terminator, finish)))
        return
      }
      const frame = content[sent++]!
      write(frame, () => later(gap, nextContent))
    }
    writeAll(frames.head, () => later(behavior.firstChunkDelayMs ?? gap, nextContent))
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
  const frame = (delta: unknown, finish: string | null = null) =>
    `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created: c, model, system_fingerprint: "fp_mock", choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })}\n\n`
  const content = tool === undefined
    ? pieces.map((p) => frame({ content: p }))
    : pieces.map((p, i) =>
      frame({ tool_calls: [i === 0 ? { index: 0, id: "call_mock_1", type: "function", function: { name: tool, arguments: p } } : { index: 0, function: { arguments: p } }] })
    )
  const tail = [frame({}, tool === undefined ? "stop" : "tool_calls")]
  if (includeUsage) {
    tail.push(`data: ${JSON.stringify({ id, object: "chat.completion.chunk", created: c, model, choices: [], usage: { prompt_tokens: promptTokens, completion_tokens: pieces.length, total_tokens: promptTokens + pieces.length } })}\n\n`)
  }
  return {
    head: [frame(tool === undefined ? { role: "assistant", content: "" } : { role: "assistant", content: null })],
    content,
    tail,
    terminator: "data: [DONE]\n\n"
  }
}

const anthropicFrames = (id: string, model: string, pieces: ReadonlyArray<string>, tool: string | undefined, promptTokens: number): Frames => {
  const event = (type: string, data: Record<string, unknown>) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`
  return {
    head: [
      event("message_start", { message: { id, type: "message", role: "assistant", content: [], model, stop_reason: null, stop_sequence: null, usage: { input_tokens: promptTokens, output_tokens: 1 } } }),
      event("content_block_start", {
        index: 0,
        content_block: tool === undefined ? { type: "text", text: "" } : { type: "tool_use", id: "toolu_mock_1", name: tool, input: {} }
      }),
      event("ping", {})
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
