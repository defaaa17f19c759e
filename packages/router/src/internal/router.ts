import { ChatCompletion, LanguageModel, LeanEffect, ModelError, type RequestBudget, RequestContext, type RequestObserver, StreamCommit, TaggedMetric } from "@breakwater/core"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as Option from "effect/Option"
import type * as Random from "effect/Random"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { Bulkhead } from "./bulkhead.js"
import { prng, Stats } from "./stats.js"

type Chat = ChatCompletion.ChatCompletion
type Chunk_ = ChatCompletion.ChatCompletionChunk
type Ctx = RequestContext.RequestContextShape
type Kind = "generate" | "stream"

// ---------------------------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------------------------

export const attemptsTotal = Metric.counter("breakwater_router_attempts_total", {
  description: "Attempts the router made, by upstream and outcome (success, failure, rejected, cancelled, skipped)",
  incremental: true
})

export const fallbacksTotal = Metric.counter("breakwater_router_fallbacks_total", {
  description: "Times the router moved to the next upstream, by the upstream it left (from) and the error tag (reason)",
  incremental: true
})

export const hedgesTotal = Metric.counter("breakwater_router_hedges_total", {
  description: "Hedged attempts, by outcome (started, won, refused by the hedging budget)",
  incremental: true
})

const seconds = MetricBoundaries.exponential({ start: 0.01, factor: 2, count: 14 })

export const upstreamLatency = Metric.histogram(
  "breakwater_upstream_latency_seconds",
  seconds,
  "Duration of successful upstream attempts (a whole response, or a whole stream), by upstream"
)

export const upstreamTtft = Metric.histogram(
  "breakwater_upstream_ttft_seconds",
  seconds,
  "Time from the start of a streaming attempt to its first content chunk, by upstream"
)

type Outcome = "success" | "failure" | "rejected" | "cancelled" | "skipped"

const outcomes: ReadonlyArray<Outcome> = ["success", "failure", "rejected", "cancelled", "skipped"]

// Tagged series are resolved once per upstream (names are known when the layer is built), and
// updated synchronously where the router already is (per attempt, at the first content chunk),
// so that no effect is allocated on the chunk path.
const outcomesFor = (upstream: string): Readonly<Record<Outcome, TaggedMetric.Updater<number>>> =>
  TaggedMetric.forValues(attemptsTotal, "outcome", outcomes, { upstream })

const hedgeOutcomes = TaggedMetric.forValues(hedgesTotal, "outcome", ["started", "won", "refused"])

const bump = (counter: TaggedMetric.Updater<number>): void => counter(1)

// ---------------------------------------------------------------------------------------------
// Upstreams and settings
// ---------------------------------------------------------------------------------------------

export interface Upstream {
  readonly name: string
  readonly model: LanguageModel.Service
  /** The model's streaming call in push form (`LanguageModel.runOf`), resolved once. */
  readonly run: LanguageModel.Run
  readonly weight: number
  readonly models: Readonly<Record<string, string>> | "*"
  readonly isAvailable: ((upstream: string, model: string) => boolean) | undefined
  readonly bulkhead: Bulkhead | undefined
  readonly stats: Record<Kind, Stats>
  inFlight: number
  readonly outcomes: Readonly<Record<Outcome, TaggedMetric.Updater<number>>>
  readonly latency: TaggedMetric.Updater<number>
  readonly ttft: TaggedMetric.Updater<number>
  /** `breakwater_router_fallbacks_total` from this upstream, by reason (error tag). */
  readonly fallbacks: (reason: string) => TaggedMetric.Updater<number>
}

export const makeUpstream = (options: {
  readonly name: string
  readonly model: LanguageModel.Service
  readonly weight: number
  readonly models: Readonly<Record<string, string>> | "*"
  readonly isAvailable: ((upstream: string, model: string) => boolean) | undefined
  readonly bulkhead: Bulkhead | undefined
}): Upstream => ({
  ...options,
  run: LanguageModel.runOf(options.model),
  stats: { generate: new Stats(), stream: new Stats() },
  inFlight: 0,
  outcomes: outcomesFor(options.name),
  latency: TaggedMetric.make(upstreamLatency, { upstream: options.name }),
  ttft: TaggedMetric.make(upstreamTtft, { upstream: options.name }),
  fallbacks: TaggedMetric.byValue(fallbacksTotal, "reason", { from: options.name })
})

export type Strategy = "fallback" | "weighted" | "least-latency" | "least-in-flight"

export type HedgeDelay =
  | { readonly _tag: "fixed"; readonly millis: number }
  | { readonly _tag: "percentile"; readonly percentile: number; readonly minSamples: number }

export interface Settings {
  readonly strategy: Strategy
  readonly fallbackOn: (error: ModelError.ModelError) => boolean
  readonly maxAttempts: number
  readonly hedging: { readonly delay: HedgeDelay; readonly budget: RequestBudget.Budget } | undefined
  readonly alpha: number
  readonly explorationRate: number
  readonly failurePenaltyMillis: number
  /** The router's own seeded generator, or `undefined` to use the `Random` service in context. */
  readonly random: Random.Random | undefined
}

// ---------------------------------------------------------------------------------------------
// Route selection
// ---------------------------------------------------------------------------------------------

/** What a lane (a chain of attempts; a hedge races two) reports: the upstream that served it. */
interface Lane {
  upstream: string | undefined
}

interface Route {
  readonly upstream: Upstream
  /** The model name to send to this upstream. */
  readonly model: string
  /** The target (upstream, model) in the request trace: one upstream may serve several. */
  readonly key: string
}

/** One request's walk through its candidate upstreams, shared by the lanes of a hedge. */
class Plan {
  private index = 0
  private made = 0
  lastError: ModelError.ModelError | undefined = undefined
  constructor(
    readonly routes: ReadonlyArray<Route>,
    readonly maxAttempts: number,
    readonly clientModel: string,
    readonly observer: RequestObserver.RequestObserver | undefined
  ) {}

  /** The next route that will be tried, passing over (and counting) unavailable ones. */
  peek(): Route | undefined {
    if (this.made >= this.maxAttempts) return undefined
    while (this.index < this.routes.length) {
      const route = this.routes[this.index]!
      const available = route.upstream.isAvailable
      if (available === undefined || available(route.upstream.name, route.model)) return route
      bump(route.upstream.outcomes.skipped)
      this.observer?.event({ _tag: "TargetSkipped", target: route.key })
      this.index++
    }
    return undefined
  }

  next(): Route | undefined {
    const route = this.peek()
    if (route !== undefined) {
      this.index++
      this.made++
    }
    return route
  }

  exhausted(): ModelError.ModelError {
    return this.lastError ?? new ModelError.CircuitOpen({
      message: `no upstream serving model "${this.clientModel}" is available`
    })
  }
}

/**
 * One attempt's preamble gate: what precedes the chunk that commits the stream
 * (`StreamCommit.commits`: content or a finish) — a role-only chunk — is held back and
 * released with it; heartbeats pass. Plain functions on the chunk path; `onOpen` sees the chunk
 * that opened it.
 */
const preamble = (onOpen: (chunk: Chunk_) => void) => {
  let open = false
  let held: Array<Chunk_> | undefined
  return {
    pass: (chunks: ReadonlyArray<Chunk_>): ReadonlyArray<Chunk_> => {
      if (open) return chunks
      const out: Array<Chunk_> = []
      for (const chunk of chunks) {
        if (open || ChatCompletion.isHeartbeat(chunk)) out.push(chunk)
        else if (StreamCommit.commits(chunk)) {
          open = true
          onOpen(chunk)
          if (held !== undefined) out.push(...held)
          held = undefined
          out.push(chunk)
        } else (held ??= []).push(chunk)
      }
      return out
    },
    /** What is still held when the attempt ends without content (an empty answer). */
    rest: (): ReadonlyArray<Chunk_> => {
      const rest = held ?? []
      held = undefined
      return rest
    }
  }
}

const noop = () => {}

/**
 * A model whose streams hold back what precedes the first content (a role-only chunk) and release
 * it with that content; heartbeats pass. Put under a per-target policy (`eachTarget`), it lets a
 * retry there see a stream that failed before any content as one that sent nothing, as the
 * router's own lanes do, so such a failure is retried on the same target.
 */
export const holdPreamble = (model: LanguageModel.Service): LanguageModel.Service => {
  const below = LanguageModel.runOf(model)
  const run: LanguageModel.Run = (request, options, sink) =>
    Effect.suspend(() => {
      const gate = preamble(noop)
      const gated: LanguageModel.ChunkSink = {
        start: sink.start,
        push: (chunks) => {
          const out = gate.pass(chunks)
          return out.length === 0 || sink.push(out)
        }
      }
      return Effect.zipRight(below(request, options, gated), Effect.sync(() => {
        const rest = gate.rest()
        if (rest.length > 0) sink.push(rest)
      }))
    })
  return { generate: model.generate, stream: LanguageModel.streamFromRun(run), run, honoursSignal: model.honoursSignal, takesContext: model.takesContext }
}

const isRejected = (error: ModelError.ModelError): boolean => error._tag === "CapacityExceeded"

const failureOf = <E>(cause: Cause.Cause<E>): E | undefined => Option.getOrUndefined(Cause.failureOption(cause))

const MAX_CACHED_MODELS = 1024

// The fallback strategy draws nothing.
const noRandom = (): number => 0

export const make = (upstreams: ReadonlyArray<Upstream>, settings: Settings): LanguageModel.Service => {
  const { fallbackOn, hedging, strategy } = settings

  // Candidates per client model: a small loop over the upstreams, cached (bounded, since the
  // model name comes from the client).
  const routeCache = new Map<string, ReadonlyArray<Route>>()
  const routesFor = (model: string): ReadonlyArray<Route> => {
    let routes = routeCache.get(model)
    if (routes === undefined) {
      const found: Array<Route> = []
      for (const upstream of upstreams) {
        const target = upstream.models === "*" ? model : upstream.models[model]
        if (target !== undefined) found.push({ upstream, model: target, key: `${upstream.name}@${target}` })
      }
      routes = found
      if (routeCache.size < MAX_CACHED_MODELS) routeCache.set(model, routes)
    }
    return routes
  }

  /** Targets that already failed this request go last, in their order (a stable partition). */
  const avoidFailed = (routes: ReadonlyArray<Route>, failed: ReadonlyArray<string>): ReadonlyArray<Route> => {
    if (failed.length === 0 || routes.length < 2) return routes
    const fresh = routes.filter((r) => !failed.includes(r.key))
    return fresh.length === routes.length ? routes : [...fresh, ...routes.filter((r) => failed.includes(r.key))]
  }

  /** Records a target's failure (not a cancellation, not the request's own fault) in the trace. */
  const noteFailure = (ctx: Ctx, route: Route, exit: Exit.Failure<unknown, ModelError.ModelError>) => {
    const error = failureOf(exit.cause)
    if (error === undefined || !fallbackOn(error) || isRejected(error)) return
    // Without a request context every call shares the default one: nothing per request to note.
    if (ctx.requestId === "none") return
    if (!ctx.trace.failed.includes(route.key)) ctx.trace.failed.push(route.key)
  }

  const order = (routes: ReadonlyArray<Route>, kind: Kind, random: () => number): ReadonlyArray<Route> => {
    switch (strategy) {
      case "fallback":
        return routes
      case "weighted": {
        // Weighted sampling without replacement: the first pick carries the load split, the
        // rest is the fallback order. Weight 0 means "backup only", tried last in given order.
        const pool = routes.filter((r) => r.upstream.weight > 0)
        const out: Array<Route> = []
        let total = 0
        for (const r of pool) total += r.upstream.weight
        while (pool.length > 0) {
          let x = random() * total
          let i = 0
          while (i < pool.length - 1 && x >= pool[i]!.upstream.weight) x -= pool[i++]!.upstream.weight
          total -= pool[i]!.upstream.weight
          out.push(pool.splice(i, 1)[0]!)
        }
        for (const r of routes) if (r.upstream.weight === 0) out.push(r)
        return out
      }
      case "least-latency": {
        // Untried upstreams rank first (no EWMA yet counts as 0), so each gets measured.
        const out = [...routes].sort((a, b) => (a.upstream.stats[kind].ewma ?? 0) - (b.upstream.stats[kind].ewma ?? 0))
        // Exploration: sometimes lead with another upstream, so a recovered one is measured again.
        if (out.length > 1 && random() < settings.explorationRate) {
          const j = 1 + Math.floor(random() * (out.length - 1))
          out.unshift(out.splice(j, 1)[0]!)
        }
        return out
      }
      case "least-in-flight": {
        const keyed = routes.map((route) => ({ route, tie: random() }))
        keyed.sort((a, b) => a.route.upstream.inFlight - b.route.upstream.inFlight || a.tie - b.tie)
        return keyed.map((k) => k.route)
      }
    }
  }

  const seedDraw: Effect.Effect<number> = settings.random === undefined
    ? Effect.randomWith((r) => r.nextInt)
    : settings.random.nextInt

  interface Begin {
    readonly plan: Plan
    readonly ctx: Ctx
    readonly clock: Clock.Clock
    /** The hedging delay for this request, when it may be hedged. */
    readonly hedgeAfter: number | undefined
  }

  const begin = (request: ChatCompletion.ChatRequest, kind: Kind, options: LanguageModel.CallOptions | undefined): Effect.Effect<Begin, ModelError.ModelError> =>
    RequestContext.of(options, (ctx) => Effect.clockWith((clock) => {
      const routes = routesFor(request.model)
      if (routes.length === 0) {
        return Effect.fail(
          new ModelError.ModelNotFound({ message: `no upstream serves model "${request.model}"`, code: "model_not_found" })
        )
      }
      const start = (random: () => number): Begin => {
        const plan = new Plan(avoidFailed(order(routes, kind, random), ctx.trace.failed), settings.maxAttempts, request.model, ctx.observer)
        let hedgeAfter: number | undefined
        if (hedging !== undefined) {
          hedging.budget.recordRequest(clock.unsafeCurrentTimeMillis())
          const delay = hedging.delay
          if (delay._tag === "fixed") hedgeAfter = delay.millis
          else {
            const first = plan.peek()
            if (first !== undefined) hedgeAfter = first.upstream.stats[kind].percentile(delay.percentile, delay.minSamples)
          }
        }
        return { plan, ctx, clock, hedgeAfter }
      }
      return strategy === "fallback" ? Effect.succeed(start(noRandom)) : Effect.map(seedDraw, (seed) => start(prng(seed)))
    }))

  const requestFor = (route: Route, request: ChatCompletion.ChatRequest): ChatCompletion.ChatRequest =>
    route.model === request.model ? request : { ...request, model: route.model }

  /** Bookkeeping when an attempt ends, however it ends. */
  const finish = (
    upstream: Upstream,
    kind: Kind,
    exit: Exit.Exit<unknown, ModelError.ModelError>,
    elapsed: number,
    measured: boolean
  ): void => {
    upstream.inFlight--
    if (Exit.isSuccess(exit)) {
      bump(upstream.outcomes.success)
      upstream.latency(elapsed / 1000)
      return
    }
    const error = failureOf(exit.cause)
    if (error === undefined) {
      bump(upstream.outcomes.cancelled)
      return
    }
    if (isRejected(error)) {
      bump(upstream.outcomes.rejected)
      return
    }
    bump(upstream.outcomes.failure)
    // A failing upstream must not look fast to least-latency: its failure counts as a slow
    // sample. Errors that are the request's fault (not fallback-worthy) say nothing about it.
    if (!measured && fallbackOn(error)) {
      upstream.stats[kind].record(Math.max(elapsed, settings.failurePenaltyMillis), settings.alpha)
    }
  }

  /** Decides whether to move on after a failed attempt (and records it); `false` = give up. */
  const fallOver = (plan: Plan, ctx: Ctx, route: Route, error: ModelError.ModelError): Effect.Effect<boolean> => {
    if (!fallbackOn(error)) return Effect.succeed(false)
    const from = route.upstream
    plan.lastError = error
    const next = plan.peek()
    if (next === undefined) return Effect.succeed(false)
    bump(from.fallbacks(error._tag))
    ctx.observer?.event({ _tag: "Fallback", from: route.key, to: next.key, reason: error._tag })
    return Effect.as(
      Effect.annotateLogs(Effect.logInfo("falling over to the next upstream"), {
        request_id: ctx.requestId,
        from: route.key,
        to: next.key,
        reason: error._tag
      }),
      true
    )
  }

  // -------------------------------------------------------------------------------------------
  // generate
  // -------------------------------------------------------------------------------------------

  const generateLane = (
    b: Begin,
    request: ChatCompletion.ChatRequest,
    options: LanguageModel.CallOptions | undefined,
    lane: Lane = { upstream: undefined }
  ) => {
    const { plan, ctx, clock } = b
    const loop: Effect.Effect<Chat, ModelError.ModelError> = Effect.suspend(() => {
      const route = plan.next()
      if (route === undefined) return Effect.fail(plan.exhausted())
      const upstream = route.upstream
      let call = RequestContext.handDown(
        upstream.model.takesContext,
        { ...ctx, upstream: upstream.name },
        options,
        (o) => upstream.model.generate(requestFor(route, request), o)
      )
      if (upstream.bulkhead !== undefined) call = upstream.bulkhead.run(call)
      const started = clock.unsafeCurrentTimeMillis()
      upstream.inFlight++
      return LeanEffect.onExitCatchAll(
        call,
        (exit) => {
          const elapsed = clock.unsafeCurrentTimeMillis() - started
          if (Exit.isSuccess(exit)) {
            upstream.stats.generate.record(elapsed, settings.alpha)
            ctx.trace.upstream = upstream.name
            lane.upstream = upstream.name
          } else noteFailure(ctx, route, exit as Exit.Failure<unknown, ModelError.ModelError>)
          finish(upstream, "generate", exit, elapsed, false)
        },
        (error) => Effect.flatMap(fallOver(plan, ctx, route, error), (again) => (again ? loop : Effect.fail(error)))
      )
    })
    return loop
  }

  // -------------------------------------------------------------------------------------------
  // stream
  // -------------------------------------------------------------------------------------------

  /**
   * One lane: attempts in plan order, falling over while the lane has emitted nothing but
   * heartbeats. A role-only chunk is held back until the first chunk with content (or a final
   * chunk), so a failure before any content moves on without a stray role chunk downstream;
   * after that, failures pass through (they are stream-resume's). Per chunk: the gate, until the
   * lane commits; then the chunks pass as they are.
   */
  const runLane = (
    b: Begin,
    request: ChatCompletion.ChatRequest,
    options: LanguageModel.CallOptions | undefined,
    sink: LanguageModel.ChunkSink,
    lane: Lane = { upstream: undefined }
  ): Effect.Effect<void, ModelError.ModelError> => {
    const { plan, ctx, clock } = b
    let committed = false
    const attempt = (): Effect.Effect<void, ModelError.ModelError> =>
      Effect.suspend(() => {
        const route = plan.next()
        if (route === undefined) return Effect.fail(plan.exhausted())
        const upstream = route.upstream
        let started = -1
        const commit = (content: boolean) => {
          committed = true
          ctx.trace.upstream = upstream.name
          lane.upstream = upstream.name
          if (content) {
            const ttft = clock.unsafeCurrentTimeMillis() - started
            upstream.stats.stream.record(ttft, settings.alpha)
            upstream.ttft(ttft / 1000)
          }
        }
        const gate = preamble((chunk) => commit(ChatCompletion.hasContent(chunk)))
        const gated: LanguageModel.ChunkSink = {
          start: sink.start,
          push: (chunks) => {
            const out = gate.pass(chunks)
            return out.length === 0 || sink.push(out)
          }
        }
        let call = RequestContext.handDown(
          upstream.model.takesContext,
          { ...ctx, upstream: upstream.name },
          options,
          (o) => upstream.run(requestFor(route, request), o, gated)
        )
        if (upstream.bulkhead !== undefined) call = Effect.scoped(Effect.zipRight(upstream.bulkhead.acquire, call))
        started = clock.unsafeCurrentTimeMillis()
        upstream.inFlight++
        return LeanEffect.onExitCatchAll(
          // A stream that ends with no content at all (an empty answer) still counts as served.
          Effect.zipRight(call, Effect.sync(() => {
            if (committed) return
            commit(false)
            const rest = gate.rest()
            if (rest.length > 0) sink.push(rest)
          })),
          (exit) => {
            finish(upstream, "stream", exit, clock.unsafeCurrentTimeMillis() - started, committed)
            if (Exit.isFailure(exit)) noteFailure(ctx, route, exit as Exit.Failure<unknown, ModelError.ModelError>)
          },
          (error) =>
            committed
              ? Effect.fail(error)
              : Effect.flatMap(fallOver(plan, ctx, route, error), (again) => (again ? attempt() : Effect.fail(error)))
        )
      })
    return attempt()
  }

  /** A lane as an `effect/Stream` (for hedging, which races two). */
  const streamLane = (b: Begin, request: ChatCompletion.ChatRequest, options: LanguageModel.CallOptions | undefined, lane: Lane) =>
    LanguageModel.streamFromRun((r, o, sink) => runLane(b, r, o, sink, lane))(request, options)

  // -------------------------------------------------------------------------------------------
  // hedging
  // -------------------------------------------------------------------------------------------

  /** Whether a hedge may start now: another upstream is left and the budget allows one. */
  const mayHedge = (b: Begin): boolean => {
    if (hedging === undefined || b.plan.peek() === undefined) return false
    if (!hedging.budget.tryExtra(b.clock.unsafeCurrentTimeMillis())) {
      bump(hedgeOutcomes.refused)
      return false
    }
    b.ctx.trace.hedged = true
    bump(hedgeOutcomes.started)
    return true
  }

  const logHedge = (b: Begin, delay: number) => {
    b.ctx.observer?.event({ _tag: "Hedge", outcome: "started", delayMillis: delay })
    return Effect.annotateLogs(Effect.logDebug("hedging: starting a second attempt"), { request_id: b.ctx.requestId, delay_ms: delay })
  }

  /**
   * Settles a race of two lanes: the first success wins and the other is cancelled; a failure
   * that must not fall over ends both; otherwise the race waits for the other lane.
   */
  const settle = <A>(
    lanes: readonly [Fiber.Fiber<A, ModelError.ModelError>, Fiber.Fiber<A, ModelError.ModelError>],
    cancel: readonly [Effect.Effect<void>, Effect.Effect<void>]
  ): Effect.Effect<readonly [0 | 1, A], ModelError.ModelError> => {
    const decide = (exit: Exit.Exit<A, ModelError.ModelError>, i: 0 | 1): Effect.Effect<readonly [0 | 1, A], ModelError.ModelError> => {
      const other = (1 - i) as 0 | 1
      if (Exit.isSuccess(exit)) return Effect.as(cancel[other], [i, exit.value] as const)
      const error = failureOf(exit.cause)
      if (error !== undefined && fallbackOn(error)) {
        return Effect.flatMap(Fiber.await(lanes[other]), (otherExit) =>
          Exit.isSuccess(otherExit) ? Effect.succeed([other, otherExit.value] as const) : Effect.failCause(otherExit.cause))
      }
      return Effect.zipRight(cancel[other], Effect.failCause(exit.cause))
    }
    return Effect.raceWith(Fiber.await(lanes[0]), Fiber.await(lanes[1]), {
      onSelfDone: (exit) => Exit.isSuccess(exit) ? decide(exit.value, 0) : Effect.failCause(exit.cause),
      onOtherDone: (exit) => Exit.isSuccess(exit) ? decide(exit.value, 1) : Effect.failCause(exit.cause)
    })
  }

  const hedgedGenerate = (b: Begin, delay: number, request: ChatCompletion.ChatRequest, options: LanguageModel.CallOptions | undefined) =>
    Effect.gen(function*() {
      const lanes: [Lane, Lane] = [{ upstream: undefined }, { upstream: undefined }]
      const first = yield* Effect.fork(generateLane(b, request, options, lanes[0]))
      const early = yield* Effect.timeoutOption(Fiber.await(first), Duration.millis(delay))
      if (Option.isSome(early)) return yield* early.value
      if (!mayHedge(b)) return yield* Fiber.join(first)
      yield* logHedge(b, delay)
      const second = yield* Effect.fork(generateLane(b, request, options, lanes[1]))
      const [winner, completion] = yield* settle([first, second], [Effect.asVoid(Fiber.interrupt(first)), Effect.asVoid(Fiber.interrupt(second))])
      if (winner === 1) {
        bump(hedgeOutcomes.won)
        b.ctx.observer?.event({ _tag: "Hedge", outcome: "won", delayMillis: undefined })
      }
      // Both lanes may have finished before the race was settled: the trace names the winner.
      b.ctx.trace.upstream = lanes[winner].upstream
      return completion
    })

  /**
   * Pulls a lane until its first non-heartbeat chunk (`undefined`: it ended empty): the lane's
   * gate holds its preamble back, so that is the batch that commits it.
   */
  const untilCommit = (pull: Effect.Effect<Chunk.Chunk<Chunk_>, Option.Option<ModelError.ModelError>>) => {
    const loop: Effect.Effect<Chunk.Chunk<Chunk_> | undefined, ModelError.ModelError> = Effect.matchEffect(pull, {
      onFailure: (e) => (Option.isNone(e) ? Effect.succeed(undefined) : Effect.fail(e.value)),
      onSuccess: (chunk) => {
        const i = Chunk.findFirstIndex(chunk, (c) => !ChatCompletion.isHeartbeat(c))
        return Option.isSome(i) ? Effect.succeed(Chunk.drop(chunk, i.value)) : loop
      }
    })
    return loop
  }

  /**
   * A hedged stream: the lanes run until one produces its first content (heartbeats before it
   * are not forwarded); the winner's stream continues, the loser's scope is closed, which
   * interrupts its upstream call (the socket closes).
   */
  const hedgedStream = (b: Begin, delay: number, request: ChatCompletion.ChatRequest, options: LanguageModel.CallOptions | undefined) =>
    Stream.unwrapScoped(Effect.gen(function*() {
      const scope = yield* Effect.scope
      const open = Effect.gen(function*() {
        const laneScope = yield* Scope.fork(scope, ExecutionStrategy.sequential)
        const lane: Lane = { upstream: undefined }
        const pull = yield* Scope.extend(Stream.toPull(streamLane(b, request, options, lane)), laneScope)
        const fiber = yield* Effect.forkIn(untilCommit(pull), laneScope)
        // Closed as interrupted, so the lane's attempt records it was cancelled.
        return { lane, pull, fiber, close: Effect.fiberIdWith((id) => Scope.close(laneScope, Exit.interrupt(id))) }
      })
      const continueWith = (
        lane: Effect.Effect.Success<typeof open>,
        first: Chunk.Chunk<Chunk_> | undefined
      ): Stream.Stream<Chunk_, ModelError.ModelError> =>
        first === undefined ? Stream.empty : Stream.concat(Stream.fromChunk(first), Stream.repeatEffectChunkOption(lane.pull))

      const a = yield* open
      const early = yield* Effect.timeoutOption(Fiber.await(a.fiber), Duration.millis(delay))
      if (Option.isSome(early)) {
        return Exit.isSuccess(early.value) ? continueWith(a, early.value.value) : Stream.failCause(early.value.cause)
      }
      if (!mayHedge(b)) {
        const exit = yield* Fiber.await(a.fiber)
        return Exit.isSuccess(exit) ? continueWith(a, exit.value) : Stream.failCause(exit.cause)
      }
      yield* logHedge(b, delay)
      const h = yield* open
      const [winner, first] = yield* settle([a.fiber, h.fiber], [a.close, h.close])
      if (winner === 1) {
        bump(hedgeOutcomes.won)
        b.ctx.observer?.event({ _tag: "Hedge", outcome: "won", delayMillis: undefined })
      }
      const won = winner === 0 ? a : h
      b.ctx.trace.upstream = won.lane.upstream
      return continueWith(won, first)
    }))

  // A hedged stream races two lanes as streams (two fibers): only hedged requests pay for it.
  const run: LanguageModel.Run = (request, options, sink) =>
    Effect.flatMap(begin(request, "stream", options), (b) =>
      b.hedgeAfter === undefined
        ? runLane(b, request, options, sink)
        : LanguageModel.runFromStream(() => hedgedStream(b, b.hedgeAfter!, request, options))(request, options, sink))

  return {
    generate: (request, options) =>
      Effect.flatMap(begin(request, "generate", options), (b) =>
        b.hedgeAfter === undefined ? generateLane(b, request, options) : hedgedGenerate(b, b.hedgeAfter, request, options)),
    stream: LanguageModel.streamFromRun(run),
    run,
    // Every target's I/O stops on the signal, or the router's does not.
    honoursSignal: upstreams.every((u) => u.model.honoursSignal === true),
    takesContext: true
  }
}
