/**
 * The gateway's OpenAI-compatible API as an `@effect/platform` `HttpRouter`, for an Effect app
 * that serves its own routes on its own server (Node, Bun): mount it beside them, behind your
 * own middleware. It runs the same `RequestPipeline` as the lean `node:http` host — client keys,
 * body checks, the commit gate, SSE framing, errors and the request's log line — and owns only
 * the transport: a streamed answer is a response whose body is a `Stream` of SSE frames, fed from
 * the gateway's push path with backpressure.
 *
 * Client reconnects work as on the lean host (`@breakwater/gateway`'s `StreamReconnect`): every
 * event of a journaled stream carries an id, a client that lost its stream comes back with
 * `Last-Event-ID` (the same POST, or `GET /v1/streams/{id}`) or repeats its POST with the same
 * `Idempotency-Key`, and `DELETE /v1/streams/{id}` stops a generation. What the lean host adds
 * and this router leaves to your server: its concurrency limits, the Host/Origin checks and CORS
 * (use `HttpMiddleware.cors`), and graceful shutdown.
 *
 * @since 0.3.0
 */
import { type Gateway, type HostRuntime, RequestPipeline, StreamReconnect } from "@breakwater/gateway"
import type { StreamJournal } from "@breakwater/stream-resume"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { chat } from "./internal/chat.js"
import * as CountTokens from "./internal/countTokens.js"
import type { Host } from "./internal/host.js"
import * as Operator from "./internal/operator.js"
import * as StreamsApi from "./internal/streamsApi.js"

/**
 * Router options.
 *
 * @since 0.3.0
 * @category models
 */
export interface Options {
  /** Where the gateway's log lines go (default: one JSON object per line on stdout). */
  readonly log?: HostRuntime.LogSink | undefined
  /** Lowest level logged (default `info`). */
  readonly logLevel?: HostRuntime.Level | undefined
}

/**
 * How streams are journaled for client reconnects.
 *
 * @since 0.3.0
 * @category models
 */
export interface ReconnectOptions {
  /**
   * Where streamed responses are journaled for client reconnects (`Last-Event-ID`); default: the
   * gateway's (shared state), else an in-memory `StreamJournal` with its default bounds. `false`
   * turns journaling off: streams then carry no event ids and stop as soon as their client leaves.
   */
  readonly journal?: StreamJournal.StreamJournal | false | undefined
  /** The `retry:` hint (ms) that starts each journaled stream (default 1000). */
  readonly reconnectRetryMs?: number | undefined
}

/**
 * The routes of a gateway's pipeline: `POST /v1/chat/completions` (and `/chat/completions`),
 * `POST /v1/messages` (and `/messages`: Anthropic's Messages API, its auth headers and shapes),
 * `POST /v1/messages/count_tokens` (and `/messages/count_tokens`: proxied to the Anthropic
 * upstream that starts the model's route),
 * `GET` and `DELETE /v1/streams/{id}`, `GET /v1/models` (and `/models`), `GET /healthz`,
 * `GET /readyz`, `GET /metrics`.
 *
 * @since 0.3.0
 * @category constructors
 */
export const fromPipeline = (pipeline: RequestPipeline.RequestPipeline, options: ReconnectOptions = {}): HttpRouter.HttpRouter => {
  const h: Host = {
    pipeline,
    journal: StreamReconnect.journalOf(pipeline.gateway, options.journal),
    retryMs: options.reconnectRetryMs ?? StreamReconnect.defaultRetryMs,
    running: new Map()
  }
  const completions = chat(h, pipeline.chat, "/v1/chat/completions")
  const messages = chat(h, pipeline.messages, "/v1/messages")
  const countTokens = CountTokens.countTokens(h)
  const streams = StreamsApi.streams(h)
  const models = Operator.models(pipeline)
  return HttpRouter.empty.pipe(
    HttpRouter.post("/v1/chat/completions", completions),
    HttpRouter.post("/chat/completions", completions),
    HttpRouter.post("/v1/messages", messages),
    HttpRouter.post("/messages", messages),
    HttpRouter.post(CountTokens.path, countTokens),
    HttpRouter.post("/messages/count_tokens", countTokens),
    HttpRouter.get(StreamsApi.path, streams),
    HttpRouter.del(StreamsApi.path, streams),
    HttpRouter.get("/v1/models", models),
    HttpRouter.get("/models", models),
    HttpRouter.get("/healthz", Operator.healthz(pipeline)),
    HttpRouter.get("/readyz", Operator.readyz(pipeline)),
    HttpRouter.get("/metrics", Operator.metrics(pipeline))
  )
}

/**
 * The router of a built gateway. Its pipeline's runtime (where calls run and log) lives as long
 * as the scope.
 *
 * @since 0.3.0
 * @category constructors
 */
export const make = (gateway: Gateway.Gateway, options: Options & ReconnectOptions = {}): Effect.Effect<HttpRouter.HttpRouter, never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => RequestPipeline.make(gateway, { log: options.log, logLevel: options.logLevel })),
      // The spans of the last requests go out with it (the gateway's own scope may outlive it).
      (pipeline) =>
        Effect.zipRight(
          pipeline.host.runtime.disposeEffect,
          gateway.telemetry === undefined ? Effect.void : Effect.promise(() => gateway.telemetry!.flush().catch(() => undefined))
        )
    ),
    (pipeline) => fromPipeline(pipeline, options)
  )
