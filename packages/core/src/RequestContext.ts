/**
 * The per-request context: request id, deadline, attempt number and upstream, visible to every
 * layer of the stack, plus a mutable `trace` the host reads back (which upstream served, how
 * many attempts, retries and resumes it took) to put in response headers and logs.
 *
 * It is a `Context.Reference`, so a `LanguageModel` call never *requires* it: a policy used alone
 * (use 2 in DESIGN.md) runs without one. Effect caches a reference's default value for the whole
 * process, so the default is frozen and holds no trace to write to: `current` gives a call made
 * without a host a fresh context of its own (one object per call, and only then), and the
 * policies pass that one down to the layers below them.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Stream from "effect/Stream"
import type * as LanguageModel from "./LanguageModel.js"
import * as LeanStream from "./LeanStream.js"
import type * as RequestObserver from "./RequestObserver.js"
import { randomUUID } from "node:crypto"

/**
 * What happened to one logical request, filled in by the layers as they act.
 *
 * @since 0.1.0
 * @category models
 */
export interface RequestTrace {
  /** Upstream attempts made (every call that reached an upstream's stack). */
  attempts: number
  /** Retries the retry policy made. */
  retries: number
  /** Continuations stream-resume stitched in. */
  resumes: number
  /** The upstream that served the (last) successful attempt. */
  upstream: string | undefined
  /** The upstream model that served it. */
  model: string | undefined
  /** Whether a hedged attempt was started. */
  hedged: boolean
  /** The delay the last upstream error asked for, in ms (for the client's `retry-after`). */
  retryAfterMillis: number | undefined
  /**
   * Upstreams that failed during this request (routers try them last when the request is
   * retried or resumed, so a continuation does not go back to the upstream that just broke).
   */
  readonly failed: Array<string>
}

/**
 * What a call's abort signal offers: a Node `AbortSignal` is one, and so is the lighter signal the
 * time limits make. A model that needs an `AbortSignal` (for `fetch`, say) follows it with its
 * own controller.
 *
 * @since 0.3.0
 * @category models
 */
export interface Signal {
  readonly aborted: boolean
  readonly reason: unknown
  addEventListener(type: "abort", listener: () => void, options?: { readonly once?: boolean }): void
  removeEventListener(type: "abort", listener: () => void): void
}

/**
 * The per-request context.
 *
 * @since 0.1.0
 * @category models
 */
export interface RequestContextShape {
  readonly requestId: string
  /** Absolute deadline in ms on Effect's `Clock` (so `TestClock` drives it), or none. */
  readonly deadline: number | undefined
  /** The current attempt, 1-based; set by the retry policy for the layers below it. */
  readonly attempt: number
  /** The upstream this attempt goes to; set by the router for the layers below it. */
  readonly upstream: string | undefined
  /**
   * Aborts the current call's upstream I/O when a time limit above it fires (its `reason` is the
   * limit's error); set by the timeout policies for models that declare `honoursSignal`.
   */
  readonly signal?: Signal | undefined
  /**
   * Told of the request's upstream attempts and policy decisions (tracing); none by default, and
   * then a layer pays one `undefined` check at an event.
   *
   * @since 0.4.0
   */
  readonly observer?: RequestObserver.RequestObserver | undefined
  readonly trace: RequestTrace
}

/**
 * A fresh, empty trace.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeTrace = (): RequestTrace => ({
  attempts: 0,
  retries: 0,
  resumes: 0,
  upstream: undefined,
  model: undefined,
  hedged: false,
  retryAfterMillis: undefined,
  failed: []
})

// Shared by every call made without a context, so nothing in it may change: writing to its
// trace throws instead of leaking one request's trace into another's.
const none: RequestContextShape = Object.freeze({
  requestId: "none",
  deadline: undefined,
  attempt: 1,
  upstream: undefined,
  trace: Object.freeze({ ...makeTrace(), failed: Object.freeze([]) as unknown as Array<string> })
})

/**
 * The per-request context service. Without one provided it yields a frozen default (no
 * deadline, attempt 1, a read-only trace): read the context through `current`, which replaces
 * that default with a fresh context for the call.
 *
 * @since 0.1.0
 * @category tags
 */
export class RequestContext extends Context.Reference<RequestContext>()("@breakwater/core/RequestContext", {
  defaultValue: (): RequestContextShape => none
}) {}

/**
 * A new context for one logical request.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: {
    readonly requestId?: string | undefined
    readonly deadline?: number | undefined
    readonly observer?: RequestObserver.RequestObserver | undefined
  } = {}
): RequestContextShape => ({
  requestId: options.requestId ?? randomUUID(),
  deadline: options.deadline,
  attempt: 1,
  upstream: undefined,
  // Present from the start, as in every copy a layer makes (`{ ...ctx, signal }`): every context
  // then has one shape, and V8 copies it on its fast path (a second shape sent each copy of a
  // request's context to the slow one, ~4,000 instructions a request).
  signal: undefined,
  observer: options.observer,
  trace: makeTrace()
})

/**
 * The current context, or a fresh one (a new request id, an empty trace) when none was
 * provided: each call made without a host gets a trace of its own. A layer that reads it passes
 * it on to the model below (`Effect.provideService`, `locally`) so the whole call shares it.
 *
 * @since 0.1.0
 * @category accessors
 */
export const current: Effect.Effect<RequestContextShape> = Effect.map(RequestContext, (ctx) => (ctx === none ? make() : ctx))

/**
 * The context of one call: the one the layer above handed down in `options.context`, else
 * `current`. Every layer and adapter reads its context this way, so a handed-down context costs
 * no effect at all.
 *
 * @since 0.4.0
 * @category accessors
 */
export const of = <A, E, R>(
  options: LanguageModel.CallOptions | undefined,
  f: (ctx: RequestContextShape) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> => {
  const handed = options?.context
  return handed !== undefined ? f(handed) : Effect.flatMap(current, f)
}

/**
 * Calls the model below with `ctx` as its context: in `CallOptions.context` when the model
 * `takesContext`, otherwise also provided in the fiber (`Effect.provideService`), for models that
 * read `RequestContext` themselves. A layer passes its context down with this instead of
 * `Effect.provideService`, whose context switch (a copy of the fiber's references, set and
 * restored) was most of a policy layer's cost per call.
 *
 * @since 0.4.0
 * @category combinators
 */
export const handDown = <A, E, R>(
  takesContext: boolean | undefined,
  ctx: RequestContextShape,
  options: LanguageModel.CallOptions | undefined,
  call: (options: LanguageModel.CallOptions) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> => {
  const handed = passOn(options, ctx)
  return takesContext === true ? call(handed) : Effect.provideService(call(handed), RequestContext, ctx)
}

// `options` carrying `ctx`: the same object when it already does.
const passOn = (options: LanguageModel.CallOptions | undefined, ctx: RequestContextShape): LanguageModel.CallOptions =>
  options?.context === ctx ? options : options === undefined ? { context: ctx } : { ...options, context: ctx }

/**
 * Runs an effect with some fields of the context replaced (the trace stays shared).
 *
 * @since 0.1.0
 * @category combinators
 */
export const locally = <A, E, R>(
  self: Effect.Effect<A, E, R>,
  patch: Partial<Omit<RequestContextShape, "trace" | "requestId">>
): Effect.Effect<A, E, R> =>
  Effect.flatMap(current, (ctx) => Effect.provideService(self, RequestContext, { ...ctx, ...patch }))

/**
 * Runs a stream with some fields of the context replaced (the trace stays shared).
 *
 * @since 0.1.0
 * @category combinators
 */
export const locallyStream = <A, E, R>(
  self: Stream.Stream<A, E, R>,
  patch: Partial<Omit<RequestContextShape, "trace" | "requestId">>
): Stream.Stream<A, E, R> =>
  LeanStream.unwrap(Effect.map(current, (ctx) => LeanStream.provideService(self, RequestContext, { ...ctx, ...patch })))

/**
 * The time left before the deadline (zero once passed), or `None` without a deadline.
 *
 * @since 0.1.0
 * @category accessors
 */
export const remaining: Effect.Effect<Option.Option<Duration.Duration>> = Effect.flatMap(RequestContext, (ctx) =>
  ctx.deadline === undefined
    ? Effect.succeed(Option.none())
    : Effect.map(Clock.currentTimeMillis, (now) => Option.some(Duration.millis(Math.max(0, ctx.deadline! - now)))))
