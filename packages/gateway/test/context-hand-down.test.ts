import { type ChatCompletion, LanguageModel, ModelError, RequestContext } from "@breakwater/core"
import { Retry } from "@breakwater/retry"
import { Router } from "@breakwater/router"
import { StreamResume } from "@breakwater/stream-resume"
import { FakeLanguageModel } from "@breakwater/testing"
import { AttemptTimeout, Deadline } from "@breakwater/timeout"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as TestClock from "effect/TestClock"

const request: ChatCompletion.ChatRequest = { model: "gpt-test", messages: [{ role: "user", content: "hello" }] }
const unavailable = () => new ModelError.UpstreamUnavailable({ message: "503", status: 503 })

interface Seen {
  readonly handed: RequestContext.RequestContextShape | undefined
  readonly fiber: RequestContext.RequestContextShape
}

/** The gateway's stack (deadline, stream-resume, retry, router, attempt timeout) over a model that records what context each attempt gets. */
const stackOver = (takesContext: boolean, kind: "generate" | "stream") =>
  Effect.gen(function*() {
    const fake = FakeLanguageModel.make([{ fail: unavailable() }, { text: "the answer" }])
    const seen: Array<Seen> = []
    const fakeRun = LanguageModel.runOf(fake.model)
    const record = (options: LanguageModel.CallOptions | undefined) =>
      Effect.map(RequestContext.RequestContext, (fiber) => seen.push({ handed: options?.context, fiber }))
    const bottom: LanguageModel.Service = {
      generate: (r, o) => Effect.zipRight(record(o), fake.model.generate(r, o)),
      stream: fake.model.stream,
      run: (r, o, sink) => Effect.zipRight(record(o), fakeRun(r, o, sink)),
      honoursSignal: true,
      takesContext
    }
    const timed = yield* AttemptTimeout.withPolicy(bottom, { headers: "30 seconds", firstToken: "30 seconds", idle: "30 seconds" })
    const routed = yield* Router.make({ strategy: "fallback", upstreams: [{ name: "primary", model: timed }] })
    const retried = yield* Retry.withPolicy(routed, { maxRetries: 2, baseDelay: "10 millis", jitter: "none", budget: false })
    const model = yield* Deadline.withPolicy(yield* StreamResume.withPolicy(retried, { maxResumes: 1 }), { total: "60 seconds" })
    const top = RequestContext.make({ requestId: "req-1" })
    const call = kind === "generate"
      ? Effect.asVoid(model.generate(request))
      : LanguageModel.runOf(model)(request, undefined, { start: () => undefined, push: () => true })
    const fiber = yield* Effect.fork(Effect.provideService(call, RequestContext.RequestContext, top))
    yield* TestClock.adjust("1 second")
    yield* Fiber.join(fiber)
    return { seen, top }
  })

describe("the request context through the stack", () => {
  for (const kind of ["generate", "stream"] as const) {
    it.scoped(`is handed down in the call options to a model that takes it, the fiber's left as the host set it (${kind})`, () =>
      Effect.gen(function*() {
        const { seen, top } = yield* stackOver(true, kind)
        expect(seen).toHaveLength(2)
        const [first, second] = seen
        // What each layer added arrives with the call: the attempt number, the upstream, the
        // deadline, the attempt's abort signal; the request-wide parts are the host's own.
        expect(first!.handed).toMatchObject({ requestId: "req-1", attempt: 1, upstream: "primary" })
        expect(second!.handed).toMatchObject({ requestId: "req-1", attempt: 2, upstream: "primary" })
        expect(second!.handed!.deadline).toBeGreaterThan(0)
        expect(second!.handed!.trace).toBe(top.trace)
        if (kind === "generate") expect(second!.handed!.signal).toBeDefined()
        // No layer switched the fiber's context.
        expect(first!.fiber).toBe(top)
        expect(second!.fiber).toBe(top)
      }))

    it.scoped(`is still provided in the fiber to a model that does not take it (${kind})`, () =>
      Effect.gen(function*() {
        const { seen, top } = yield* stackOver(false, kind)
        expect(seen).toHaveLength(2)
        const second = seen[1]!
        expect(second.fiber).toMatchObject({ requestId: "req-1", attempt: 2, upstream: "primary" })
        expect(second.fiber.deadline).toBeGreaterThan(0)
        expect(second.fiber.trace).toBe(top.trace)
        expect(second.fiber).not.toBe(top)
      }))
  }
})
