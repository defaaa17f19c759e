/**
 * The gateway as an AWS Lambda handler: the same gateway (same config, same policies) behind API
 * Gateway (REST v1, HTTP API v2) and function URLs. Built once per cold start and reused by warm
 * invocations; the Lambda's remaining time caps each request's deadline. Streams use Lambda
 * response streaming when the runtime offers it; otherwise a streaming request is answered
 * buffered, with `x-breakwater-streaming: buffered` saying so.
 *
 * @since 0.1.0
 */
import { type ChatCompletion, RequestContext, RequestObserver } from "@breakwater/core"
import { ClientApi, ClientStream, type Gateway, type HostRuntime, RequestPipeline, type Tracing } from "@breakwater/gateway"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
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

/** A complete answer, or a stream still to run. */
type Response =
  | { readonly _tag: "Json"; readonly status: number; readonly headers: Record<string, string>; readonly body: string; readonly requestId: string }
  | {
    readonly _tag: "Stream"
    readonly protocol: RequestPipeline.Protocol
    readonly request: ChatCompletion.ChatRequest
    readonly ctx: RequestContext.RequestContextShape
    readonly requestId: string
    readonly span: Tracing.RequestSpan | undefined
  }

type Json = Extract<Response, { _tag: "Json" }>
type Streamed = Extract<Response, { _tag: "Stream" }>

const json = (status: number, body: string, requestId: string, trace?: RequestContext.RequestTrace): Json => ({
  _tag: "Json",
  status,
  body,
  headers: ClientApi.jsonHeaders(requestId, trace),
  requestId
})

/**
 * The one way this host answers an error (with `trace` once a call was made), in the shape of
 * the request's client API (OpenAI's without one).
 */
const error = (e: ClientApi.ApiError, requestId: string, trace?: RequestContext.RequestTrace, protocol?: RequestPipeline.Protocol): Json => ({
  _tag: "Json",
  status: e.status,
  body: (protocol?.errorBody ?? ClientApi.errorBody)(e, requestId),
  headers: ClientApi.errorHeaders(e, requestId, trace),
  requestId
})

/** How a call started on the host runtime ends. */
const exitOf = <A, E>(fiber: Fiber.RuntimeFiber<A, E>): Promise<Exit.Exit<A, E>> =>
  new Promise((resolve) => fiber.addObserver(resolve))

const endsWith = (path: string, route: string) => path === route || path.endsWith(route)

/**
 * Creates the handlers for a gateway.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <E>(options: Options<E>): Handlers => {
  let built: Promise<RequestPipeline.RequestPipeline> | undefined
  let builds = 0
  let tracer: Tracing.Tracer | undefined
  const margin = options.deadlineMarginMs ?? 500
  const build = (): Promise<RequestPipeline.RequestPipeline> =>
    (built ??= (async () => {
      builds++
      // The scope is never closed: pools and breakers live as long as the container.
      const scope = Effect.runSync(Scope.make())
      const gateway = await Effect.runPromise(Scope.extend(options.gateway, scope))
      tracer = gateway.telemetry
      // The invocation's remaining time is each request's deadline, whatever the model.
      return RequestPipeline.make(gateway, { log: options.log, logLevel: options.logLevel, hostDeadlines: true })
    })().catch((error) => {
      built = undefined
      throw error
    }))

  /**
   * `POST /v1/messages/count_tokens`: admitted as a Messages request, proxied to the Anthropic
   * upstream that starts the model's route, or the 400 saying that none does.
   */
  const countTokens = async (req: LambdaEvent.Request, requestId: string, pipeline: RequestPipeline.RequestPipeline): Promise<Response> => {
    const protocol = pipeline.messages
    if (req.method !== "POST") return error(ClientApi.methodNotAllowed(req.method, req.path, "POST"), requestId, undefined, protocol)
    const key = protocol.admit(req.headers["authorization"], req.headers["x-api-key"], req.headers["content-type"])
    if (ClientApi.isApiError(key)) return error(key, requestId, undefined, protocol)
    const ctx = RequestContext.make({ requestId })
    const started = pipeline.startCountTokens(req.body, key, ctx)
    if (Either.isLeft(started)) return error(started.left, requestId, undefined, protocol)
    const exit = await exitOf(started.right)
    if (Exit.isSuccess(exit)) return json(200, exit.value, requestId, ctx.trace)
    return error(pipeline.failureOf(exit.cause, ctx.trace), requestId, ctx.trace, protocol)
  }

  const route = async (req: LambdaEvent.Request, context: LambdaEvent.Context, pipeline: RequestPipeline.RequestPipeline): Promise<Response> => {
    const requestId = ClientApi.requestIdFrom(req.headers["x-request-id"] ?? context.awsRequestId)
    const { api, host } = pipeline
    if (endsWith(req.path, "/healthz")) return json(200, `{"status":"ok"}`, requestId)
    if (endsWith(req.path, "/readyz")) {
      const answer = api.readiness(await host.runtime.runPromise(pipeline.gateway.health), false, req.headers["authorization"])
      return json(answer.status, answer.body, requestId)
    }
    if (endsWith(req.path, "/v1/messages/count_tokens")) return countTokens(req, requestId, pipeline)
    const isModels = endsWith(req.path, "/v1/models")
    const protocol = endsWith(req.path, "/v1/chat/completions") ? pipeline.chat : endsWith(req.path, "/v1/messages") ? pipeline.messages : undefined
    if (!isModels && protocol === undefined) return error(ClientApi.noRoute(req.method, req.path), requestId)
    const expected = isModels ? "GET" : "POST"
    if (req.method !== expected) return error(ClientApi.methodNotAllowed(req.method, req.path, expected), requestId, undefined, protocol)
    if (protocol === undefined) {
      const key = pipeline.authenticate(req.headers["authorization"])
      return ClientApi.isApiError(key) ? error(key, requestId) : json(200, api.modelsBodyFor(key), requestId)
    }
    const key = protocol.admit(req.headers["authorization"], req.headers["x-api-key"], req.headers["content-type"])
    if (ClientApi.isApiError(key)) return error(key, requestId, undefined, protocol)
    const parsed = protocol.decode(req.body, key)
    if (parsed._tag === "Left") return error(parsed.left, requestId, undefined, protocol)
    const request = parsed.right
    const span = pipeline.observe(requestId, req.headers, request)
    const ctx = RequestContext.make({
      requestId,
      deadline: Date.now() + Math.max(0, context.getRemainingTimeInMillis() - margin),
      observer: RequestObserver.combine(span)
    })
    if (request.stream === true) return { _tag: "Stream", protocol, request, ctx, requestId, span }
    const exit = await exitOf(pipeline.startGenerate(request, ctx))
    const failure = Exit.isSuccess(exit) ? undefined : pipeline.failureOf(exit.cause, ctx.trace)
    span?.end(failure)
    if (Exit.isSuccess(exit)) return json(200, protocol.encode(exit.value), requestId, ctx.trace)
    return error(failure!, requestId, ctx.trace, protocol)
  }

  /**
   * Runs a streamed completion into a writer; resolves with the failure, if any. `whenFull` gets
   * the function that resumes the upstream once a full transport drains.
   */
  const runStream = (
    pipeline: RequestPipeline.RequestPipeline,
    r: Streamed,
    writer: ClientStream.Writer,
    whenFull: (resume: () => void) => void = (resume) => resume()
  ): Promise<ClientApi.ApiError | undefined> =>
    exitOf(pipeline.startStream(r.request, r.ctx, writer, whenFull))
      .then((exit) => {
        const failure = Exit.isSuccess(exit) ? undefined : pipeline.failureOf(exit.cause, r.ctx.trace)
        r.span?.end(failure)
        return failure
      })

  const logLine = (pipeline: RequestPipeline.RequestPipeline, req: LambdaEvent.Request, status: number, requestId: string, startedAt: number, failure?: ClientApi.ApiError) =>
    pipeline.logRequest(req.method, req.path, status, requestId, performance.now() - startedAt, failure === undefined ? undefined : { error: failure.code })

  /**
   * A container is frozen between invocations and may never thaw: when the gateway traces, the
   * invocation's spans are exported before it returns.
   */
  const flushing = <A extends ReadonlyArray<unknown>, R>(handle: (...args: A) => Promise<R>) => async (...args: A): Promise<R> => {
    try {
      return await handle(...args)
    } finally {
      if (tracer !== undefined) await tracer.flush().catch(() => undefined)
    }
  }

  const buffered = flushing(async (event: LambdaEvent.Event, context: LambdaEvent.Context): Promise<LambdaEvent.Result> => {
    const startedAt = performance.now()
    const pipeline = await build()
    const req = LambdaEvent.toRequest(event)
    const response = await route(req, context, pipeline)
    const result = (r: Json, failure?: ClientApi.ApiError): LambdaEvent.Result => {
      logLine(pipeline, req, r.status, r.requestId, startedAt, failure)
      return { statusCode: r.status, headers: r.headers, body: r.body, isBase64Encoded: false }
    }
    if (response._tag === "Json") return result(response)
    let body = ""
    const writer = response.protocol.writer(response.request, {
      commit: (heldBack) => {
        body += heldBack
      },
      write: (frames) => {
        body += frames
        return true
      }
    }, undefined)
    const failure = await runStream(pipeline, response, writer)
    const trace = response.ctx.trace
    const last = ClientStream.end(writer, failure, response.requestId)
    if (last === undefined) return result(error(failure!, response.requestId, trace, response.protocol), failure)
    body += last.frame
    const headers = ClientStream.headers(response.requestId, trace, undefined)
    headers["x-breakwater-streaming"] = "buffered"
    logLine(pipeline, req, 200, response.requestId, startedAt, failure)
    return { statusCode: 200, headers, body, isBase64Encoded: false }
  })

  const streaming = flushing(async (event: LambdaEvent.Event, responseStream: Writable, context: LambdaEvent.Context): Promise<void> => {
    const startedAt = performance.now()
    const awslambda = ResponseStream.runtimeGlobal()
    if (awslambda === undefined) throw new Error("Lambda response streaming is not available in this runtime")
    const pipeline = await build()
    const req = LambdaEvent.toRequest(event)
    const response = await route(req, context, pipeline)
    const end = (out: Writable) => new Promise<void>((resolve) => out.end(resolve))
    const answer = async (r: Json, failure?: ClientApi.ApiError) => {
      const out = awslambda.HttpResponseStream.from(responseStream, { statusCode: r.status, headers: r.headers })
      out.write(r.body)
      await end(out)
      logLine(pipeline, req, r.status, r.requestId, startedAt, failure)
    }
    if (response._tag === "Json") return answer(response)
    let out: Writable | undefined
    const writer = response.protocol.writer(response.request, {
      commit: (heldBack) => {
        out = awslambda.HttpResponseStream.from(responseStream, { statusCode: 200, headers: ClientStream.headers(response.requestId, response.ctx.trace, undefined) })
        if (heldBack !== "") out.write(heldBack)
      },
      write: (frames) => out!.write(frames)
    }, undefined)
    const failure = await runStream(pipeline, response, writer, (resume) => out!.once("drain", resume))
    const last = ClientStream.end(writer, failure, response.requestId)
    if (last === undefined) return answer(error(failure!, response.requestId, response.ctx.trace, response.protocol), failure)
    out!.write(last.frame)
    await end(out!)
    logLine(pipeline, req, 200, response.requestId, startedAt, failure)
  })

  const runtime = ResponseStream.runtimeGlobal()
  return {
    buffered,
    streaming,
    handler: runtime === undefined ? buffered : runtime.streamifyResponse(streaming),
    builds: () => builds
  }
}
