/**
 * A small scripted upstream over real HTTP for the adapters' wire tests. It stands in for
 * `@breakwater/testing`'s `MockUpstream`, which was being written at the same time; the
 * behaviours here are raw wire bytes, so the tests also pin the exact formats.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { createServer, type IncomingHttpHeaders, type ServerResponse } from "node:http"
import type { AddressInfo, Socket } from "node:net"

/** What one request to the upstream saw. */
export interface RequestRecord {
  readonly url: string
  readonly headers: IncomingHttpHeaders
  readonly body: any
  /** Resolves when the exchange is over: `true` when the client went away before the response ended. */
  readonly closed: Promise<boolean>
}

export type Behavior = (res: ServerResponse, record: RequestRecord) => void

/** Answers with a status, headers and a JSON body. */
export const json = (status: number, body: unknown, headers: Record<string, string> = {}): Behavior => (res) => {
  res.writeHead(status, { "content-type": "application/json", ...headers })
  res.end(JSON.stringify(body))
}

/**
 * Streams SSE `frames` (raw text, each written separately), then ends the response (`"end"`),
 * ends it 20 ms later (`"end-late"`, as when the final HTTP chunk trails the terminator), cuts
 * the connection (`"cut"`) or stays silent with it open (`"stall"`).
 */
export const sse = (frames: ReadonlyArray<string>, then: "end" | "end-late" | "cut" | "stall" = "end"): Behavior => (res) => {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
  let i = 0
  const next = () => {
    if (i < frames.length) {
      res.write(frames[i++], next)
    } else if (then === "end") res.end()
    else if (then === "end-late") setTimeout(() => res.end(), 20)
    else if (then === "cut") res.socket?.destroy()
  }
  next()
}

/** Reads the request and never answers, not even with headers. */
export const silent: Behavior = () => {}

/** Decides the behaviour from the request. */
export const dynamic = (f: (record: RequestRecord) => Behavior): Behavior => (res, record) => f(record)(res, record)

export interface Upstream {
  readonly baseUrl: string
  readonly port: number
  readonly requests: Array<RequestRecord>
  /** Resolves with the n-th request (1-based) once it has arrived. */
  readonly received: (n?: number) => Promise<RequestRecord>
  /** TCP connections accepted so far. */
  readonly connections: () => number
}

/** Starts an upstream answering requests with `behaviors` in order (the last one repeats). */
export const start = (path: string, ...behaviors: ReadonlyArray<Behavior>): Effect.Effect<Upstream, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const requests: Array<RequestRecord> = []
      const waiters: Array<{ n: number; resolve: (r: RequestRecord) => void }> = []
      const sockets = new Set<Socket>()
      let connections = 0
      const server = createServer((req, res) => {
        let raw = ""
        req.setEncoding("utf8")
        req.on("data", (d: string) => (raw += d))
        req.on("end", () => {
          let done!: (aborted: boolean) => void
          const record: RequestRecord = {
            url: req.url ?? "",
            headers: req.headers,
            body: raw.length > 0 ? JSON.parse(raw) : undefined,
            closed: new Promise((resolve) => (done = resolve))
          }
          res.on("close", () => done(!res.writableFinished))
          requests.push(record)
          behaviors[Math.min(requests.length, behaviors.length) - 1]!(res, record)
          for (const w of waiters.filter((w) => w.n === requests.length)) w.resolve(record)
        })
      })
      server.on("connection", (socket) => {
        connections++
        sockets.add(socket)
        socket.on("close", () => sockets.delete(socket))
      })
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
      const { port } = server.address() as AddressInfo
      const upstream: Upstream = {
        baseUrl: `http://127.0.0.1:${port}${path}`,
        port,
        requests,
        received: (n = 1) =>
          requests.length >= n ? Promise.resolve(requests[n - 1]!) : new Promise((resolve) => waiters.push({ n, resolve })),
        connections: () => connections
      }
      return { server, sockets, upstream }
    }),
    ({ server, sockets }) =>
      Effect.promise(() => {
        for (const s of sockets) s.destroy()
        return new Promise<void>((resolve) => server.close(() => resolve()))
      })
  ).pipe(Effect.map(({ upstream }) => upstream))

/** OpenAI wire frames for `text`, split into words. */
export const openAiFrames = (text: string, options: { readonly model?: string; readonly done?: boolean } = {}): Array<string> => {
  const model = options.model ?? "gpt-mock"
  const frame = (delta: unknown, finish: string | null = null) =>
    `data: ${JSON.stringify({ id: "chatcmpl-mock", object: "chat.completion.chunk", created: 1, model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`
  const words = text.match(/\S+\s*/g) ?? []
  return [
    frame({ role: "assistant", content: "" }),
    ...words.map((w) => frame({ content: w })),
    frame({}, "stop"),
    `data: ${JSON.stringify({ id: "chatcmpl-mock", object: "chat.completion.chunk", created: 1, model, choices: [], usage: { prompt_tokens: 5, completion_tokens: words.length, total_tokens: 5 + words.length } })}\n\n`,
    ...(options.done === false ? [] : ["data: [DONE]\n\n"])
  ]
}

/** An OpenAI completion answering `text`. */
export const openAiCompletion = (text: string, model = "gpt-mock") => ({
  id: "chatcmpl-mock",
  object: "chat.completion",
  created: 1,
  model,
  choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: "stop" }],
  usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 }
})

/** Anthropic wire frames for `text`, split into words. */
export const anthropicFrames = (text: string, options: { readonly model?: string; readonly stop?: boolean } = {}): Array<string> => {
  const model = options.model ?? "claude-mock"
  const event = (type: string, data: Record<string, unknown>) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`
  const words = text.match(/\S+\s*/g) ?? []
  return [
    event("message_start", { message: { id: "msg_mock", type: "message", role: "assistant", content: [], model, stop_reason: null, usage: { input_tokens: 5, output_tokens: 1 } } }),
    event("content_block_start", { index: 0, content_block: { type: "text", text: "" } }),
    event("ping", {}),
    ...words.map((w) => event("content_block_delta", { index: 0, delta: { type: "text_delta", text: w } })),
    event("content_block_stop", { index: 0 }),
    event("message_delta", { delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: words.length } }),
    ...(options.stop === false ? [] : [event("message_stop", {})])
  ]
}

/** An Anthropic message answering `text`. */
export const anthropicMessage = (text: string, model = "claude-mock") => ({
  id: "msg_mock",
  type: "message",
  role: "assistant",
  model,
  content: [{ type: "text", text }],
  stop_reason: "end_turn",
  stop_sequence: null,
  usage: { input_tokens: 5, output_tokens: 3 }
})
