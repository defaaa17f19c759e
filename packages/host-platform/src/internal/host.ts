/** What every route of one router shares, built once per router, and running work on its runtime. */
import type { RequestPipeline } from "@breakwater/gateway"
import type { StreamJournal } from "@breakwater/stream-resume"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"

export interface Host {
  readonly pipeline: RequestPipeline.RequestPipeline
  /** Where streams are journaled for reconnects; undefined when journaling is off. */
  readonly journal: StreamJournal.StreamJournal | undefined
  /** The `retry:` hint of a journaled stream, in ms. */
  readonly retryMs: number
  /** Journaled generations running here, by stream id, and how to stop each (for the cancel endpoint). */
  readonly running: Map<string, () => void>
}

/** Runs an effect on the pipeline's runtime (its scrubbing log), interrupted with the calling fiber. */
export const onHost = <A, E>(pipeline: RequestPipeline.RequestPipeline, effect: Effect.Effect<A, E>): Effect.Effect<Exit.Exit<A, E>> =>
  awaitStarted(() => pipeline.host.runtime.runFork(effect))

/** Waits for a fiber started on the host runtime (`RequestPipeline.startGenerate`, …); it is interrupted with the calling fiber. */
export const awaitStarted = <A, E>(start: () => Fiber.RuntimeFiber<A, E>): Effect.Effect<Exit.Exit<A, E>> =>
  Effect.async<Exit.Exit<A, E>>((resume) => {
    const fiber = start()
    fiber.addObserver((exit) => resume(Effect.succeed(exit)))
    return Fiber.interruptFork(fiber)
  })
