/**
 * The gateway's OpenAI-compatible API as an `@effect/platform` `HttpRouter`, for an Effect app
 * that serves its own routes on its own server (Node, Bun): mount it beside them, behind your
 * own middleware. It runs the same `RequestPipeline` as the lean `node:http` host — client keys,
 * body checks, the commit gate, SSE framing, errors and the request's log line — and owns only
 * the transport: a streamed answer is a response whose body is a `Stream` of SSE frames, fed from
 * the gateway's push path with backpressure.
 *
 * What the lean host adds and this router leaves to your server: its concurrency limits, the
 * Host/Origin checks and CORS (use `HttpMiddleware.cors`), graceful shutdown, and the stream
 * journal (`GET /v1/streams/{id}`, `Last-Event-ID`, `Idempotency-Key`): a client that loses its
 * connection starts over. Streams cut upstream are still continued inside the gateway by its
 * stream-resume policy.
 *
 * @since 0.3.0
 */
import { type Gateway, type HostRuntime, RequestPipeline } from "@breakwater/gateway"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { chat } from "./internal/chat.js"
import * as Operator from "./internal/operator.js"

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
 * The routes of a gateway's pipeline: `POST /v1/chat/completions` (and `/chat/completions`),
 * `GET /v1/models` (and `/models`), `GET /healthz`, `GET /readyz`, `GET /metrics`.
 *
 * @since 0.3.0
 * @category constructors
 */
export const fromPipeline = (pipeline: RequestPipeline.RequestPipeline): HttpRouter.HttpRouter => {
  const completions = chat(pipeline)
  const models = Operator.models(pipeline)
  return HttpRouter.empty.pipe(
    HttpRouter.post("/v1/chat/completions", completions),
    HttpRouter.post("/chat/completions", completions),
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
export const make = (gateway: Gateway.Gateway, options: Options = {}): Effect.Effect<HttpRouter.HttpRouter, never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => RequestPipeline.make(gateway, { log: options.log, logLevel: options.logLevel })),
      (pipeline) => pipeline.host.runtime.disposeEffect
    ),
    fromPipeline
  )
