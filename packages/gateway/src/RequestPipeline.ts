/**
 * The request pipeline every host runs, whatever its transport (Node HTTP, Lambda, an
 * `@effect/platform` app): who calls (client keys), whether a chat request may be read (JSON
 * only) and what it asks (size, UTF-8, JSON, schema, model, the key's permission), the model call
 * under the request's context and deadline, a failure's client-facing answer, and the request's
 * log line. A host owns only its transport: reading the request, routing, writing the response.
 *
 * Built once per host; every member is a plain function, so a request costs no Effect, fiber or
 * allocation beyond its model call.
 *
 * @since 0.2.0
 */
import { type ChatCompletion, LanguageModel, type ModelError, RequestContext } from "@breakwater/core"
import { Deadline } from "@breakwater/timeout"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Fiber from "effect/Fiber"
import * as Runtime from "effect/Runtime"
import * as ClientApi from "./ClientApi.js"
import * as ClientStream from "./ClientStream.js"
import type { ClientKey, Gateway } from "./Gateway.js"
import * as HostRuntime from "./HostRuntime.js"
import type * as Tracing from "./Tracing.js"

/**
 * Pipeline options.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** Where log lines go (default: one JSON object per line on stdout). */
  readonly log?: HostRuntime.LogSink | undefined
  /** Lowest level logged (default `info`). */
  readonly logLevel?: HostRuntime.Level | undefined
  /**
   * Whether the host gives requests a deadline of its own (`RequestContext.deadline`, e.g. a
   * Lambda invocation's remaining time) that the call must not outlive, whatever the model. The
   * gateway's routes already honour it; this bounds any model, with the same `Deadline` policy.
   * Off by default: a host without such deadlines pays nothing for it.
   */
  readonly hostDeadlines?: boolean | undefined
}

/**
 * The pipeline of one gateway, built once per host.
 *
 * @since 0.2.0
 * @category models
 */
export interface RequestPipeline {
  readonly gateway: Gateway
  readonly api: ClientApi.Api
  /** The runtime requests run on, and the scrubbing log. */
  readonly host: HostRuntime.HostRuntime
  /**
   * Who calls: the client key the `Authorization` header names, `undefined` when the gateway has
   * no client keys, or the 401 (`ClientApi.isApiError` tells them apart).
   */
  readonly authenticate: (authorization: string | undefined) => ClientKey | undefined | ClientApi.ApiError
  /** What a chat request's headers allow before its body is read: `authenticate`, then the 415 for a body not declared JSON. */
  readonly admitChat: (authorization: string | undefined, contentType: string | undefined) => ClientKey | undefined | ClientApi.ApiError
  /** A chat request's body: the 413 past `maxBodyBytes`, strict UTF-8, JSON, the schema, the model, the key's permission. */
  readonly decodeChat: (body: Uint8Array, key: ClientKey | undefined) => Either.Either<ChatCompletion.ChatRequest, ClientApi.ApiError>
  /**
   * The span of a decoded chat request when the gateway traces (`Gateway.telemetry`), else
   * `undefined` (tracing off: nothing else happens). The host puts it in the request context as
   * its observer (`RequestObserver.combine(span, …)`) and ends it once, when the response is
   * over: `span?.end()`, `span?.end(apiError)`, `span?.end(Tracing.ClientGone)`. An incoming W3C
   * `traceparent` in `headers` continues the caller's trace.
   */
  readonly observe: (
    requestId: string,
    headers: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>,
    request: ChatCompletion.ChatRequest
  ) => Tracing.RequestSpan | undefined
  /** A non-streaming call under the request's context. */
  readonly generate: (request: ChatCompletion.ChatRequest, ctx: RequestContext.RequestContextShape) => Effect.Effect<ChatCompletion.ChatCompletion, ModelError.ModelError>
  /**
   * A streaming call under the request's context, its chunks written by `writer`; when the
   * transport is full the upstream pauses and `whenFull` gets the function that resumes it.
   */
  readonly stream: (
    request: ChatCompletion.ChatRequest,
    ctx: RequestContext.RequestContextShape,
    writer: ClientStream.Writer,
    whenFull: (resume: () => void) => void
  ) => Effect.Effect<void, ModelError.ModelError>
  /**
   * `generate` started on the host's runtime: the running fiber. The request's context is the
   * fiber's from its start and handed down the stack, so no layer switches the fiber's context;
   * hosts use this rather than forking `generate`.
   */
  readonly startGenerate: (
    request: ChatCompletion.ChatRequest,
    ctx: RequestContext.RequestContextShape
  ) => Fiber.RuntimeFiber<ChatCompletion.ChatCompletion, ModelError.ModelError>
  /** `stream` started on the host's runtime, as `startGenerate` starts `generate`. */
  readonly startStream: (
    request: ChatCompletion.ChatRequest,
    ctx: RequestContext.RequestContextShape,
    writer: ClientStream.Writer,
    whenFull: (resume: () => void) => void
  ) => Fiber.RuntimeFiber<void, ModelError.ModelError>
  /** A failed call's client-facing error; a defect (a 500) is logged with its cause. */
  readonly failureOf: (cause: Cause.Cause<unknown>, trace: RequestContext.RequestTrace) => ClientApi.ApiError
  /** The request's log line, at a level its status decides (5xx error, 4xx warning). */
  readonly logRequest: (
    method: string,
    path: string,
    status: number,
    requestId: string,
    durationMs: number,
    fields?: Record<string, unknown> | undefined
  ) => void
}

/**
 * The log fields that say how a call was served: upstream, model, attempts, retries, resumes.
 *
 * @since 0.2.0
 * @category utils
 */
export const traceFields = (trace: RequestContext.RequestTrace): Record<string, unknown> => ({
  upstream: trace.upstream,
  upstream_model: trace.model,
  attempts: trace.attempts,
  retries: trace.retries,
  resumes: trace.resumes
})

/**
 * A model bounded by the deadline its caller puts in the request context (`Deadline` with no
 * budget of its own), failing with `Timeout { phase: "total" }` when it passes.
 */
const boundedByContext = (model: LanguageModel.Service): LanguageModel.Service =>
  Effect.runSync(Deadline.withPolicy(model, { total: Duration.infinity }))

/**
 * Builds the pipeline of a gateway.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (gateway: Gateway, options: Options = {}): RequestPipeline => {
  const api = ClientApi.make(gateway)
  const host = HostRuntime.make({ sink: options.log, level: options.logLevel, secrets: api.secrets })
  const auth = api.auth
  const maxBodyBytes = gateway.server.maxBodyBytes
  const model = options.hostDeadlines === true ? boundedByContext(gateway.model) : gateway.model
  const run = LanguageModel.runOf(model)
  // The runtime a request's fiber starts on: the host's, with the request's context added. A
  // fiber started with its context costs nothing more; `Effect.provideService` around the call
  // would copy and restore the fiber's references.
  const base = host.runtime.runSync(Effect.runtime<never>())
  const forkIn = <A, E>(effect: Effect.Effect<A, E>, ctx: RequestContext.RequestContextShape): Fiber.RuntimeFiber<A, E> =>
    Runtime.runFork(Runtime.make({
      context: Context.add(base.context, RequestContext.RequestContext, ctx),
      fiberRefs: base.fiberRefs,
      runtimeFlags: base.runtimeFlags
    }))(effect)
  const handed = (ctx: RequestContext.RequestContextShape): LanguageModel.CallOptions | undefined =>
    model.takesContext === true ? { context: ctx } : undefined
  const tracer = gateway.telemetry
  const authenticate = (authorization: string | undefined) => {
    if (!auth.enabled) return undefined
    return auth.check(authorization) ?? ClientApi.unauthorized
  }
  return {
    gateway,
    api,
    host,
    authenticate,
    admitChat: (authorization, contentType) => {
      const key = authenticate(authorization)
      if (ClientApi.isApiError(key)) return key
      return ClientApi.isJsonContentType(contentType) ? key : ClientApi.unsupportedMediaType
    },
    decodeChat: (body, key) => {
      if (body.length > maxBodyBytes) return Either.left(ClientApi.tooLarge(maxBodyBytes))
      const text = ClientApi.decodeUtf8(body)
      return Either.isLeft(text) ? Either.left(text.left) : api.parseChat(text.right, key)
    },
    observe: tracer === undefined ? () => undefined : (requestId, headers, request) => tracer.request({ requestId, headers, request }),
    generate: (request, ctx) => Effect.provideService(model.generate(request, handed(ctx)), RequestContext.RequestContext, ctx),
    stream: (request, ctx, writer, whenFull) =>
      Effect.provideService(run(request, handed(ctx), ClientStream.chunkSink(writer, whenFull)), RequestContext.RequestContext, ctx),
    startGenerate: (request, ctx) => forkIn(model.generate(request, handed(ctx)), ctx),
    startStream: (request, ctx, writer, whenFull) => forkIn(run(request, handed(ctx), ClientStream.chunkSink(writer, whenFull)), ctx),
    failureOf: (cause, trace) => {
      const error = ClientApi.fromCause(cause, trace, api.secrets)
      if (error.status === 500) host.runtime.runFork(Effect.logError("unexpected failure", Cause.pretty(cause)))
      return error
    },
    logRequest: (method, path, status, requestId, durationMs, fields) => {
      const level = status >= 500 ? "error" : status >= 400 ? "warning" : "info"
      if (!host.enabled(level)) return
      host.log(level, { msg: "request", request_id: requestId, method, path, status, duration_ms: Math.round(durationMs * 10) / 10, ...fields })
    }
  }
}
