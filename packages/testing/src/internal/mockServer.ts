/**
 * The mock's HTTP server: connections, the behavior each request gets (script, chaos, default),
 * routing to a wire format, the faults that strike before any response, and the answer.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo, Socket } from "node:net"
import * as AnthropicWire from "./anthropicWire.js"
import type { Behavior } from "./behavior.js"
import * as Chaos from "./chaos.js"
import * as OpenAiWire from "./openaiWire.js"
import { render, type Rendered } from "./render.js"
import { type Exchange, RequestLog } from "./requestLog.js"
import { writeStream } from "./stream.js"
import type { Wire } from "./wire.js"

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

const noop = () => {}
const none: Behavior = {}

const wireFor = (method: string, path: string): Wire | undefined =>
  method !== "POST" ? undefined
  : path.endsWith("/chat/completions") ? OpenAiWire.wire
  : path.endsWith("/messages") ? AnthropicWire.wire
  : undefined

export class MockServer {
  readonly log: RequestLog
  private queue: Array<Behavior> = []
  private fallback: Behavior = none
  private pick: Chaos.Pick | undefined
  private readonly sockets = new Set<Socket>()
  private readonly open = new Map<ServerResponse, Exchange>()
  private readonly cache = new WeakMap<Behavior, Map<string, Rendered>>()
  private server: Server | undefined
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
    this.log = new RequestLog(options.maxRequests ?? Infinity)
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

  chaos(options: Chaos.ChaosOptions | undefined): void {
    this.pick = Chaos.make(options, this.options.seed ?? 1)
  }

  reset(): void {
    this.log.reset()
    this.queue = []
    this.fallback = none
    this.pick = undefined
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

  /** The script first, then chaos's pick, then the default. */
  private next(): Behavior {
    return this.queue.shift() ?? this.pick?.() ?? this.fallback
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    // A client that resets mid-request must not crash the test process.
    req.on("error", noop)
    res.on("error", noop)
    const parts: Array<Buffer> = []
    req.on("data", (part: Buffer) => parts.push(part))
    req.on("end", () => this.received(req, res, parts))
  }

  private received(req: IncomingMessage, res: ServerResponse, parts: Array<Buffer>): void {
    const method = req.method ?? "GET"
    const url = req.url ?? "/"
    const q = url.indexOf("?")
    const path = q < 0 ? url : url.slice(0, q)
    const raw = parts.length === 0 ? "" : (parts.length === 1 ? parts[0]! : Buffer.concat(parts)).toString("utf8")
    const behavior = method === "POST" ? this.next() : none
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
    this.log.add({ method, path, headers: req.headers, body, behavior }, res, exchange, !this.fast)
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
      res.end(OpenAiWire.modelList)
      return
    }
    const wire = wireFor(method, path)
    if (wire === undefined) {
      res.writeHead(404, { "content-type": "application/json" })
      res.end(OpenAiWire.unknownUrl(method, path))
      return
    }
    switch (behavior.fault?._tag) {
      case "ResetBeforeHeaders":
        exchange.byMock = true
        res.socket?.destroy()
        return
      case "StallBeforeHeaders":
        // Never answer; the socket stays open until the client gives up or the mock stops.
        this.track(res, exchange)
        return
    }
    const go = () => {
      if (res.destroyed) return
      this.respond(wire, cached ?? this.render(wire, raw, body, behavior), behavior, res, exchange)
    }
    const delay = behavior.headersDelayMs ?? 0
    if (delay > 0) {
      this.track(res, exchange)
      const timer = setTimeout(go, delay)
      res.on("close", () => clearTimeout(timer))
    } else go()
  }

  private render(wire: Wire, raw: string, body: any, behavior: Behavior): Rendered {
    const rendered = render(wire, body, behavior, this.words)
    if (this.fast) {
      let perBody = this.cache.get(behavior)
      if (perBody === undefined) this.cache.set(behavior, perBody = new Map())
      // Bounded: a benchmark sends a handful of distinct bodies; anything else is not cached forever.
      if (perBody.size >= 1_000) perBody.clear()
      perBody.set(raw, rendered)
    }
    return rendered
  }

  private respond(wire: Wire, rendered: Rendered, behavior: Behavior, res: ServerResponse, exchange: Exchange): void {
    if (rendered._tag === "Stream") {
      this.track(res, exchange)
      return writeStream(wire, rendered.frames, behavior, this.chunkDelayMs, res, () => (exchange.byMock = true))
    }
    const headers = behavior.headers
    res.writeHead(rendered._tag === "Error" ? rendered.status : 200, headers === undefined
      ? { "content-type": "application/json", "content-length": rendered.body.length }
      : { "content-type": "application/json", "content-length": rendered.body.length, ...headers })
    res.end(rendered.body)
  }

  private track(res: ServerResponse, exchange: Exchange): void {
    if (this.open.has(res)) return
    this.open.set(res, exchange)
    res.on("close", () => this.open.delete(res))
  }
}
