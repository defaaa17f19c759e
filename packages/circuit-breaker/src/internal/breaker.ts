import { ChatCompletion, type LanguageModel, ModelError } from "@breakwater/core"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as PubSub from "effect/PubSub"
import * as Stream from "effect/Stream"
import type { BreakerStore } from "../BreakerStore.js"
import * as machine from "./machine.js"

export interface Transition {
  readonly key: string
  readonly from: machine.Phase
  readonly to: machine.Phase
  readonly at: number
}

export interface Breaker {
  readonly guard: (key: string) => <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | ModelError.CircuitOpen, R>
  readonly guardStream: (key: string) => <A, E, R>(self: Stream.Stream<A, E, R>) => Stream.Stream<A, E | ModelError.CircuitOpen, R>
  readonly wrap: (key: string, model: LanguageModel.Service) => LanguageModel.Service
  readonly state: (key: string) => Effect.Effect<machine.Phase>
  readonly isAvailable: (key: string) => boolean
  readonly snapshot: () => Record<string, machine.Phase>
  readonly transitions: Stream.Stream<Transition>
}

export const stateGauge = Metric.gauge("breakwater_circuit_state", {
  description: "1 for the current state of each breaker (tags: key, state), 0 for the others"
})
export const transitionsTotal = Metric.counter("breakwater_circuit_transitions_total", {
  description: "Breaker state transitions (tags: key, from, to)",
  incremental: true
})
export const rejectedTotal = Metric.counter("breakwater_circuit_rejected_total", {
  description: "Calls refused at once by an open breaker (tag: key)",
  incremental: true
})

const phases: ReadonlyArray<machine.Phase> = ["closed", "open", "half-open"]

export const make = (
  store: BreakerStore,
  config: machine.Config,
  counts: (error: unknown) => boolean
): Effect.Effect<Breaker> =>
  Effect.gen(function*() {
    const clock = yield* Effect.clock
    const hub = yield* PubSub.unbounded<Transition>()
    /** The local view, for synchronous reads: the phase and when an open breaker may probe. */
    const local = new Map<string, { phase: machine.Phase; openUntil: number }>()
    const ttl = Math.max(config.maxOpenMillis, config.window.kind === "time" ? config.window.millis : 0) + 60 * 60 * 1000

    const gauges = (key: string, phase: machine.Phase) =>
      Effect.forEach(phases, (p) => Metric.set(Metric.tagged(Metric.tagged(stateGauge, "key", key), "state", p), p === phase ? 1 : 0), { discard: true })

    const observe = (key: string, before: machine.Phase, after: machine.State, now: number) =>
      Effect.suspend(() => {
        const first = !local.has(key)
        local.set(key, { phase: after.phase, openUntil: after.openUntil })
        if (before === after.phase) {
          // The state gauge exists from a key's first call, so dashboards see closed breakers too.
          return first ? gauges(key, after.phase) : Effect.void
        }
        const transition: Transition = { key, from: before, to: after.phase, at: now }
        return Effect.all([
          PubSub.publish(hub, transition),
          Metric.increment(Metric.tagged(Metric.tagged(Metric.tagged(transitionsTotal, "key", key), "from", before), "to", after.phase)),
          gauges(key, after.phase),
          after.phase === "open"
            ? Effect.logWarning("circuit opened").pipe(
              Effect.annotateLogs({ circuit: key, from: before, open_ms: after.openUntil - now, trips: after.trips })
            )
            : Effect.logInfo(`circuit ${after.phase}`).pipe(Effect.annotateLogs({ circuit: key, from: before }))
        ], { discard: true })
      })

    const acquire = (key: string) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.flatMap(
          store.modify(key, (s) => {
            const [permit, next] = machine.acquire(s, now, config)
            return [[permit, s.phase, next] as const, next]
          }, ttl),
          ([permit, before, next]) =>
            Effect.as(observe(key, before, next, now), { permit, startedAt: now })
        ))

    const release = (key: string, permit: machine.Permit, outcome: machine.Outcome, slow: boolean) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.flatMap(
          store.modify(key, (s) => {
            const next = machine.record(s, permit, outcome, slow, now, config)
            return [[s.phase, next] as const, next]
          }, ttl),
          ([before, next]) => observe(key, before, next, now)
        ))

    const rejected = (key: string, retryAfterMillis: number) =>
      Effect.zipRight(
        Metric.increment(Metric.tagged(rejectedTotal, "key", key)),
        Effect.fail(new ModelError.CircuitOpen({
          message: `circuit for ${key} is open; it may close in ${Math.ceil(retryAfterMillis / 1000)} s`,
          upstream: key,
          retryAfter: Duration.millis(retryAfterMillis)
        }))
      )

    const outcomeOf = <A, E>(exit: Exit.Exit<A, E>): machine.Outcome => {
      if (Exit.isSuccess(exit)) return "success"
      if (Cause.isInterruptedOnly(exit.cause)) return "ignored"
      const failure = Cause.failureOption(exit.cause)
      if (failure._tag === "Some") return counts(failure.value) ? "failure" : "ignored"
      return "failure" // a defect is the upstream stack misbehaving
    }

    const guard = (key: string) => <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | ModelError.CircuitOpen, R> =>
      Effect.acquireUseRelease(
        acquire(key),
        ({ permit }): Effect.Effect<A, E | ModelError.CircuitOpen, R> =>
          permit._tag === "Rejected" ? rejected(key, permit.retryAfterMillis) : self,
        ({ permit, startedAt }, exit) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) =>
            release(key, permit, outcomeOf(exit), now - startedAt >= config.slowCallMillis))
      )

    const guardStream = (key: string) => <A, E, R>(self: Stream.Stream<A, E, R>): Stream.Stream<A, E | ModelError.CircuitOpen, R> =>
      Stream.unwrapScoped(Effect.map(
        Effect.acquireRelease(acquire(key), ({ permit, startedAt }, exit) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) => {
            // A stream is slow when its first content is late; a long answer is not a slow upstream.
            const firstAt = firstContentAt.get(permit)
            const slow = (firstAt ?? now) - startedAt >= config.slowCallMillis
            firstContentAt.delete(permit)
            return release(key, permit, outcomeOf(exit), slow)
          })),
        ({ permit }): Stream.Stream<A, E | ModelError.CircuitOpen, R> => {
          if (permit._tag === "Rejected") return Stream.fromEffect(rejected(key, permit.retryAfterMillis))
          let seen = false
          return Stream.mapChunks(self, (chunk) => {
            if (!seen) {
              for (const item of chunk) {
                if (ChatCompletion.hasContent(item as never)) {
                  seen = true
                  firstContentAt.set(permit, clock.unsafeCurrentTimeMillis())
                  break
                }
              }
            }
            return chunk
          })
        }
      ))

    const firstContentAt = new WeakMap<machine.Permit, number>()

    return {
      guard,
      guardStream,
      wrap: (key, model) => ({
        generate: (request, options) => guard(key)(model.generate(request, options)),
        stream: (request, options) => guardStream(key)(model.stream(request, options))
      }),
      state: (key) =>
        Effect.flatMap(store.get(key), (s) =>
          Effect.map(Clock.currentTimeMillis, (now) => {
            local.set(key, { phase: s.phase, openUntil: s.openUntil })
            return machine.phaseAt(s, now)
          })),
      isAvailable: (key) => {
        const view = local.get(key)
        return view === undefined || view.phase !== "open" || clock.unsafeCurrentTimeMillis() >= view.openUntil
      },
      snapshot: () => {
        const now = clock.unsafeCurrentTimeMillis()
        const out: Record<string, machine.Phase> = {}
        for (const [key, view] of local) out[key] = view.phase === "open" && now >= view.openUntil ? "half-open" : view.phase
        return out
      },
      transitions: Stream.fromPubSub(hub)
    }
  })
