import { type ChatCompletion, ModelError } from "@breakwater/core"
import { OpenAiProvider } from "@breakwater/provider-openai"
import { MockUpstream } from "@breakwater/testing"
import { AttemptTimeout, Deadline } from "@breakwater/timeout"
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"

const { Fault } = MockUpstream

// Real HTTP and real sockets; only the policies' timers run on the TestClock. Nothing sleeps:
// each step waits for an I/O event (a request reached the upstream, a chunk reached the consumer).

const request: ChatCompletion.ChatRequest = { model: "gpt-wire", messages: [{ role: "user", content: "hi" }] }

/** A MockUpstream answering with `behavior` by default, and the OpenAI adapter pointed at it. */
const upstream = (behavior: MockUpstream.Behavior) =>
  Effect.gen(function*() {
    const server = yield* MockUpstream.scoped()
    server.setDefault(behavior)
    const adapter = yield* OpenAiProvider.make({ name: "wire", baseUrl: server.url })
    // The first request, once it has reached the upstream.
    const received = Effect.promise(() => server.waitFor(1).then(() => server.requests[0]!))
    return { server, adapter, received }
  })

describe("timeouts over real HTTP: an aborted attempt closes its upstream connection", () => {
  it.scoped("a stalled stream hit by the idle timeout is aborted upstream", () =>
    Effect.gen(function*() {
      // The role chunk and two words, then silence with the connection open.
      const { server, adapter, received } = yield* upstream({ fault: Fault.Stall({ afterChunks: 2 }) })
      const model = yield* AttemptTimeout.withPolicy(adapter, { idle: "5 seconds" })
      const got: Array<ChatCompletion.ChatCompletionChunk> = []
      const three = yield* Deferred.make<void>()
      const fiber = yield* Effect.fork(Effect.either(Stream.runForEach(model.stream(request), (c) =>
        Effect.flatMap(Effect.sync(() => got.push(c)), (n) => (n === 3 ? Deferred.succeed(three, undefined) : Effect.void)))))
      yield* Deferred.await(three)
      const record = yield* received
      expect(record.clientAborted).toBe(false)

      yield* TestClock.adjust("5 seconds")
      const result = yield* Fiber.join(fiber)
      expect(result._tag).toBe("Left")
      const error = (result as { left: ModelError.ModelError }).left as ModelError.StreamInterrupted
      expect(error).toBeInstanceOf(ModelError.StreamInterrupted)
      expect(error.reason).toBe("idle-timeout")
      expect(error.receivedChunks).toBe(3)
      expect(yield* Effect.promise(() => record.closed)).toBe(true)
      expect(server.requests[0]!.clientAborted).toBe(true)
    }))

  it.scoped("a stream waiting for headers is aborted by the headers timeout", () =>
    Effect.gen(function*() {
      const { adapter, received } = yield* upstream({ fault: Fault.StallBeforeHeaders() })
      const model = yield* AttemptTimeout.withPolicy(adapter, { headers: "2 seconds" })
      const fiber = yield* Effect.fork(Effect.either(Stream.runDrain(model.stream(request))))
      const record = yield* received
      yield* TestClock.adjust("2 seconds")
      const result = yield* Fiber.join(fiber)
      const error = (result as { left: ModelError.ModelError }).left as ModelError.Timeout
      expect(error._tag).toBe("Timeout")
      expect(error.phase).toBe("headers")
      expect(yield* Effect.promise(() => record.closed)).toBe(true)
    }))

  it.scoped("a generate past its deadline is aborted upstream", () =>
    Effect.gen(function*() {
      const { adapter, received } = yield* upstream({ fault: Fault.StallBeforeHeaders() })
      const model = yield* Deadline.withPolicy(adapter, { total: "3 seconds" })
      const fiber = yield* Effect.fork(Effect.either(model.generate(request)))
      const record = yield* received
      yield* TestClock.adjust("3 seconds")
      const result = yield* Fiber.join(fiber)
      const error = (result as { left: ModelError.ModelError }).left as ModelError.Timeout
      expect(error.phase).toBe("total")
      expect(yield* Effect.promise(() => record.closed)).toBe(true)
    }))
})
