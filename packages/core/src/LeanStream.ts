/**
 * Stream combinators for the hot path, with the semantics of their `effect/Stream` namesakes but
 * without a per-element cost. In Effect 3, `Stream.unwrap`, `Stream.unwrapScoped` and
 * `Stream.provideService` are built on `Stream.flatMap`, so every chunk of the stream crosses a
 * `concatMap` sub-executor for each of them. Here `unwrap` sequences the effect before the
 * stream at the channel level, `acquireUseRelease` does the same around a resource, and
 * `provideService` reads the context once at the start. (The gateway's own stream path is the
 * push form, `LanguageModel.run`; these serve the `effect/Stream` forms.)
 *
 * @since 0.1.0
 */
import * as Channel from "effect/Channel"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
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
