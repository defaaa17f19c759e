/**
 * The push form of a streaming call (`LanguageModel.run`) and its bridges to `effect/Stream`:
 * order, backpressure (a `false` from `push` pauses the producer until `resume`), abort, and the
 * plain timers that follow the program's clock.
 */
import { type ChatCompletion, LanguageModel, ModelError, Timer } from "@breakwater/core"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"

const request: ChatCompletion.ChatRequest = { model: "m", messages: [{ role: "user", content: "x" }] }
const chunk = (i: number): ChatCompletion.ChatCompletionChunk => ({
  id: "c",
  object: "chat.completion.chunk",
  created: 0,
  model: "m",
  choices: [{ index: 0, delta: { content: `${i} ` }, finish_reason: null }]
})
/** Lets the forked fibers run until `done` holds (bounded: fails the test rather than hang). */
const until = (done: () => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 1_000 && !done(); i++) yield* Effect.yieldNow()
    expect(done()).toBe(true)
  })

const texts = (chunks: ReadonlyArray<ChatCompletion.ChatCompletionChunk>) => chunks.map((c) => c.choices[0]!.delta.content).join("")

describe("LanguageModel.runFromStream (a model written with stream, pushed)", () => {
  it.effect("pushes every chunk in order and pauses the stream while the sink says no more", () =>
    Effect.gen(function*() {
      let produced = 0
      const run = LanguageModel.runFromStream(() =>
        Stream.fromIterable(Array.from({ length: 10 }, (_, i) => chunk(i))).pipe(
          Stream.rechunk(1),
          Stream.tap(() => Effect.sync(() => void produced++))
        )
      )
      const got: Array<ChatCompletion.ChatCompletionChunk> = []
      let control: LanguageModel.StreamControl | undefined
      const fiber = yield* Effect.fork(run(request, undefined, {
        start: (c) => {
          control = c
        },
        push: (chunks) => {
          got.push(...chunks)
          return got.length % 3 !== 0
        }
      }))
      yield* until(() => got.length === 3)
      // Paused after the third chunk: nothing more is produced until the sink resumes it.
      for (let i = 0; i < 50; i++) yield* Effect.yieldNow()
      expect(got).toHaveLength(3)
      expect(produced).toBe(3)
      control!.resume()
      yield* until(() => got.length === 6)
      control!.resume()
      yield* until(() => got.length === 9)
      control!.resume()
      yield* Fiber.join(fiber)
      expect(texts(got)).toBe("0 1 2 3 4 5 6 7 8 9 ")
    }))

  it.effect("abort stops the stream (its finalizer runs) and the call fails with the abort's error", () =>
    Effect.gen(function*() {
      let released = false
      const run = LanguageModel.runFromStream(() =>
        Stream.concat(Stream.make(chunk(0)), Stream.never).pipe(Stream.ensuring(Effect.sync(() => void (released = true))))
      )
      const stop = new ModelError.Timeout({ message: "no chunk", phase: "idle" })
      let control: LanguageModel.StreamControl | undefined
      let pushed = 0
      const fiber = yield* Effect.fork(run(request, undefined, { start: (c) => void (control = c), push: () => (pushed++, true) }))
      yield* until(() => pushed === 1)
      control!.abort(stop)
      const exit = yield* Fiber.await(fiber)
      expect(exit).toEqual(Exit.fail(stop))
      expect(released).toBe(true)
    }))

  it.effect("an abort in start fails the call before the stream starts", () =>
    Effect.gen(function*() {
      let started = false
      const run = LanguageModel.runFromStream(() => Stream.suspend(() => ((started = true), Stream.make(chunk(0)))))
      const stop = new ModelError.Timeout({ message: "deadline", phase: "total" })
      const exit = yield* Effect.exit(run(request, undefined, { start: (c) => c.abort(stop), push: () => true }))
      expect(exit).toEqual(Exit.fail(stop))
      expect(started).toBe(false)
    }))
})

describe("LanguageModel.streamFromRun (a push call, as an effect/Stream)", () => {
  it.effect("delivers every batch in order; a consumer that does not pull pauses the producer after 8 batches", () =>
    Effect.gen(function*() {
      let pushed = 0
      let refused = 0
      const run: LanguageModel.Run = (_request, _options, sink) =>
        Effect.async<void>((resume) => {
          let i = 0
          const go = () => {
            while (i < 40) {
              pushed++
              if (!sink.push([chunk(i++)])) {
                refused++
                return
              }
            }
            resume(Effect.void)
          }
          sink.start({ abort: () => {}, resume: go })
          go()
        })
      const model = LanguageModel.make({ generate: () => Effect.die("unused"), run })
      yield* Effect.scoped(Effect.gen(function*() {
        const pull = yield* Stream.toPull(model.stream(request))
        const first = yield* pull
        // Held back: what the first pull did not take waits, bounded, with the producer paused.
        expect(pushed).toBeLessThanOrEqual(16)
        expect(refused).toBeGreaterThanOrEqual(1)
        let all = Chunk.toReadonlyArray(first)
        while (true) {
          const next = yield* Effect.either(pull)
          if (next._tag === "Left") break
          all = [...all, ...Chunk.toReadonlyArray(next.right)]
        }
        expect(texts(all)).toBe(Array.from({ length: 40 }, (_, i) => `${i} `).join(""))
      }))
    }))

  it.effect("a failed run fails the stream after the chunks it pushed", () =>
    Effect.gen(function*() {
      const broke = new ModelError.StreamInterrupted({ message: "cut", reason: "reset", receivedChunks: 2 })
      const run: LanguageModel.Run = (_request, _options, sink) =>
        Effect.suspend(() => {
          sink.start({ abort: () => {}, resume: () => {} })
          sink.push([chunk(0), chunk(1)])
          return Effect.fail(broke)
        })
      const model = LanguageModel.make({ generate: () => Effect.die("unused"), run })
      const got: Array<ChatCompletion.ChatCompletionChunk> = []
      const exit = yield* Effect.exit(Stream.runForEach(model.stream(request), (c) => Effect.sync(() => void got.push(c))))
      expect(texts(got)).toBe("0 1 ")
      expect(exit).toEqual(Exit.fail(broke))
    }))
})

describe("Timer.current", () => {
  it.effect("on TestClock, a timer fires when the clock passes it, and a cancelled one never does", () =>
    Effect.gen(function*() {
      const timer = yield* Timer.current
      const fired: Array<string> = []
      timer.schedule(1_000, () => void fired.push("a"))
      const cancel = timer.schedule(2_000, () => void fired.push("b"))
      yield* TestClock.adjust("999 millis")
      expect(fired).toEqual([])
      yield* TestClock.adjust("1 millis")
      expect(fired).toEqual(["a"])
      cancel()
      yield* TestClock.adjust("10 seconds")
      expect(fired).toEqual(["a"])
    }))

  it("on Effect's default clock it is the live setTimeout timer", () => {
    expect(Effect.runSync(Timer.current)).toBe(Timer.live)
  })
})
