/**
 * Stream combinators for the hot path, with the semantics of their `effect/Stream` namesakes but
 * without a per-element cost. In Effect 3, `Stream.unwrap`, `Stream.unwrapScoped` and
 * `Stream.provideService` are built on `Stream.flatMap`, so every chunk of the stream crosses a
 * `concatMap` sub-executor for each of them, and `Stream.interruptWhen` is a `mergeWith` that
 * forks a fiber (and races two more) for every pull. A policy stack wraps each stream in several
 * of these, once per layer; the benchmark's profiles showed them to be most of the gateway's CPU
 * per streamed chunk. Here `unwrap` sequences the effect before the stream at the channel level,
 * `provideService` reads the context once at the start, and `interruptWhen` runs the stream in
 * one fiber for its whole life.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Channel from "effect/Channel"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"

/**
 * `Stream.unwrap` without a `flatMap`: the effect runs when the stream starts, then its stream
 * continues in the same channel (no sub-executor between it and its consumer).
 *
 * @since 0.1.0
 * @category constructors
 */
export const unwrap = <A, E2, R2, E, R>(effect: Effect.Effect<Stream.Stream<A, E2, R2>, E, R>): Stream.Stream<A, E | E2, R | R2> =>
  Stream.fromChannel(Channel.unwrap(Effect.map(effect, Stream.toChannel)))

/**
 * `Stream.unwrapScoped` without a `flatMap`: the resource is acquired when the stream starts
 * and released (with the stream's exit) when it ends.
 *
 * @since 0.1.0
 * @category constructors
 */
export const acquireUseRelease = <R0, A, E2, R2, E, R, R3>(
  acquire: Effect.Effect<R0, E, R>,
  use: (resource: R0) => Stream.Stream<A, E2, R2>,
  release: (resource: R0, exit: Exit.Exit<unknown, unknown>) => Effect.Effect<unknown, never, R3>
): Stream.Stream<A, E | E2, R | R2 | R3> =>
  Stream.fromChannel(
    Channel.acquireUseRelease(
      acquire as Effect.Effect<R0, E | E2, R | R2 | R3>,
      (r) => Stream.toChannel(use(r)) as Channel.Channel<Chunk.Chunk<A>, unknown, E | E2, unknown, unknown, unknown, R | R2 | R3>,
      release
    )
  )

/**
 * `Stream.provideService` with the context read once, when the stream starts.
 *
 * @since 0.1.0
 * @category context
 */
export const provideService = <A, E, R, I, S>(
  self: Stream.Stream<A, E, R>,
  tag: Context.Tag<I, S>,
  service: NoInfer<S>
): Stream.Stream<A, E, Exclude<R, I>> =>
  unwrap(Effect.map(
    Effect.context<Exclude<R, I>>(),
    (env) => Stream.provideContext(self, Context.add(env, tag, service) as Context.Context<R>)
  ))

/**
 * `Stream.interruptWhen` with one fiber per stream instead of one per pull: the stream runs in
 * a fiber forked when it starts, whose chunks are handed to the consumer; `signal` runs beside
 * it. When `signal` fails first, the stream's fiber is interrupted (its finalizers run, so
 * sockets close) and the stream fails with that error; when it succeeds first, the stream ends.
 * When the stream ends first, or its consumer stops, both fibers are interrupted. The fiber runs
 * ahead of the consumer by at most `maxBuffered` batches (8): then it waits for the consumer, so
 * a slow consumer holds the source back (backpressure down to the upstream socket) instead of
 * the stream being buffered. `onBlocked` hears when the fiber starts and stops waiting (a time
 * limit must not take a slow consumer for a silent source).
 *
 * @since 0.1.0
 * @category combinators
 */
export const interruptWhen = <A, E, R, E2, R2>(
  self: Stream.Stream<A, E, R>,
  signal: Effect.Effect<unknown, E2, R2>,
  options?: { readonly maxBuffered?: number | undefined; readonly onBlocked?: ((blocked: boolean) => void) | undefined }
): Stream.Stream<A, E | E2, R | R2> => {
  const maxBuffered = options?.maxBuffered ?? 8
  const onBlocked = options?.onBlocked
  interface State {
    buffer: Array<Chunk.Chunk<A>>
    end: Exit.Exit<void, E | E2> | undefined
    wake: ((effect: Effect.Effect<Chunk.Chunk<A>, Option.Option<E | E2>>) => void) | undefined
    producer: Fiber.RuntimeFiber<void, never> | undefined
    timer: Fiber.RuntimeFiber<void, never> | undefined
    fired: boolean
    /** Resumes the producer, waiting for the consumer to take the buffer. */
    space: (() => void) | undefined
  }
  const next = (state: State): Effect.Effect<Chunk.Chunk<A>, Option.Option<E | E2>> => {
    if (state.buffer.length > 0) {
      const chunks = state.buffer
      state.buffer = []
      const space = state.space
      if (space !== undefined) {
        state.space = undefined
        space()
      }
      return Effect.succeed(chunks.length === 1 ? chunks[0]! : Chunk.flatten(Chunk.unsafeFromArray(chunks)))
    }
    const end = state.end
    if (end !== undefined) {
      return Exit.isSuccess(end) ? Effect.fail(Option.none()) : Effect.failCause(Cause.map(end.cause, Option.some))
    }
    return Effect.async<Chunk.Chunk<A>, Option.Option<E | E2>>((resume) => {
      state.wake = resume
      return Effect.sync(() => {
        state.wake = undefined
      })
    })
  }
  const poke = (state: State) => {
    const wake = state.wake
    if (wake !== undefined) {
      state.wake = undefined
      wake(Effect.suspend(() => next(state)))
    }
  }
  const settle = (state: State, exit: Exit.Exit<void, E | E2>) => {
    if (state.end !== undefined) return
    state.end = exit
    poke(state)
  }
  const start = Effect.suspend(() => {
    const state: State = { buffer: [], end: undefined, wake: undefined, producer: undefined, timer: undefined, fired: false, space: undefined }
    const wait = Effect.async<void>((resume) => {
      onBlocked?.(true)
      state.space = () => {
        onBlocked?.(false)
        resume(Effect.void)
      }
      return Effect.sync(() => {
        state.space = undefined
      })
    })
    const produce = Effect.exit(Stream.runForEachChunk(self, (chunk) => {
      if (chunk.length === 0) return Effect.void
      state.buffer.push(chunk)
      poke(state)
      return state.buffer.length < maxBuffered ? Effect.void : wait
    }))
    const watch = Effect.exit(signal)
    return Effect.map(
      Effect.zip(
        Effect.forkDaemon(Effect.flatMap(Effect.interruptible(produce), (exit) =>
          Effect.sync(() => {
            // Interrupted by the signal: the signal's outcome is the stream's.
            if (!state.fired) settle(state, exit)
          }))),
        Effect.forkDaemon(Effect.flatMap(Effect.interruptible(watch), (exit) =>
          Effect.suspend(() => {
            if (state.end !== undefined) return Effect.void
            state.fired = true
            const ended: Exit.Exit<void, E | E2> = Exit.isSuccess(exit) ? Exit.void : exit
            // Interrupted first, so the stream's finalizers have run when the consumer sees the end;
            // chunks that arrived before the signal are still delivered ahead of it.
            return Effect.zipRight(
              state.producer === undefined ? Effect.void : Fiber.interrupt(state.producer),
              Effect.sync(() => settle(state, ended))
            )
          })))
      ),
      ([producer, timer]) => {
        state.producer = producer
        state.timer = timer
        return state
      }
    )
  })
  return acquireUseRelease(
    Effect.uninterruptible(start),
    (state) => Stream.repeatEffectChunkOption(Effect.suspend(() => next(state))),
    (state) =>
      Effect.zipRight(
        Fiber.interrupt(state.timer!),
        Fiber.interrupt(state.producer!)
      )
  )
}
