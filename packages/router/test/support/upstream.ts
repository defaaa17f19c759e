/**
 * A small OpenAI-compatible upstream over real HTTP for the router's end-to-end tests: it can be
 * stopped (connection refused) and restarted on the same port, delays its answers on demand,
 * and records whether the client went away before an answer ended. It stands in for
 * `@breakwater/testing`'s `MockUpstream`, which was not yet in the tree when these were written
 * (same vocabulary: `stop`, `restart`, `requests`, `clientAborted`).
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { createServer, type Server, type ServerResponse } from "node:http"
import type { AddressInfo, Socket } from "node:net"

export interface RequestRecord {
  readonly body: any
  /** Resolves once the exchange is over: `true` when the client went away before the answer ended. */
  readonly clientAborted: Promise<boolean>
}

export interface Upstream {
  readonly baseUrl: string
  readonly requests: Array<RequestRecord>
  /** Milliseconds to wait before answering (headers included). */
  delay: number
  /** Closes the listener and every connection: new connections are refused. */
  readonly stop: () => Promise<void>
  /** Listens again on the same port. */
  readonly restart: () => Promise<void>
}

const frame = (model: string, delta: unknown, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: "chatcmpl-e2e", object: "chat.completion.chunk", created: 1, model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`

const answer = (res: ServerResponse, body: any, text: string) => {
  const model = String(body?.model ?? "mock")
  if (body?.stream === true) {
    res.writeHead(200, { "content-type": "text/event-stream" })
    res.write(frame(model, { role: "assistant", content: "" }))
    for (const word of text.match(/\S+\s*/g) ?? []) res.write(frame(model, { content: word }))
    res.write(frame(model, {}, "stop"))
    res.end("data: [DONE]\n\n")
  } else {
    res.writeHead(200, { "content-type": "application/json" })
    res.end(JSON.stringify({
      id: "chatcmpl-e2e",
      object: "chat.completion",
      created: 1,
      model,
      choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: "stop" }],
      usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 }
    }))
  }
}

/** Starts an upstream that answers every request with `text`. */
export const start = (text: string): Effect.Effect<Upstream, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const sockets = new Set<Socket>()
      const timers = new Set<NodeJS.Timeout>()
      const requests: Array<RequestRecord> = []
      const server: Server = createServer((req, res) => {
        let raw = ""
        req.setEncoding("utf8")
        req.on("data", (d: string) => (raw += d))
        req.on("end", () => {
          let done!: (aborted: boolean) => void
          const body = raw.length > 0 ? JSON.parse(raw) : undefined
          requests.push({ body, clientAborted: new Promise((resolve) => (done = resolve)) })
          res.on("close", () => done(!res.writableFinished))
          if (upstream.delay <= 0) return answer(res, body, text)
          const timer = setTimeout(() => {
            timers.delete(timer)
            if (!res.destroyed) answer(res, body, text)
          }, upstream.delay)
          timers.add(timer)
        })
      })
      server.on("connection", (socket) => {
        sockets.add(socket)
        socket.on("close", () => sockets.delete(socket))
      })
      const listen = (port: number) => new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve))
      await listen(0)
      const { port } = server.address() as AddressInfo
      const stop = () => {
        for (const t of timers) clearTimeout(t)
        timers.clear()
        for (const s of sockets) s.destroy()
        return new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()))
      }
      const upstream: Upstream = {
        baseUrl: `http://127.0.0.1:${port}/v1`,
        requests,
        delay: 0,
        stop,
        restart: () => listen(port)
      }
      return upstream
    }),
    (upstream) => Effect.promise(() => upstream.stop())
  )
