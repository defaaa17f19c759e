/**
 * A minimal OpenAI-shaped upstream over real HTTP and a minimal adapter over core's
 * `UpstreamHttp`, for the wire-level tests of this package. They stand in for
 * `@breakwater/testing`'s `MockUpstream` and `@breakwater/provider-openai`, which were being
 * written at the same time; swap them in when both are available.
 */
import { ChatCompletion, type LanguageModel, type ModelError, SseCodec, UpstreamHttp } from "@breakwater/core"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"

/** What one request to the upstream saw. */
export interface RequestRecord {
  readonly body: unknown
  /** Resolves when the request is over: `true` when the client went away before the response ended. */
  readonly closed: Promise<boolean>
  clientAborted: boolean
}

export type Behavior = (req: IncomingMessage, res: ServerResponse) => void

const chunk = (content: string | undefined, role?: "assistant") =>
  JSON.stringify({
    id: "chatcmpl-wire",
    object: "chat.completion.chunk",
    created: 0,
    model: "gpt-wire",
    choices: [{ index: 0, delta: role === undefined ? { content } : { role, content: "" }, finish_reason: null }]
  })

/** Streams a role chunk and `contents`, then stays silent with the connection open. */
export const stall = (...contents: ReadonlyArray<string>): Behavior => (_req, res) => {
  res.writeHead(200, { "content-type": "text/event-stream" })
  res.write(`data: ${chunk(undefined, "assistant")}\n\n`)
  for (const c of contents) res.write(`data: ${chunk(c)}\n\n`)
}

/** Reads the request and never answers, not even with headers. */
export const silent: Behavior = () => {}

/** Answers with a status, headers and an OpenAI error body. */
export const error = (status: number, headers: Record<string, string> = {}): Behavior => (_req, res) => {
  res.writeHead(status, { "content-type": "application/json", ...headers })
  res.end(JSON.stringify({ error: { message: `HTTP ${status}`, type: "error", code: null } }))
}

/** Answers with a whole completion. */
export const completion = (text: string): Behavior => (_req, res) => {
  res.writeHead(200, { "content-type": "application/json" })
  res.end(JSON.stringify({
    id: "chatcmpl-wire",
    object: "chat.completion",
    created: 0,
    model: "gpt-wire",
    choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: "stop" }],
    usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 }
  }))
}

/** Starts an upstream that answers requests with `behaviors` in order (the last one repeats). */
export const upstream = (...behaviors: ReadonlyArray<Behavior>): Effect.Effect<
  { readonly baseUrl: string; readonly requests: Array<RequestRecord>; readonly received: Promise<RequestRecord> },
  never,
  Scope.Scope
> =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const requests: Array<RequestRecord> = []
      let first!: (r: RequestRecord) => void
      const received = new Promise<RequestRecord>((resolve) => (first = resolve))
      const server = createServer((req, res) => {
        let raw = ""
        req.on("data", (d) => (raw += d))
        req.on("end", () => {
          let done!: (aborted: boolean) => void
          const record: RequestRecord = { body: JSON.parse(raw || "null"), closed: new Promise((r) => (done = r)), clientAborted: false }
          res.on("close", () => {
            record.clientAborted = !res.writableFinished
            done(record.clientAborted)
          })
          requests.push(record)
          const behavior = behaviors[Math.min(requests.length, behaviors.length) - 1]!
          behavior(req, res)
          if (requests.length === 1) first(record)
        })
      })
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
      const { port } = server.address() as AddressInfo
      return { server, baseUrl: `http://127.0.0.1:${port}/v1`, requests, received }
    }),
    ({ server }) =>
      Effect.promise(() => {
        server.closeAllConnections()
        return new Promise<void>((resolve) => server.close(() => resolve()))
      })
  )

const readError: UpstreamHttp.ErrorBodyReader = (body) => {
  const e = (body as { error?: { message?: string; code?: string | null } } | undefined)?.error
  return { message: e?.message, code: e?.code ?? undefined }
}

/** A minimal OpenAI adapter: JSON for `generate`, SSE (comments as heartbeats) for `stream`. */
export const model = (baseUrl: string): Effect.Effect<LanguageModel.Service, never, Scope.Scope> =>
  Effect.map(UpstreamHttp.make({ name: "wire", baseUrl }), (http): LanguageModel.Service => {
    const send = (request: ChatCompletion.ChatRequest, stream: boolean) =>
      http.request({
        path: "/chat/completions",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ ...request, stream })
      }, readError)
    return {
      generate: (request) =>
        Effect.flatMap(send(request, false), (response) =>
          Effect.map(UpstreamHttp.readJson("wire", response), (json) => json as ChatCompletion.ChatCompletion)),
      stream: (request) =>
        Stream.unwrap(Effect.map(send(request, true), (response) => {
          let received = 0
          return SseCodec.decode(UpstreamHttp.bodyStream("wire", response, () => received)).pipe(
            Stream.takeWhile((m) => m._tag !== "Event" || m.data !== "[DONE]"),
            Stream.map((m): ChatCompletion.ChatCompletionChunk => {
              received++
              return m._tag === "Comment"
                ? ChatCompletion.heartbeat("chatcmpl-wire", "gpt-wire", 0)
                : JSON.parse(m.data) as ChatCompletion.ChatCompletionChunk
            })
          ) as Stream.Stream<ChatCompletion.ChatCompletionChunk, ModelError.ModelError>
        }))
    }
  })
