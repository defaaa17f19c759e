/**
 * The spans a gateway exports, over the real adapter and a MockUpstream, as a host would run a
 * request: a request span from `Telemetry.request`, put in the request context as its observer.
 */
import { CircuitBreaker } from "@breakwater/circuit-breaker"
import { type ChatCompletion, LanguageModel, RequestContext } from "@breakwater/core"
import { ConfigLoader, GatewayBuilder } from "@breakwater/gateway"
import { OpenAiProvider } from "@breakwater/provider-openai"
import { Telemetry, TelemetryOptions } from "@breakwater/telemetry"
import { MockUpstream } from "@breakwater/testing"
import { describe, expect, it } from "@effect/vitest"
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Effect, Stream } from "effect"

const CANARY = "canary-7f3a9c1e-do-not-record"

const traced = (options: TelemetryOptions.TelemetryOptionsInput = { enabled: true }) => {
  const exporter = new InMemorySpanExporter()
  const telemetry = Telemetry.make(options, {
    spanProcessors: [new SimpleSpanProcessor(exporter)],
    upstreams: { primary: { provider: "openai" }, slow: { provider: "openai" }, fragile: { provider: "openai" }, secondary: { provider: "openai" } },
    env: {}
  })
  return { telemetry, spans: () => exporter.getFinishedSpans() }
}

const gatewayOver = (primary: MockUpstream.MockUpstream, secondary: MockUpstream.MockUpstream) =>
  Effect.flatMap(
    ConfigLoader.fromObject({
      upstreams: {
        primary: { provider: "openai", baseUrl: primary.url, apiKey: "sk-test-primary-0000", models: ["chat"] },
        fragile: {
          provider: "openai",
          baseUrl: primary.url,
          apiKey: "sk-test-primary-0000",
          models: ["chat"],
          breaker: { window: { kind: "count", size: 2 }, minimumCalls: 1, failureRateThreshold: 50 }
        },
        slow: { provider: "openai", baseUrl: primary.url, apiKey: "sk-test-primary-0000", models: ["chat"], timeouts: { headers: "100 millis" } },
        secondary: { provider: "openai", baseUrl: secondary.url, apiKey: "sk-test-secondary-0000", models: ["chat"] }
      },
      routes: {
        chat: { upstreams: ["primary", "secondary"], retry: { baseDelay: "1 millis", jitter: "none" } },
        solo: { upstreams: [{ upstream: "primary", model: "chat" }] },
        fragile: { upstreams: [{ upstream: "fragile", model: "chat" }], retry: { enabled: false } },
        slow: { upstreams: [{ upstream: "slow", model: "chat" }], retry: { baseDelay: "1 millis", jitter: "none" } }
      }
    }, {}),
    (config) => GatewayBuilder.make(config)
  )

/** Two mock upstreams and a gateway over them (stopped with the test's scope). */
const setup = Effect.gen(function*() {
  const primary = yield* MockUpstream.scoped()
  const secondary = yield* MockUpstream.scoped()
  return { primary, gateway: yield* gatewayOver(primary, secondary) }
})

const request = (model = "chat", content = "Hello"): ChatCompletion.ChatRequest => ({ model, messages: [{ role: "user", content }] })

/** Runs a call as a host would: a request span, in the context, ended with the call's outcome. */
const asHost = <A, E>(
  telemetry: Telemetry.Telemetry,
  info: Telemetry.RequestInfo,
  call: Effect.Effect<A, E>
): Effect.Effect<A, E> => {
  const span = telemetry.request(info)
  return call.pipe(
    Effect.provideService(RequestContext.RequestContext, RequestContext.make({ requestId: info.requestId, observer: span })),
    Effect.tapBoth({ onFailure: (error) => Effect.sync(() => span?.end(error)), onSuccess: () => Effect.sync(() => span?.end()) })
  )
}

const requestSpan = (spans: ReadonlyArray<ReadableSpan>) => spans.find((s) => s.attributes["breakwater.request_id"] !== undefined)!
const attemptsOf = (spans: ReadonlyArray<ReadableSpan>, parent: ReadableSpan) =>
  spans.filter((s) => s.parentSpanContext?.spanId === parent.spanContext().spanId)
const eventsNamed = (span: ReadableSpan, name: string) => span.events.filter((e) => e.name === name)
const traceparentOf = (span: ReadableSpan) => `00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`

describe("Telemetry", () => {
  it.live("a retried request: one request span, an attempt span per try, the retry as an event, the trace sent upstream", () =>
    Effect.gen(function*() {
      const { gateway, primary } = yield* setup
      const { spans, telemetry } = traced()
      primary.script({ fault: MockUpstream.Fault.Status({ status: 503 }) })
      const reply = yield* asHost(telemetry, { requestId: "r-1", request: request() }, gateway.model.generate(request()))

      const root = requestSpan(spans())
      expect(root.name).toBe("chat chat")
      expect(root.attributes).toMatchObject({ "gen_ai.operation.name": "chat", "gen_ai.request.model": "chat", "breakwater.attempts": 2, "breakwater.retries": 1 })
      expect(eventsNamed(root, "breakwater.retry").map((e) => e.attributes)).toEqual([
        { "breakwater.attempt": 1, "error.type": "UpstreamUnavailable", "breakwater.retry.wait_ms": 1 }
      ])
      const [failed, served] = attemptsOf(spans(), root)
      expect(failed!.attributes).toMatchObject({ "gen_ai.provider.name": "openai", "breakwater.upstream": "primary", "breakwater.attempt": 1, "error.type": "UpstreamUnavailable" })
      expect(served!.attributes).toMatchObject({
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "chat",
        "gen_ai.response.id": reply.id,
        "gen_ai.response.model": reply.model,
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.usage.input_tokens": reply.usage!.prompt_tokens,
        "gen_ai.usage.output_tokens": reply.usage!.completion_tokens,
        "breakwater.attempt": 2
      })
      expect(served!.attributes["gen_ai.server.time_to_first_token"]).toBeTypeOf("number")
      expect(root.attributes["gen_ai.response.id"]).toBe(reply.id)
      // Each attempt's own context went upstream with it.
      expect(primary.requests.map((r) => r.headers["traceparent"])).toEqual([traceparentOf(failed!), traceparentOf(served!)])
    }).pipe(Effect.scoped))

  it.live("a fallback: the decision as an event, an attempt span on each upstream", () =>
    Effect.gen(function*() {
      const { gateway, primary } = yield* setup
      const { spans, telemetry } = traced()
      primary.script({ fault: MockUpstream.Fault.Status({ status: 401 }) })
      yield* asHost(telemetry, { requestId: "r-2", request: request() }, gateway.model.generate(request()))

      const root = requestSpan(spans())
      expect(eventsNamed(root, "breakwater.fallback").map((e) => e.attributes)).toEqual([
        { "breakwater.fallback.from": "primary@chat", "breakwater.fallback.to": "secondary@chat", "error.type": "UpstreamAuth" }
      ])
      expect(attemptsOf(spans(), root).map((s) => [s.attributes["breakwater.upstream"], s.attributes["error.type"]])).toEqual([
        ["primary", "UpstreamAuth"],
        ["secondary", undefined]
      ])
      expect(root.attributes["breakwater.fallbacks"]).toBe(1)
    }).pipe(Effect.scoped))

  it.live("a breaker rejection: the opening and the rejection as events, no attempt span for the refused call", () =>
    Effect.gen(function*() {
      const { gateway, primary } = yield* setup
      const { spans, telemetry } = traced()
      primary.setDefault({ fault: MockUpstream.Fault.Status({ status: 503 }) })
      yield* Effect.flip(asHost(telemetry, { requestId: "r-3", request: request("fragile") }, gateway.model.generate(request("fragile"))))
      const first = requestSpan(spans())
      expect(eventsNamed(first, "breakwater.circuit_breaker.transition").map((e) => e.attributes)).toEqual([
        { "breakwater.circuit_breaker.key": "fragile@chat", "breakwater.circuit_breaker.from": "closed", "breakwater.circuit_breaker.to": "open" }
      ])

      const error = yield* Effect.flip(asHost(telemetry, { requestId: "r-4", request: request("fragile") }, gateway.model.generate(request("fragile"))))
      expect(error._tag).toBe("CircuitOpen")
      const second = spans().find((s) => s.attributes["breakwater.request_id"] === "r-4")!
      // The router passes over a target whose breaker is open without calling it.
      expect(eventsNamed(second, "breakwater.router.skipped").map((e) => e.attributes)).toEqual([{ "breakwater.router.target": "fragile@chat" }])
      expect(attemptsOf(spans(), second)).toEqual([])
      expect(second.attributes["error.type"]).toBe("CircuitOpen")
      expect(primary.requests).toHaveLength(1)
    }).pipe(Effect.scoped))

  it.live("a timeout: its phase and limit as an event, then the retry", () =>
    Effect.gen(function*() {
      const { gateway, primary } = yield* setup
      const { spans, telemetry } = traced()
      primary.script({ fault: MockUpstream.Fault.StallBeforeHeaders() })
      yield* asHost(telemetry, { requestId: "t-1", request: request("slow") }, gateway.model.generate(request("slow")))
      const root = requestSpan(spans())
      expect(eventsNamed(root, "breakwater.timeout").map((e) => e.attributes)).toEqual([
        { "breakwater.timeout.phase": "headers", "breakwater.timeout.limit_ms": 100, "breakwater.timeout.received_chunks": 0, "breakwater.upstream": "slow" }
      ])
      expect(eventsNamed(root, "breakwater.retry")).toHaveLength(1)
      expect(attemptsOf(spans(), root).map((s) => s.attributes["error.type"])).toEqual(["Timeout", undefined])
    }).pipe(Effect.scoped))

  it.live("a breaker used alone: its rejection as an event, with the key and when it may close", () =>
    Effect.gen(function*() {
      const mock = yield* MockUpstream.scoped()
      const adapter = yield* OpenAiProvider.make({ name: "mock", baseUrl: mock.url })
      const model = yield* CircuitBreaker.withPolicy(adapter, { window: { kind: "count", size: 2 }, minimumCalls: 1, openDuration: "30 seconds" })
      const { spans, telemetry } = traced()
      mock.setDefault({ fault: MockUpstream.Fault.Status({ status: 503 }) })
      const call = request("gpt-mock")
      yield* Effect.flip(asHost(telemetry, { requestId: "b-1", request: call }, model.generate(call)))
      const error = yield* Effect.flip(asHost(telemetry, { requestId: "b-2", request: call }, model.generate(call)))
      expect(error._tag).toBe("CircuitOpen")
      const second = spans().find((s) => s.attributes["breakwater.request_id"] === "b-2")!
      const [rejected] = eventsNamed(second, "breakwater.circuit_breaker.rejected")
      expect(rejected?.attributes?.["breakwater.circuit_breaker.retry_after_ms"]).toBeGreaterThan(29_000)
      expect(rejected?.attributes?.["breakwater.circuit_breaker.key"]).toBeTypeOf("string")
      expect(attemptsOf(spans(), second)).toEqual([])
      expect(mock.requests).toHaveLength(1)
    }).pipe(Effect.scoped))

  it.live("a resumed stream: the seam as an event with the overlap trimmed, the broken attempt and the continuation as spans", () =>
    Effect.gen(function*() {
      const { gateway, primary } = yield* setup
      const { spans, telemetry } = traced()
      primary.script({ fault: MockUpstream.Fault.Cut({ afterChunks: 7 }) }, { continuation: MockUpstream.ContinuationFault.Overlap({ chars: 13 }) })
      const streamed = { ...request("solo"), stream: true as const }
      const chunks: Array<ChatCompletion.ChatCompletionChunk> = []
      const run = LanguageModel.runOf(gateway.model)(streamed, undefined, {
        start: () => {},
        push: (batch) => {
          chunks.push(...batch)
          return true
        }
      })
      yield* asHost(telemetry, { requestId: "r-5", request: streamed }, run)
      expect(chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe(primary.textFor(streamed))

      const root = requestSpan(spans())
      const [resumed] = eventsNamed(root, "breakwater.resume")
      expect(resumed?.attributes).toMatchObject({ "breakwater.resume.outcome": "resumed", "breakwater.resume.seam": 1 })
      expect(resumed?.attributes?.["breakwater.resume.seam_kind"]).toBeTypeOf("string")
      expect(resumed?.attributes?.["breakwater.resume.overlap_trimmed_chars"]).toBeGreaterThan(0)
      expect(root.attributes["breakwater.resumes"]).toBe(1)
      const attempts = attemptsOf(spans(), root)
      expect(attempts.map((s) => s.attributes["error.type"])).toEqual(["StreamInterrupted", undefined])
      expect(attempts.map((s) => s.attributes["breakwater.stream"])).toEqual([true, true])
      expect(attempts[1]!.attributes["gen_ai.response.finish_reasons"]).toEqual(["stop"])
      expect(attempts[0]!.attributes["gen_ai.server.time_to_first_token"]).toBeTypeOf("number")
    }).pipe(Effect.scoped))

  it.live("an incoming traceparent: the request span continues that trace, and the upstream sees the same trace", () =>
    Effect.gen(function*() {
      const { gateway, primary } = yield* setup
      const { spans, telemetry } = traced()
      const traceId = "4bf92f3577b34da6a3ce929d0e0e4736"
      const parentId = "00f067aa0ba902b7"
      const headers = { traceparent: `00-${traceId}-${parentId}-01`, "content-type": "application/json" }
      yield* asHost(telemetry, { requestId: "r-6", request: request(), headers }, gateway.model.generate(request()))
      const root = requestSpan(spans())
      expect(root.spanContext().traceId).toBe(traceId)
      expect(root.parentSpanContext?.spanId).toBe(parentId)
      expect(primary.requests[0]!.headers["traceparent"]).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`))
    }).pipe(Effect.scoped))

  it.live("a canary prompt is in no span unless captureContent is on", () =>
    Effect.gen(function*() {
      const { gateway, primary } = yield* setup
      const canary = request("chat", `Tell me about ${CANARY}`)
      const exported = (spans: ReadonlyArray<ReadableSpan>) => JSON.stringify(spans.map((s) => ({ name: s.name, attributes: s.attributes, events: s.events, status: s.status })))

      for (const captureContent of [false, true]) {
        const { spans, telemetry } = traced({ enabled: true, captureContent })
        primary.script({ fault: MockUpstream.Fault.Status({ status: 503 }) })
        yield* asHost(telemetry, { requestId: `canary-${captureContent}`, request: canary }, gateway.model.generate(canary))
        const streamed = { ...canary, stream: true as const }
        yield* asHost(telemetry, { requestId: `canary-stream-${captureContent}`, request: streamed }, Stream.runDrain(gateway.model.stream(streamed)))
        const text = exported(spans())
        const answer = primary.textFor(canary).split(" ").slice(0, 3).join(" ")
        expect(spans().length).toBeGreaterThanOrEqual(5)
        expect(text.includes(CANARY)).toBe(captureContent)
        expect(text.includes(JSON.stringify(answer).slice(1, -1))).toBe(captureContent)
      }
    }).pipe(Effect.scoped))

  it.live("off (the default): no span, no observer in the context, no traceparent upstream", () =>
    Effect.gen(function*() {
      const { gateway, primary } = yield* setup
      const { spans, telemetry } = traced({})
      expect(telemetry.request({ requestId: "r-7" })).toBeUndefined()
      yield* asHost(telemetry, { requestId: "r-7", request: request() }, gateway.model.generate(request()))
      expect(spans()).toEqual([])
      expect(primary.requests[0]!.headers["traceparent"]).toBeUndefined()
    }).pipe(Effect.scoped))
})

describe("TelemetryOptions", () => {
  it("off unless enabled; the OTEL_* variables fill in what the options leave out", () => {
    expect(TelemetryOptions.resolve(undefined, {})).toEqual({ enabled: false, captureContent: false, serviceName: "breakwater", samplingRatio: 1 })
    expect(TelemetryOptions.resolve({ enabled: true }, { OTEL_SERVICE_NAME: "edge", OTEL_TRACES_SAMPLER: "parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG: "0.25" }))
      .toEqual({ enabled: true, captureContent: false, serviceName: "edge", samplingRatio: 0.25 })
    expect(TelemetryOptions.resolve({ enabled: true, serviceName: "gw", samplingRatio: 0.5 }, { OTEL_SERVICE_NAME: "edge", OTEL_TRACES_SAMPLER_ARG: "0.25" }))
      .toMatchObject({ serviceName: "gw", samplingRatio: 0.5 })
    expect(TelemetryOptions.resolve({ enabled: true }, { OTEL_SDK_DISABLED: "true" }).enabled).toBe(false)
    expect(() => TelemetryOptions.resolve({ enabled: true, samplingRatio: 2 }, {})).toThrow()
  })

  it("a sampling ratio of 0 records no new trace, but follows a sampled caller", () => {
    const exporter = new InMemorySpanExporter()
    const telemetry = Telemetry.make({ enabled: true, samplingRatio: 0 }, { spanProcessors: [new SimpleSpanProcessor(exporter)], env: {} })
    telemetry.request({ requestId: "unsampled" })?.end()
    telemetry.request({ requestId: "sampled", headers: { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" } })?.end()
    expect(exporter.getFinishedSpans().map((s) => s.attributes["breakwater.request_id"])).toEqual(["sampled"])
  })
})
