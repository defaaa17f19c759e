import { ChatCompletion, ModelError, RequestContext } from "@breakwater/core"
import { ClientApi, ClientStream, type Gateway, RequestPipeline } from "@breakwater/gateway"
import { FakeLanguageModel } from "@breakwater/testing"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Either, Exit, Fiber, Redacted, TestClock } from "effect"

const settings: Gateway.ServerSettings = {
  host: "127.0.0.1", port: 0, maxBodyBytes: 256, maxHeaderBytes: 8192, maxConcurrentRequests: 10,
  requestTimeoutMs: 1000, shutdownGraceMs: 1000, streamCommitTimeoutMs: 1000, detachGraceMs: 0
}
const gatewayOf = (fake: FakeLanguageModel.FakeLanguageModel, over: Partial<Gateway.Gateway> = {}): Gateway.Gateway => ({
  model: fake.model,
  models: ["gpt-test", "gpt-other"],
  keys: [],
  server: settings,
  health: Effect.succeed({ ready: true, upstreams: [], routes: [] }),
  secrets: [],
  ...over
})
const narrow: Gateway.ClientKey = { name: "narrow", key: Redacted.make("gw-narrow-key"), models: ["gpt-test"] }
const bytes = (body: unknown) => new TextEncoder().encode(typeof body === "string" ? body : JSON.stringify(body))
const ask = { model: "gpt-test", messages: [{ role: "user", content: "hi" }] }
const quiet = { log: () => {} }

describe("RequestPipeline", () => {
  it("authenticates: no key needed without client keys; with them the key named, else the 401", () => {
    expect(RequestPipeline.make(gatewayOf(FakeLanguageModel.make()), quiet).authenticate(undefined)).toBeUndefined()
    const keyed = RequestPipeline.make(gatewayOf(FakeLanguageModel.make(), { keys: [narrow] }), quiet)
    expect(keyed.authenticate("Bearer gw-narrow-key")).toBe(narrow)
    expect(keyed.authenticate("Bearer wrong")).toBe(ClientApi.unauthorized)
    expect(keyed.authenticate(undefined)).toBe(ClientApi.unauthorized)
  })

  it("admits a chat request only with a key (401 first) and a JSON body (415)", () => {
    const keyed = RequestPipeline.make(gatewayOf(FakeLanguageModel.make(), { keys: [narrow] }), quiet)
    expect(keyed.admitChat(undefined, "text/plain")).toBe(ClientApi.unauthorized)
    expect(keyed.admitChat("Bearer gw-narrow-key", "text/plain")).toBe(ClientApi.unsupportedMediaType)
    expect(keyed.admitChat("Bearer gw-narrow-key", "application/json; charset=utf-8")).toBe(narrow)
  })

  it("decodes a chat body: size, UTF-8, JSON, schema, model, the key's permission", () => {
    const p = RequestPipeline.make(gatewayOf(FakeLanguageModel.make()), quiet)
    const statusOf = (body: Uint8Array, key?: Gateway.ClientKey) => Either.match(p.decodeChat(body, key), { onLeft: (e) => e.status, onRight: () => 200 })
    expect(statusOf(bytes({ ...ask, messages: [{ role: "user", content: "x".repeat(300) }] }))).toBe(413)
    expect(statusOf(new Uint8Array([0x7b, 0xff, 0x7d]))).toBe(400)
    expect(statusOf(bytes("{"))).toBe(400)
    expect(statusOf(bytes({ model: "gpt-test", messages: "hi" }))).toBe(400)
    expect(statusOf(bytes({ ...ask, model: "nope" }))).toBe(404)
    expect(statusOf(bytes({ ...ask, model: "gpt-other" }), narrow)).toBe(403)
    expect(Either.getOrThrow(p.decodeChat(bytes(ask), narrow)).model).toBe("gpt-test")
  })

  it.effect("with host deadlines, bounds any model by the deadline in the request context (Timeout total)", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([{ delay: "2 seconds" }, { delay: "2 seconds" }])
      const request = ChatCompletion.decodeChatRequest(ask).pipe(Either.getOrThrow)
      const bounded = RequestPipeline.make(gatewayOf(fake), { ...quiet, hostDeadlines: true })
      const fiber = yield* Effect.fork(Effect.exit(bounded.generate(request, RequestContext.make({ requestId: "r1", deadline: 1_000 }))))
      yield* TestClock.adjust("1 second")
      const exit = yield* Fiber.join(fiber)
      expect(Exit.isFailure(exit) && Cause.failureOption(exit.cause).pipe((e) => e._tag === "Some" && e.value._tag === "Timeout" && e.value.phase === "total")).toBe(true)
      // Without host deadlines the pipeline adds no limit of its own: the call runs its course.
      const plain = RequestPipeline.make(gatewayOf(fake), quiet)
      const other = yield* Effect.fork(plain.generate(request, RequestContext.make({ requestId: "r2", deadline: 1_000 })))
      yield* TestClock.adjust("2 seconds")
      expect((yield* Fiber.join(other)).object).toBe("chat.completion")
    }))

  it.effect("streams a call into a writer, ending with [DONE]; a failure before any content is answered plainly", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([{}, { fail: new ModelError.Overloaded({ message: "busy" }) }])
      const p = RequestPipeline.make(gatewayOf(fake), quiet)
      const request = ChatCompletion.decodeChatRequest({ ...ask, stream: true }).pipe(Either.getOrThrow)
      const harness = () => {
        const wire: Array<string> = []
        const writer = ClientStream.make({ includeUsage: false, sink: { commit: (held) => void wire.push(held), write: (f) => wire.push(f) > 0 } })
        return { writer, text: () => wire.join("") }
      }
      const ok = harness()
      yield* p.stream(request, RequestContext.make({ requestId: "r3" }), ok.writer, (resume) => resume())
      expect(ClientStream.end(ok.writer, undefined, "r3")?.frame).toBe(ClientStream.done)
      expect(ok.text()).toContain(`"content":`)
      const failed = harness()
      const ctx = RequestContext.make({ requestId: "r4" })
      const exit = yield* Effect.exit(p.stream(request, ctx, failed.writer, (resume) => resume()))
      const error = Exit.isFailure(exit) ? p.failureOf(exit.cause, ctx.trace) : undefined
      expect(error?.status).toBe(503)
      expect(ClientStream.end(failed.writer, error, "r4")).toBeUndefined()
      expect(failed.text()).toBe("")
    }))

  it("logs a request at the level its status calls for, with its id", () => {
    const lines: Array<Record<string, unknown>> = []
    const p = RequestPipeline.make(gatewayOf(FakeLanguageModel.make()), { log: (l) => void lines.push(l) })
    p.logRequest("POST", "/v1/chat/completions", 404, "r5", 1.26, { error: "model_not_found" })
    p.logRequest("GET", "/healthz", 200, "r6", 0.5)
    // The request's own fields, then how it was served: the second set wins a name both have.
    p.logRequest("POST", "/v1/chat/completions", 502, "r7", 2, { model: "m", error: "first" }, { upstream: "u", error: "upstream_error" })
    expect(lines).toMatchObject([
      { level: "warning", msg: "request", request_id: "r5", status: 404, duration_ms: 1.3, error: "model_not_found" },
      { level: "info", request_id: "r6", status: 200 },
      { level: "error", request_id: "r7", status: 502, model: "m", upstream: "u", error: "upstream_error" }
    ])
  })
})
