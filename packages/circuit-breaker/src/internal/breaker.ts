import { ChatCompletion, LanguageModel, LeanEffect, LeanStream, ModelError, RequestContext, TaggedMetric } from "@breakwater/core"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as PubSub from "effect/PubSub"
import * as Stream from "effect/Stream"
import { type BreakerStore, type BreakerStoreError, modify } from "../BreakerStore.js"
import * as machine from "./machine.js"

export interface Transition {
  readonly key: string
  readonly from: machine.Phase
  readonly to: machine.Phase
  readonly at: number
}

export interface Breaker {
  readonly withBreaker: (key: string) => <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | ModelError.CircuitOpen, R>
  readonly withBreakerStream: (key: string) => <A, E, R>(self: Stream.Stream<A, E, R>) => Stream.Stream<A, E | ModelError.CircuitOpen, R>
  readonly withBreakerRun: (key: string) => (run: LanguageModel.Run) => LanguageModel.Run
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
  description: "Breaker state transitions seen by this instance (tags: key, from, to)",
  incremental: true
})
export const rejectedTotal = Metric.counter("breakwater_circuit_rejected_total", {
  description: "Calls refused at once by an open breaker (tag: key)",
  incremental: true
})

const phases: ReadonlyArray<machine.Phase> = ["closed", "open", "half-open"]

/** This instance's last look at a breaker: enough to answer `isAvailable` without the store. */
interface View {
  readonly phase: machine.Phase
  readonly generation: number
  readonly openUntil: number
  /** Half-open with every probe slot taken. */
  readonly probesFull: boolean
  readonly seenAt: number
}

/** A call admitted without a store (the store failed): nothing to record. */
const UNTRACKED: machine.Permit = { _tag: "Call", generation: -1 }

interface Ticket {
  readonly permit: machine.Permit
  readonly startedAt: number
  /** Streams: when the first content arrived. */
  firstContentAt: number | undefined
  /** What taking it announces (a state change seen in the store), if anything. */
  readonly announce: Effect.Effect<void>
}

export const make = (
  store: BreakerStore,
  config: machine.Config,
  counts: (error: unknown) => boolean,
  syncMillis: number
): Effect.Effect<Breaker> =>
  Effect.gen(function*() {
    const clock = yield* Effect.clock
    const hub = yield* PubSub.unbounded<Transition>()
    const local = new Map<string, View>()
    const windowMillis = config.window.kind === "time" ? config.window.millis : 0
    // Long enough that a key never expires while it matters (open, in a window, or probing).
    const ttl = Math.max(config.maxOpenMillis, windowMillis, config.probeTimeoutMillis) + 60 * 60 * 1000
    const instance = Math.random().toString(36).slice(2, 10)
    let probeCounter = 0
    const rejectedFor = TaggedMetric.byValue(rejectedTotal, "key")

    const gauges = (key: string, phase: machine.Phase) =>
      Effect.forEach(
        phases,
        (p) => Metric.set(Metric.tagged(Metric.tagged(stateGauge, "key", key), "state", p), p === phase ? 1 : 0),
        { discard: true }
      )

    const announce = (key: string, from: machine.Phase, state: machine.State, now: number) =>
      Effect.flatMap(RequestContext.current, (ctx) => {
        ctx.observer?.event({ _tag: "BreakerTransition", key, from, to: state.phase })
        return Effect.all([
          PubSub.publish(hub, { key, from, to: state.phase, at: now }),
          Metric.increment(
            Metric.tagged(Metric.tagged(Metric.tagged(transitionsTotal, "key", key), "from", from), "to", state.phase)
          ),
          gauges(key, state.phase),
          (state.phase === "open"
            ? Effect.logWarning("circuit opened").pipe(
              Effect.annotateLogs({ open_ms: state.openUntil - now, trips: state.trips })
            )
            : Effect.logInfo(`circuit ${state.phase}`)).pipe(
              Effect.annotateLogs({ circuit: key, from, request_id: ctx.requestId })
            )
        ], { discard: true })
      })

    /** Updates the local view from a state read or written in the store; announces a change. */
    const observe = (key: string, state: machine.State, now: number): Effect.Effect<void> => {
      const prev = local.get(key)
      local.set(key, {
        phase: state.phase,
        generation: state.generation,
        openUntil: state.openUntil,
        probesFull: state.phase === "half-open" && state.probes.length + state.probeOutcomes.length >= config.halfOpenProbes,
        seenAt: now
      })
      // The gauge exists from a key's first sighting, so dashboards see closed breakers too.
      if (prev === undefined) {
        return state.phase === "closed" ? gauges(key, "closed") : announce(key, "closed", state, now)
      }
      return prev.phase === state.phase ? Effect.void : announce(key, prev.phase, state, now)
    }

    const storeFailed = (key: string, error: BreakerStoreError) =>
      Effect.logWarning("circuit breaker store failed; using the local view").pipe(
        Effect.annotateLogs({ circuit: key, error: error.message })
      )

    /**
     * A permit taken at once — a fresh enough view of a closed breaker, or a store that answers
     * synchronously — or `undefined` when the store must be asked (then `acquire`).
     */
    const acquireNow = (key: string): Ticket | undefined => {
      const now = clock.unsafeCurrentTimeMillis()
      const view = local.get(key)
      // Closed needs no write; a fresh enough view of it saves the store a read per call.
      if (view !== undefined && view.phase === "closed" && now - view.seenAt < syncMillis) {
        return { permit: { _tag: "Call", generation: view.generation }, startedAt: now, firstContentAt: undefined, announce: Effect.void }
      }
      if (store.modifyNow === undefined) return undefined
      const probeId = `${instance}-${++probeCounter}`
      const [permit, state] = store.modifyNow(key, (s) => machine.acquire(s, probeId, now, config), ttl)
      return { permit, startedAt: now, firstContentAt: undefined, announce: observe(key, state, now) }
    }

    const acquire = (key: string): Effect.Effect<Ticket> =>
      Effect.suspend(() => {
        const ticket = acquireNow(key)
        if (ticket !== undefined) return Effect.as(ticket.announce, ticket)
        const now = clock.unsafeCurrentTimeMillis()
        const view = local.get(key)
        const probeId = `${instance}-${++probeCounter}`
        return modify(store, key, (s) => machine.acquire(s, probeId, now, config), ttl).pipe(
          Effect.flatMap(([permit, state]) =>
            Effect.as(observe(key, state, now), { permit, startedAt: now, firstContentAt: undefined, announce: Effect.void } satisfies Ticket)
          ),
          Effect.catchAll((error) => {
            const permit: machine.Permit = view !== undefined && view.phase === "open" && now < view.openUntil
              ? { _tag: "Rejected", retryAfterMillis: view.openUntil - now }
              : UNTRACKED
            return Effect.as(storeFailed(key, error), { permit, startedAt: now, firstContentAt: undefined, announce: Effect.void } satisfies Ticket)
          })
        )
      })

    /**
     * An interrupted call's release where the store answers at once: "ignored" never moves a
     * breaker between phases, so there is nothing to announce, and the local view is left for
     * the next call to refresh.
     */
    const releaseInterrupted = (key: string, permit: machine.Permit): void => {
      if (permit._tag === "Rejected" || permit.generation < 0 || store.modifyNow === undefined) return
      const now = clock.unsafeCurrentTimeMillis()
      store.modifyNow(key, (s) => [undefined, machine.record(s, permit, "ignored", false, now, config)] as const, ttl)
    }

    const release = (key: string, permit: machine.Permit, outcome: machine.Outcome, slow: boolean): Effect.Effect<void> => {
      if (permit._tag === "Rejected" || permit.generation < 0) return Effect.void
      return Effect.suspend(() => {
        const now = clock.unsafeCurrentTimeMillis()
        if (store.modifyNow !== undefined) {
          const [, state] = store.modifyNow(key, (s) => [undefined, machine.record(s, permit, outcome, slow, now, config)] as const, ttl)
          return observe(key, state, now)
        }
        return modify(store, key, (s) => [undefined, machine.record(s, permit, outcome, slow, now, config)] as const, ttl).pipe(
          Effect.flatMap(([, state]) => observe(key, state, now)),
          Effect.catchAll((error) => storeFailed(key, error))
        )
      })
    }

    const rejected = (key: string, retryAfterMillis: number) =>
      Effect.zipRight(
        Effect.map(RequestContext.RequestContext, (ctx) => {
          rejectedFor(key)(1)
          ctx.observer?.event({ _tag: "BreakerRejected", key, retryAfterMillis })
        }),
        Effect.fail(
          new ModelError.CircuitOpen({
            message: `circuit for ${key} is open; it may close in ${Math.ceil(retryAfterMillis / 1000)} s`,
            upstream: key,
            retryAfter: Duration.millis(retryAfterMillis)
          })
        )
      )

    const outcomeOf = <A, E>(exit: Exit.Exit<A, E>): machine.Outcome => {
      if (Exit.isSuccess(exit)) return "success"
      // The client went away: says nothing about the upstream.
      if (Cause.isInterruptedOnly(exit.cause)) return "ignored"
      const failure = Cause.failureOption(exit.cause)
      if (failure._tag === "Some") return counts(failure.value) ? "failure" : "ignored"
      return "ignored" // a defect is the gateway's own failure: one client's request must not open a shared breaker
    }

    /**
     * `use` under a permit for `key`, released with the call's outcome and whether it was slow
     * (`endOf`: when the call counts as answered). With a permit taken at once the call costs a
     * couple of run-loop steps (`LeanEffect`); with a store to ask, `acquireUseRelease`.
     */
    const guarded = <A, E, R>(
      key: string,
      use: (ticket: Ticket) => Effect.Effect<A, E, R>,
      endOf: (ticket: Ticket) => number
    ): Effect.Effect<A, E | ModelError.CircuitOpen, R> => {
      const useOrReject = (ticket: Ticket): Effect.Effect<A, E | ModelError.CircuitOpen, R> =>
        ticket.permit._tag === "Rejected" ? rejected(key, ticket.permit.retryAfterMillis) : use(ticket)
      const releaseWith = (ticket: Ticket, exit: Exit.Exit<unknown, unknown>) =>
        release(key, ticket.permit, outcomeOf(exit), endOf(ticket) - ticket.startedAt >= config.slowCallMillis)
      return Effect.withFiberRuntime<A, E | ModelError.CircuitOpen, R>((fiber) => {
        const ticket = acquireNow(key)
        if (ticket === undefined) return Effect.acquireUseRelease(acquire(key), useOrReject, releaseWith)
        // Taken and guarded in this one step: no interruption falls between the permit and its release.
        const call = ticket.announce === Effect.void ? useOrReject(ticket) : Effect.zipRight(ticket.announce, useOrReject(ticket))
        return LeanEffect.onExitOrInterruptIn(fiber, call, (exit) => releaseWith(ticket, exit), () => releaseInterrupted(key, ticket.permit))
      })
    }

    const withBreaker = (key: string) => <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | ModelError.CircuitOpen, R> =>
      guarded(key, () => self, () => clock.unsafeCurrentTimeMillis())

    const withBreakerRun = (key: string) => (run: LanguageModel.Run): LanguageModel.Run => (request, options, sink) =>
      guarded(
        key,
        (ticket) => {
          // Per chunk: one check once the first content arrived; a scan of the batch before.
          const watched: LanguageModel.ChunkSink = {
            start: sink.start,
            push: (chunks) => {
              if (ticket.firstContentAt === undefined && ChatCompletion.firstContent(chunks) >= 0) {
                ticket.firstContentAt = clock.unsafeCurrentTimeMillis()
              }
              return sink.push(chunks)
            }
          }
          return run(request, options, watched)
        },
        // A stream is slow when its first content is late; a long answer is not a slow upstream.
        (ticket) => ticket.firstContentAt ?? clock.unsafeCurrentTimeMillis()
      )

    const withBreakerStream = (key: string) => <A, E, R>(self: Stream.Stream<A, E, R>): Stream.Stream<A, E | ModelError.CircuitOpen, R> =>
      LeanStream.acquireUseRelease(
        acquire(key),
        (ticket): Stream.Stream<A, E | ModelError.CircuitOpen, R> => {
          if (ticket.permit._tag === "Rejected") return Stream.fromEffect(rejected(key, ticket.permit.retryAfterMillis))
          return Stream.mapChunks(self, (chunk) => {
            if (ticket.firstContentAt === undefined && ChatCompletion.firstContent(Chunk.toReadonlyArray(chunk) as ReadonlyArray<ChatCompletion.ChatCompletionChunk>) >= 0) {
              ticket.firstContentAt = clock.unsafeCurrentTimeMillis()
            }
            return chunk
          })
        },
        (ticket, exit) => {
          const end = ticket.firstContentAt ?? clock.unsafeCurrentTimeMillis()
          return release(key, ticket.permit, outcomeOf(exit), end - ticket.startedAt >= config.slowCallMillis)
        }
      )

    const phaseOf = (view: View, now: number): machine.Phase =>
      view.phase === "open" && now >= view.openUntil ? "half-open" : view.phase

    return {
      withBreaker,
      withBreakerStream,
      withBreakerRun,
      wrap: (key, model) => {
        const guard = withBreaker(key)
        const run = withBreakerRun(key)(LanguageModel.runOf(model))
        return {
          generate: (request, options) => guard(model.generate(request, options)),
          stream: LanguageModel.streamFromRun(run),
          run,
          honoursSignal: model.honoursSignal,
          // The context passes through as it came.
          takesContext: model.takesContext
        }
      },
      state: (key) =>
        Effect.suspend(() => {
          const now = clock.unsafeCurrentTimeMillis()
          return store.get(key).pipe(
            Effect.flatMap(({ state }) => Effect.as(observe(key, state, now), machine.phaseAt(state, now))),
            Effect.catchAll((error) => {
              const view = local.get(key)
              return Effect.as(storeFailed(key, error), view === undefined ? "closed" as const : phaseOf(view, now))
            })
          )
        }),
      isAvailable: (key) => {
        const view = local.get(key)
        if (view === undefined) return true
        const now = clock.unsafeCurrentTimeMillis()
        if (view.phase === "open") return now >= view.openUntil
        // Probes of another instance may have decided since: a stale view lets a call ask the store.
        return !(view.phase === "half-open" && view.probesFull) || now - view.seenAt >= syncMillis
      },
      snapshot: () => {
        const now = clock.unsafeCurrentTimeMillis()
        const out: Record<string, machine.Phase> = {}
        for (const [key, view] of local) out[key] = phaseOf(view, now)
        return out
      },
      transitions: Stream.fromPubSub(hub)
    }
  })
