/**
 * The gateway as an AWS Lambda handler: the same gateway (same config, same policies) behind API
 * Gateway (REST v1, HTTP API v2) and function URLs. Built once per cold start and reused by warm
 * invocations; the Lambda's remaining time caps each request's deadline. Streams use Lambda
 * response streaming when the runtime offers it; otherwise a streaming request is answered
 * buffered, with `x-breakwater-streaming: buffered` saying so.
 *
 * @since 0.1.0
 */
import { type ChatCompletion, LanguageModel, ModelError, RequestContext } from "@breakwater/core"
import { ClientApi, ClientStream, type Gateway, HostRuntime } from "@breakwater/gateway"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import type { Writable } from "node:stream"
import * as LambdaEvent from "./LambdaEvent.js"
import * as ResponseStream from "./ResponseStream.js"

/**
 * Handler options.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<E> {
  /** Builds the gateway; runs once per container, on the first invocation. */
  readonly gateway: Effect.Effect<Gateway.Gateway, E, Scope.Scope>
  readonly log?: HostRuntime.LogSink | undefined
  readonly logLevel?: HostRuntime.Level | undefined
  /** Time kept back from the invocation's remaining time, so the error event still goes out (default 500 ms). */
  readonly deadlineMarginMs?: number | undefined
}

/**
 * The handlers for one gateway.
 *
 * @since 0.1.0
 * @category models
 */
export interface Handlers {
  /** The proxy-result handler (API Gateway v1/v2, function URLs in BUFFERED mode). */
  readonly buffered: (event: LambdaEvent.Event, context: LambdaEvent.Context) => Promise<LambdaEvent.Result>
  /** The response-streaming handler body, for `awslambda.streamifyResponse`. */
  readonly streaming: (event: LambdaEvent.Event, responseStream: Writable, context: LambdaEvent.Context) => Promise<void>
  /** What to export as the Lambda handler: streaming where the runtime offers it, else buffered. */
  readonly handler: unknown
  /** How many times the gateway was built (once per container). */
  readonly builds: () => number
}

interface Built {
  readonly gateway: Gateway.Gateway
  readonly api: ClientApi.Api
  readonly host: HostRuntime.HostRuntime
}

type Response =
  | { readonly _tag: "Json"; readonly status: number; readonly headers: Record<string, string>; readonly body: string }
  | { readonly _tag: "Stream"; readonly request: ChatCompletion.ChatRequest; readonly ctx: RequestContext.RequestContextShape; readonly requestId: string }

const endsWith = (path: string, route: string) => path === route || path.endsWith(route)

/**
 * Creates the handlers for a gateway.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <E>(options: Options<E>): Handlers => {
  let built: Promise<Built> | undefined
  let builds = 0
  const margin = options.deadlineMarginMs ?? 500
  const build = (): Promise<Built> =>
    (built ??= (async () => {
      builds++
      // The scope is never closed: pools and breakers live as long as the container.
      const scope = Effect.runSync(Scope.make())
      const gateway = await Effect.runPromise(Scope.extend(options.gateway, scope))
      const api = ClientApi.make(gateway)
      return { gateway, api, host: HostRuntime.make({ sink: options.log, level: options.logLevel, secrets: api.secrets }) }
    })().catch((error) => {
      built = undefined
      throw error
    }))

  const json = (status: number, body: string, headers: Record<string, string>): Response => ({
    _tag: "Json",
    status,
    body,
    headers: { "content-type": "application/json", ...headers }
  })
  const error = (e: ClientApi.ApiError, requestId: string, extra?: Record<string, string>): Response => ({
    _tag: "Json",
    status: e.status,
    body: ClientApi.errorBody(e, requestId),
    headers: { ...ClientApi.errorHeaders(e, requestId), ...extra }
  })

  const withDeadline = <A>(self: Effect.Effect<A, ModelError.ModelError>, ms: number) =>
    Effect.timeoutFail(self, {
      duration: Duration.millis(ms),
      onTimeout: () => new ModelError.Timeout({ message: "the Lambda invocation is about to time out", phase: "total" })
    })

  const route = async (req: LambdaEvent.Request, context: LambdaEvent.Context, { gateway, api, host }: Built): Promise<Response> => {
    const requestId = ClientApi.requestIdFrom(req.headers["x-request-id"] ?? context.awsRequestId)
    const base = { "x-request-id": requestId }
    if (endsWith(req.path, "/healthz")) return json(200, JSON.stringify({ status: "ok" }), base)
    if (endsWith(req.path, "/readyz")) {
      const answer = api.readiness(await host.runtime.runPromise(gateway.health), false, req.headers["authorization"])
      return json(answer.status, answer.body, base)
    }
    const isModels = endsWith(req.path, "/v1/models")
    const isChat = endsWith(req.path, "/v1/chat/completions")
    if (!isModels && !isChat) return error({ status: 404, message: `no route for ${req.method} ${req.path}`, type: "invalid_request_error", code: "not_found" }, requestId)
    const expected = isModels ? "GET" : "POST"
    if (req.method !== expected) {
      return error({ status: 405, message: `${req.method} is not allowed on ${req.path}`, type: "invalid_request_error", code: "method_not_allowed" }, requestId, { allow: expected })
    }
    const key = api.auth.enabled ? api.auth.check(req.headers["authorization"]) : undefined
    if (api.auth.enabled && key === undefined) return error(ClientApi.unauthorized, requestId)
    if (isModels) return json(200, api.modelsBodyFor(key), base)
    if (!ClientApi.isJsonContentType(req.headers["content-type"])) return error(ClientApi.unsupportedMediaType, requestId)
    if (req.body.length > gateway.server.maxBodyBytes) return error(ClientApi.tooLarge(gateway.server.maxBodyBytes), requestId)
    const text = ClientApi.decodeUtf8(req.body)
    if (text._tag === "Left") return error(text.left, requestId)
    const parsed = api.parseChat(text.right, key)
    if (parsed._tag === "Left") return error(parsed.left, requestId)
    const request = parsed.right
    const remaining = Math.max(0, context.getRemainingTimeInMillis() - margin)
    const ctx = RequestContext.make({ requestId, deadline: Date.now() + remaining })
    if (request.stream === true) return { _tag: "Stream", request, ctx, requestId }
    const exit = await host.runtime.runPromiseExit(
      Effect.provideService(withDeadline(gateway.model.generate(request), remaining), RequestContext.RequestContext, ctx)
    )
    if (Exit.isSuccess(exit)) return json(200, JSON.stringify(exit.value), { ...base, ...ClientApi.traceHeaders(ctx.trace) })
    return error(ClientApi.fromCause(exit.cause, ctx.trace, api.secrets), requestId, ClientApi.traceHeaders(ctx.trace))
  }

  /**
   * Runs a streamed completion into a writer; resolves with the failure, if any. `whenFull` gets
   * the function that resumes the upstream once a full transport drains.
   */
  const runStream = (
    { gateway, api, host }: Built,
    r: Extract<Response, { _tag: "Stream" }>,
    writer: ClientStream.Writer,
    whenFull: (resume: () => void) => void = (resume) => resume()
  ): Promise<ClientApi.ApiError | undefined> => {
    const remaining = Math.max(0, (r.ctx.deadline ?? Date.now()) - Date.now())
    const run = LanguageModel.runOf(gateway.model)(r.request, undefined, ClientStream.chunkSink(writer, whenFull)).pipe(
      Effect.timeoutFail({
        duration: Duration.millis(remaining),
        onTimeout: () => new ModelError.Timeout({ message: "the Lambda invocation is about to time out", phase: "total" })
      })
    )
    return host.runtime.runPromiseExit(Effect.provideService(run, RequestContext.RequestContext, r.ctx))
      .then((exit) => (Exit.isSuccess(exit) ? undefined : ClientApi.fromCause(exit.cause, r.ctx.trace, api.secrets)))
  }

  const logLine = (b: Built, req: LambdaEvent.Request, status: number, startedAt: number, extra: Record<string, unknown> = {}) => {
    const level = status >= 500 ? "error" : status >= 400 ? "warning" : "info"
    b.host.log(level, { msg: "request", method: req.method, path: req.path, status, duration_ms: Math.round(performance.now() - startedAt), ...extra })
  }

  const buffered = async (event: LambdaEvent.Event, context: LambdaEvent.Context): Promise<LambdaEvent.Result> => {
    const startedAt = performance.now()
    const b = await build()
    const req = LambdaEvent.toRequest(event)
    const response = await route(req, context, b)
    if (response._tag === "Json") {
      logLine(b, req, response.status, startedAt)
      return { statusCode: response.status, headers: response.headers, body: response.body, isBase64Encoded: false }
    }
    let body = ""
    let headers: Record<string, string> = {}
    const writer = ClientStream.make({
      includeUsage: response.request.stream_options?.include_usage === true,
      sink: {
        commit: (heldBack) => {
          headers = sseHeaders(response.requestId, response.ctx.trace)
          body += heldBack
        },
        write: (frames) => {
          body += frames
          return true
        }
      }
    })
    const failure = await runStream(b, response, writer)
    const trace = { ...ClientApi.traceHeaders(response.ctx.trace) }
    if (failure !== undefined && !writer.committed()) {
      logLine(b, req, failure.status, startedAt, { error: failure.code })
      return { statusCode: failure.status, headers: { ...ClientApi.errorHeaders(failure, response.requestId), ...trace }, body: ClientApi.errorBody(failure, response.requestId), isBase64Encoded: false }
    }
    writer.commit()
    body += failure === undefined ? ClientStream.done : `data: ${ClientApi.errorBody(failure, response.requestId)}\n\n`
    logLine(b, req, 200, startedAt, failure === undefined ? {} : { error: failure.code })
    return { statusCode: 200, headers: { ...headers, ...trace, "x-breakwater-streaming": "buffered" }, body, isBase64Encoded: false }
  }

  const streaming = async (event: LambdaEvent.Event, responseStream: Writable, context: LambdaEvent.Context): Promise<void> => {
    const startedAt = performance.now()
    const awslambda = ResponseStream.runtimeGlobal()
    if (awslambda === undefined) throw new Error("Lambda response streaming is not available in this runtime")
    const b = await build()
    const req = LambdaEvent.toRequest(event)
    const response = await route(req, context, b)
    const end = (out: Writable) => new Promise<void>((resolve) => out.end(resolve))
    if (response._tag === "Json") {
      const out = awslambda.HttpResponseStream.from(responseStream, { statusCode: response.status, headers: response.headers })
      out.write(response.body)
      await end(out)
      logLine(b, req, response.status, startedAt)
      return
    }
    let out: Writable | undefined
    const writer = ClientStream.make({
      includeUsage: response.request.stream_options?.include_usage === true,
      sink: {
        commit: (heldBack) => {
          out = awslambda.HttpResponseStream.from(responseStream, { statusCode: 200, headers: sseHeaders(response.requestId, response.ctx.trace) })
          if (heldBack !== "") out.write(heldBack)
        },
        write: (frames) => out!.write(frames)
      }
    })
    const failure = await runStream(b, response, writer, (resume) => out!.once("drain", resume))
    if (failure !== undefined && !writer.committed()) {
      const errOut = awslambda.HttpResponseStream.from(responseStream, {
        statusCode: failure.status,
        headers: { ...ClientApi.errorHeaders(failure, response.requestId), ...ClientApi.traceHeaders(response.ctx.trace) }
      })
      errOut.write(ClientApi.errorBody(failure, response.requestId))
      await end(errOut)
      logLine(b, req, failure.status, startedAt, { error: failure.code })
      return
    }
    writer.commit()
    out!.write(failure === undefined ? ClientStream.done : `data: ${ClientApi.errorBody(failure, response.requestId)}\n\n`)
    await end(out!)
    logLine(b, req, 200, startedAt, failure === undefined ? {} : { error: failure.code })
  }

  const runtime = ResponseStream.runtimeGlobal()
  return {
    buffered,
    streaming,
    handler: runtime === undefined ? buffered : runtime.streamifyResponse(streaming),
    builds: () => builds
  }
}

const sseHeaders = (requestId: string, trace: RequestContext.RequestTrace): Record<string, string> => ({
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
  "x-request-id": requestId,
  ...ClientApi.traceHeaders(trace)
})

