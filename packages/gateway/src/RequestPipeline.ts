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
import { type ChatCompletion, LanguageModel, type ModelError, RequestContext, WireText } from "@breakwater/core"
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
import * as MessagesApi from "./MessagesApi.js"

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
 * A client-facing API a host serves through the one pipeline: how its requests are admitted and
 * decoded into the canonical request, and how answers, stream events and errors are encoded.
 * The host's flow (admission, the call, streaming, journaling, reconnects) is the same for each.
 *
 * @since 0.3.0
 * @category models
 */
export interface Protocol {
  /** `chat`: OpenAI Chat Completions; `messages`: Anthropic Messages. */
  readonly name: "chat" | "messages"
  /**
   * What the request's headers allow before its body is read: the client key (`Authorization:
   * Bearer`; Messages also takes Anthropic's `x-api-key`), then the 415 for a body not declared
   * JSON. Anything else (`anthropic-version`, `anthropic-beta`) is accepted and ignored.
   */
  readonly admit: (authorization: string | undefined, apiKey: string | undefined, contentType: string | undefined) => ClientKey | undefined | ClientApi.ApiError
  /** The body: the 413 past `maxBodyBytes`, strict UTF-8, JSON, the schema, the model, the key's permission. */
  readonly decode: (body: Uint8Array, key: ClientKey | undefined) => Either.Either<ChatCompletion.ChatRequest, ClientApi.ApiError>
  /** A non-streaming answer's JSON body. */
  readonly encode: (completion: ChatCompletion.ChatCompletion) => string
  /**
   * The same body for a host that writes bytes: the upstream's own bytes when the answer went
   * through unchanged (`WireText.encodeBody`), so they are neither encoded nor transcoded again.
   */
  readonly encodeBody: (completion: ChatCompletion.ChatCompletion) => string | Uint8Array
  /** An error response's JSON body (the headers are `ClientApi.errorHeaders`' for every API). */
  readonly errorBody: (error: ClientApi.ApiError, requestId: string) => string
  /** The error event that ends a stream whose headers are gone (a replay cut by the journal). */
  readonly errorEvent: (error: ClientApi.ApiError, requestId: string) => string
  /** The writer of one streamed answer (`ClientStream.make` with this API's events). */
  readonly writer: (request: ChatCompletion.ChatRequest, sink: ClientStream.Sink, events: ClientStream.Events | undefined) => ClientStream.Writer
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
   * `traceparent` in `headers` continues the caller's trace. A request that is no chat call (a
   * reconnect by the streams API) gives no `request` and its `operation` (`Tracing.streamReplay`).
   */
  readonly observe: (
    requestId: string,
    headers: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>,
    request: ChatCompletion.ChatRequest | undefined,
    operation?: string | undefined
  ) => Tracing.RequestSpan | undefined
  /** A Messages request's body, as `decodeChat` a chat request's. */
  readonly decodeMessages: (body: Uint8Array, key: ClientKey | undefined) => Either.Either<ChatCompletion.ChatRequest, ClientApi.ApiError>
  /** Who calls, as an Anthropic client says it: `x-api-key` when sent, else `authenticate`. */
  readonly authenticateMessages: (authorization: string | undefined, apiKey: string | undefined) => ClientKey | undefined | ClientApi.ApiError
  /** OpenAI Chat Completions (`POST /v1/chat/completions`). */
  readonly chat: Protocol
  /** Anthropic Messages (`POST /v1/messages`). */
  readonly messages: Protocol
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
  /**
   * `POST /v1/messages/count_tokens` started on the host's runtime: the body checked (size,
   * UTF-8, a JSON object naming a model the key may use), then proxied to the Anthropic upstream
   * that starts the model's route (`Gateway.tokenCounters`), its answer's JSON text the fiber's
   * value; the 400 (no fiber) when no Anthropic upstream serves the model.
   */
  readonly startCountTokens: (
    body: Uint8Array,
    key: ClientKey | undefined,
    ctx: RequestContext.RequestContextShape
  ) => Either.Either<Fiber.RuntimeFiber<string, ModelError.ModelError>, ClientApi.ApiError>
  /** A failed call's client-facing error; a defect (a 500) is logged with its cause. */
  readonly failureOf: (cause: Cause.Cause<unknown>, trace: RequestContext.RequestTrace) => ClientApi.ApiError
  /**
   * The request's log line, at a level its status decides (5xx error, 4xx warning); `fields`,
   * then `more`, are added to it. Nothing is built when the level is off.
   */
  readonly logRequest: (
    method: string,
    path: string,
    status: number,
    requestId: string,
    durationMs: number,
    fields?: Record<string, unknown> | undefined,
    more?: Record<string, unknown> | undefined
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

const utf8 = new TextDecoder()
const encodeMessage = (completion: ChatCompletion.ChatCompletion): string => JSON.stringify(MessagesApi.encodeMessage(completion))

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
  const authenticateMessages = (authorization: string | undefined, apiKey: string | undefined) => {
    if (!auth.enabled) return undefined
    return (apiKey === undefined ? auth.check(authorization) : auth.checkKey(apiKey)) ?? ClientApi.unauthorized
  }
  const admitJson = (key: ClientKey | undefined | ClientApi.ApiError, contentType: string | undefined) =>
    ClientApi.isApiError(key) || ClientApi.isJsonContentType(contentType) ? key : ClientApi.unsupportedMediaType
  const admitChat = (authorization: string | undefined, contentType: string | undefined) => admitJson(authenticate(authorization), contentType)
  const decodeWith = (parse: ClientApi.Api["parseChat"]) => (body: Uint8Array, key: ClientKey | undefined) => {
    if (body.length > maxBodyBytes) return Either.left(ClientApi.tooLarge(maxBodyBytes))
    const text = ClientApi.decodeUtf8(body)
    return Either.isLeft(text) ? Either.left(text.left) : parse(text.right, key)
  }
  const decodeChat = decodeWith(api.parseChat)
  const decodeMessages = decodeWith(api.parseMessages)
  return {
    gateway,
    api,
    host,
    authenticate,
    admitChat,
    decodeChat,
    decodeMessages,
    authenticateMessages,
    chat: {
      name: "chat",
      admit: (authorization, _apiKey, contentType) => admitChat(authorization, contentType),
      decode: decodeChat,
      encode: (completion) => {
        const body = WireText.encodeBody(completion)
        return typeof body === "string" ? body : utf8.decode(body)
      },
      encodeBody: WireText.encodeBody,
      errorBody: ClientApi.errorBody,
      errorEvent: ClientStream.errorEvent,
      writer: (request, sink, events) => ClientStream.make({ includeUsage: request.stream_options?.include_usage === true, sink, events })
    },
    messages: {
      name: "messages",
      admit: (authorization, apiKey, contentType) => admitJson(authenticateMessages(authorization, apiKey), contentType),
      decode: decodeMessages,
      encode: encodeMessage,
      encodeBody: encodeMessage,
      errorBody: MessagesApi.errorBody,
      errorEvent: MessagesApi.errorEvent,
      writer: (request, sink, events) =>
        ClientStream.make({ includeUsage: true, sink, events, encoding: MessagesApi.streamEncoding({ model: request.model }) })
    },
    observe: tracer === undefined ? () => undefined : (requestId, headers, request, operation) => tracer.request({ requestId, headers, request, operation }),
    generate: (request, ctx) => Effect.provideService(model.generate(request, handed(ctx)), RequestContext.RequestContext, ctx),
    stream: (request, ctx, writer, whenFull) =>
      Effect.provideService(run(request, handed(ctx), ClientStream.chunkSink(writer, whenFull)), RequestContext.RequestContext, ctx),
    startGenerate: (request, ctx) => forkIn(model.generate(request, handed(ctx)), ctx),
    startStream: (request, ctx, writer, whenFull) => forkIn(run(request, handed(ctx), ClientStream.chunkSink(writer, whenFull)), ctx),
    startCountTokens: (body, key, ctx) => {
      if (body.length > maxBodyBytes) return Either.left(ClientApi.tooLarge(maxBodyBytes))
      const text = ClientApi.decodeUtf8(body)
      if (Either.isLeft(text)) return Either.left(text.left)
      let parsed: unknown
      try {
        parsed = JSON.parse(text.right)
      } catch (error) {
        return Either.left(ClientApi.badRequest(`request body is not valid JSON: ${(error as Error).message}`, "invalid_json"))
      }
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return Either.left(ClientApi.badRequest("invalid request: the body must be a JSON object", "invalid_request"))
      const model = (parsed as { model?: unknown }).model
      if (typeof model !== "string" || model.length === 0) return Either.left(ClientApi.badRequest("invalid request: model must be a non-empty string", "invalid_request", "model"))
      const refused = api.permit(model, key)
      if (refused !== undefined) return Either.left(refused)
      const counter = gateway.tokenCounters?.get(model)
      if (counter === undefined) return Either.left(ClientApi.countTokensUnsupported(model))
      return Either.right(forkIn(Effect.map(counter(parsed as Record<string, unknown>), (answer) => JSON.stringify(answer)), ctx))
    },
    failureOf: (cause, trace) => {
      const error = ClientApi.fromCause(cause, trace, api.secrets)
      if (error.status === 500) host.runtime.runFork(Effect.logError("unexpected failure", Cause.pretty(cause)))
      return error
    },
    logRequest: (method, path, status, requestId, durationMs, fields, more) => {
      const level = status >= 500 ? "error" : status >= 400 ? "warning" : "info"
      if (!host.enabled(level)) return
      host.log(level, { msg: "request", request_id: requestId, method, path, status, duration_ms: Math.round(durationMs * 10) / 10, ...fields, ...more })
    }
  }
}
