/**
 * The bridges between the two forms of a streaming call: `run` (push, what the layers and hosts
 * use) and `stream` (an `effect/Stream`, for Effect users and for models written with it). Each
 * bridge costs one fiber per call; the default stack crosses none.
 */
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { ChatCompletionChunk, ChatRequest } from "../ChatCompletion.js"
import type { CallOptions, ChunkSink, Run, StreamControl } from "../LanguageModel.js"
import * as LeanStream from "../LeanStream.js"
import type { ModelError } from "../ModelError.js"

type Out = ChatCompletionChunk
type StreamFn = (request: ChatRequest, options?: CallOptions) => Stream.Stream<Out, ModelError>

/** `run` over a model written with `stream`: the stream runs in a fiber that `abort` interrupts. */
export const runFromStream = (stream: StreamFn): Run => (request, options, sink) =>
  Effect.suspend(() => {
    let aborted: ModelError | undefined
    let ended = false
    let fiber: Fiber.RuntimeFiber<void, ModelError> | undefined
    // Backpressure: `paused` while the sink said no more; `wake` resumes a waiting producer.
    let paused = false
    let wake: ((effect: Effect.Effect<void>) => void) | undefined
    const control: StreamControl = {
      abort: (error) => {
        if (ended || aborted !== undefined) return
        aborted = error
        fiber?.unsafeInterruptAsFork(FiberId.none)
      },
      resume: () => {
        paused = false
        const w = wake
        if (w !== undefined) {
          wake = undefined
          w(Effect.void)
        }
      }
    }
    sink.start(control)
    if (aborted !== undefined) return Effect.fail(aborted)
    const waitForDemand = Effect.async<void>((resume) => {
      if (!paused) return resume(Effect.void)
      wake = resume
      return Effect.sync(() => {
        wake = undefined
      })
    })
    const consume = Stream.runForEachChunk(stream(request, options), (chunk) => {
      if (chunk.length === 0) return Effect.void
      paused = !sink.push(Chunk.toReadonlyArray(chunk))
      return paused ? waitForDemand : Effect.void
    })
    return Effect.flatMap(Effect.fork(Effect.interruptible(consume)), (f) => {
      fiber = f
      if (aborted !== undefined) f.unsafeInterruptAsFork(FiberId.none)
      return Effect.flatMap(Fiber.await(f), (exit): Effect.Effect<void, ModelError> => {
        ended = true
        if (aborted !== undefined) return Effect.fail(aborted)
        return exit
      })
    })
  })

/** The number of batches a `streamFromRun` buffers before it pauses the producer. */
const HIGH_WATER = 8

/** `stream` over a push call: one fiber runs it, batches wait in a bounded buffer for the pull. */
export const streamFromRun = (run: Run) => (request: ChatRequest, options?: CallOptions): Stream.Stream<Out, ModelError> => {
  interface State {
    readonly buffer: Array<ReadonlyArray<Out>>
    end: Exit.Exit<void, ModelError> | undefined
    wake: ((effect: Effect.Effect<Chunk.Chunk<Out>, Option.Option<ModelError>>) => void) | undefined
    control: StreamControl | undefined
    paused: boolean
    fiber: Fiber.RuntimeFiber<void, never> | undefined
  }
  const poke = (state: State) => {
    const wake = state.wake
    if (wake !== undefined) {
      state.wake = undefined
      wake(Effect.suspend(() => next(state)))
    }
  }
  const next = (state: State): Effect.Effect<Chunk.Chunk<Out>, Option.Option<ModelError>> => {
    if (state.buffer.length > 0) {
      const batches = state.buffer.splice(0, state.buffer.length)
      if (state.paused) {
        state.paused = false
        state.control?.resume()
      }
      return Effect.succeed(batches.length === 1 ? Chunk.unsafeFromArray(batches[0]!) : Chunk.unsafeFromArray(batches.flat()))
    }
    const end = state.end
    if (end !== undefined) {
      return Exit.isSuccess(end) ? Effect.fail(Option.none()) : Effect.failCause(Cause.map(end.cause, Option.some))
    }
    return Effect.async<Chunk.Chunk<Out>, Option.Option<ModelError>>((resume) => {
      state.wake = resume
      return Effect.sync(() => {
        state.wake = undefined
      })
    })
  }
  const open = Effect.suspend(() => {
    const state: State = { buffer: [], end: undefined, wake: undefined, control: undefined, paused: false, fiber: undefined }
    const sink: ChunkSink = {
      start: (control) => {
        state.control = control
      },
      push: (chunks) => {
        state.buffer.push(chunks)
        poke(state)
        if (state.buffer.length >= HIGH_WATER) state.paused = true
        return !state.paused
      }
    }
    return Effect.map(
      Effect.forkDaemon(Effect.flatMap(Effect.exit(Effect.interruptible(run(request, options, sink))), (exit) =>
        Effect.sync(() => {
          state.end = exit
          poke(state)
        }))),
      (fiber) => {
        state.fiber = fiber
        return state
      }
    )
  })
  return LeanStream.acquireUseRelease(
    Effect.uninterruptible(open),
    (state) => Stream.repeatEffectChunkOption(Effect.suspend(() => next(state))),
    (state) => Fiber.interrupt(state.fiber!)
  )
}
