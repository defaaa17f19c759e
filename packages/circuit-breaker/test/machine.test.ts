/**
 * The pure state machine (`BreakerState`): property-based invariants over random configs,
 * outcomes, overlapping calls and time steps, and the rules a shared store relies on.
 */
import { BreakerState } from "@breakwater/circuit-breaker"
import { describe, expect, it } from "@effect/vitest"
import * as Schema from "effect/Schema"
import fc from "fast-check"

type Config = BreakerState.Config
type State = BreakerState.BreakerState

const configArb: fc.Arbitrary<Config> = fc.record({
  window: fc.oneof(
    fc.record({ kind: fc.constant("count" as const), size: fc.integer({ min: 1, max: 12 }) }),
    fc.record({ kind: fc.constant("time" as const), millis: fc.integer({ min: 1_000, max: 20_000 }) })
  ),
  minimumCalls: fc.integer({ min: 1, max: 6 }),
  failureRateThreshold: fc.integer({ min: 1, max: 100 }),
  slowCallRateThreshold: fc.integer({ min: 1, max: 100 }),
  slowCallMillis: fc.constant(1_000),
  openMillis: fc.integer({ min: 100, max: 5_000 }),
  openMultiplier: fc.constantFrom(1, 1.5, 2),
  maxOpenMillis: fc.integer({ min: 5_000, max: 20_000 }),
  halfOpenProbes: fc.integer({ min: 1, max: 3 }),
  halfOpenRule: fc.constantFrom<BreakerState.HalfOpenRule>("all-succeed", "failure-rate"),
  probeTimeoutMillis: fc.integer({ min: 500, max: 30_000 })
})

const stepArb = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("call" as const),
      outcome: fc.constantFrom<BreakerState.Outcome>("success", "failure", "failure", "ignored"),
      slow: fc.boolean(),
      hold: fc.boolean()
    })
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("finish" as const), index: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("advance" as const), millis: fc.integer({ min: 0, max: 6_000 }) }) }
)

const windowCalls = (state: State, now: number, config: Config) => BreakerState.rates(state, now, config).calls
const decodeJson = Schema.decodeUnknownSync(BreakerState.BreakerStateFromJson)
const encodeJson = Schema.encodeSync(BreakerState.BreakerStateFromJson)

const checkCounts = (state: State, config: Config) => {
  expect(state.trips).toBeGreaterThanOrEqual(0)
  expect(state.generation).toBeGreaterThanOrEqual(0)
  if (config.window.kind === "count") expect(state.outcomes.length).toBeLessThanOrEqual(config.window.size)
  for (const b of state.buckets) {
    expect(b.calls).toBeGreaterThanOrEqual(0)
    expect(b.failures).toBeGreaterThanOrEqual(0)
    expect(b.slow).toBeGreaterThanOrEqual(0)
    expect(b.failures).toBeLessThanOrEqual(b.calls)
    expect(b.slow).toBeLessThanOrEqual(b.calls)
  }
  // Never more probes than allowed, in flight or in all before the decision.
  expect(state.probes.length + state.probeOutcomes.length).toBeLessThanOrEqual(config.halfOpenProbes)
  if (state.phase !== "half-open") expect(state.probes.length + state.probeOutcomes.length).toBe(0)
  if (state.phase === "open") {
    const lasted = state.openUntil - state.openedAt
    expect(lasted).toBeGreaterThanOrEqual(Math.min(config.openMillis, config.maxOpenMillis))
    expect(lasted).toBeLessThanOrEqual(Math.max(config.openMillis, config.maxOpenMillis))
  }
}

describe("BreakerState (property-based)", () => {
  it("invariants hold over random configs, outcomes, overlapping calls and time steps", () => {
    fc.assert(
      fc.property(configArb, fc.array(stepArb, { maxLength: 150 }), (config, steps) => {
        let state = BreakerState.initial
        let now = 0
        let n = 0
        const held: Array<{ permit: BreakerState.Permit; outcome: BreakerState.Outcome; slow: boolean }> = []
        const apply = (permit: BreakerState.Permit, outcome: BreakerState.Outcome, slow: boolean) => {
          const before = state
          state = BreakerState.record(state, permit, outcome, slow, now, config)
          // Never open below the minimum calls: a trip from closed had at least that many in the window.
          if (before.phase === "closed" && state.phase === "open") {
            expect(permit._tag).toBe("Call")
            expect(windowCalls(before, now, config) + 1).toBeGreaterThanOrEqual(config.minimumCalls)
          }
          // A permit of an earlier generation changes nothing.
          if (permit._tag !== "Rejected" && permit.generation !== before.generation) expect(state).toBe(before)
          // Ignored outcomes never change the phase.
          if (outcome === "ignored") expect(state.phase).toBe(before.phase)
        }
        for (const s of steps) {
          if (s.kind === "advance") now += s.millis
          else if (s.kind === "finish") {
            if (held.length > 0) {
              const [h] = held.splice(s.index % held.length, 1)
              apply(h!.permit, h!.outcome, h!.slow)
            }
          } else {
            const before = state
            const [permit, next] = BreakerState.acquire(state, `p${n++}`, now, config)
            // Open always ends after its duration: before it, refused with the time left; at it, a probe.
            if (before.phase === "open" && now < before.openUntil) {
              expect(permit).toEqual({ _tag: "Rejected", retryAfterMillis: before.openUntil - now })
              expect(next).toBe(before)
            }
            if (before.phase === "open" && now >= before.openUntil) expect(permit._tag).toBe("Probe")
            if (before.phase === "closed") expect(permit._tag).toBe("Call")
            if (permit._tag === "Rejected") expect(permit.retryAfterMillis).toBeGreaterThan(0)
            expect(next.generation).toBeGreaterThanOrEqual(before.generation)
            state = next
            if (permit._tag !== "Rejected") {
              if (s.hold) held.push({ permit, outcome: s.outcome, slow: s.slow })
              else apply(permit, s.outcome, s.slow)
            }
          }
          checkCounts(state, config)
          // A probe slot is held by at most one outstanding permit: no probe is granted twice.
          const live = held.filter((h) => h.permit._tag === "Probe" && h.permit.generation === state.generation)
          expect(live.length).toBeLessThanOrEqual(state.probes.length)
        }
      }),
      { numRuns: 500 }
    )
  })

  it("from closed, fewer calls than the minimum never open it, whatever their outcomes", () => {
    fc.assert(
      fc.property(configArb, fc.array(fc.record({ failure: fc.boolean(), slow: fc.boolean() }), { maxLength: 10 }), (config, calls) => {
        let state = BreakerState.initial
        for (const call of calls.slice(0, config.minimumCalls - 1)) {
          const [permit, next] = BreakerState.acquire(state, "p", 0, config)
          state = BreakerState.record(next, permit, call.failure ? "failure" : "success", call.slow, 0, config)
        }
        expect(state.phase).toBe("closed")
      })
    )
  })

  it("every reachable state survives a JSON round trip through its schema unchanged", () => {
    fc.assert(
      fc.property(configArb, fc.array(stepArb, { maxLength: 60 }), (config, steps) => {
        let state = BreakerState.initial
        let now = 0
        let n = 0
        for (const s of steps) {
          if (s.kind === "advance") now += s.millis
          else if (s.kind === "call") {
            const [permit, next] = BreakerState.acquire(state, `p${n++}`, now, config)
            state = s.hold ? next : BreakerState.record(next, permit, s.outcome, s.slow, now, config)
          }
          expect(decodeJson(encodeJson(state))).toEqual(state)
        }
      }),
      { numRuns: 200 }
    )
  })

  it("transition is acquire and record behind one event type", () => {
    fc.assert(
      fc.property(configArb, fc.array(stepArb, { maxLength: 60 }), (config, steps) => {
        let a = BreakerState.initial
        let b = BreakerState.initial
        let now = 0
        let n = 0
        for (const s of steps) {
          if (s.kind === "advance") now += s.millis
          else if (s.kind === "call") {
            const id = `p${n++}`
            const [permit, nextA] = BreakerState.acquire(a, id, now, config)
            const [permitB, nextB] = BreakerState.transition(b, { _tag: "Acquire", probeId: id }, now, config)
            expect(permitB).toEqual(permit)
            a = BreakerState.record(nextA, permit, s.outcome, s.slow, now, config)
            b = BreakerState.transition(nextB, { _tag: "Record", permit, outcome: s.outcome, slow: s.slow }, now, config)[1]
            expect(b).toEqual(a)
          }
        }
      }),
      { numRuns: 100 }
    )
  })
})

describe("BreakerState rules", () => {
  const config: Config = {
    window: { kind: "count", size: 4 },
    minimumCalls: 2,
    failureRateThreshold: 50,
    slowCallRateThreshold: 100,
    slowCallMillis: 1_000,
    openMillis: 1_000,
    openMultiplier: 2,
    maxOpenMillis: 10_000,
    halfOpenProbes: 2,
    halfOpenRule: "all-succeed",
    probeTimeoutMillis: 5_000
  }
  const tripped = (): State => {
    let s = BreakerState.initial
    for (let i = 0; i < 2; i++) {
      const [permit, next] = BreakerState.acquire(s, "c", 0, config)
      s = BreakerState.record(next, permit, "failure", false, 0, config)
    }
    expect(s.phase).toBe("open")
    return s
  }

  it("a probe that never reports forfeits its slot at its timeout and counts as failed", () => {
    const [p1, s1] = BreakerState.acquire(tripped(), "a", 1_000, config)
    expect(p1._tag).toBe("Probe")
    const [, s2] = BreakerState.acquire(s1, "b", 1_000, config)
    const [p3] = BreakerState.acquire(s2, "c", 5_999, config)
    expect(p3._tag).toBe("Rejected") // both slots taken
    const [p4, s4] = BreakerState.acquire(s2, "c", 6_000, config)
    expect(p4._tag).toBe("Rejected")
    expect(s4.phase).toBe("open")
    expect(s4.trips).toBe(2)
    // The late report of the forfeited probe changes nothing.
    expect(BreakerState.record(s4, p1, "success", false, 6_100, config)).toBe(s4)
  })

  it("failure-rate rule: decides on the probes' rates once all have reported", () => {
    const rule: Config = { ...config, halfOpenProbes: 4, halfOpenRule: "failure-rate" }
    const run = (outcomes: ReadonlyArray<BreakerState.Outcome>) => {
      let s = tripped()
      const permits: Array<BreakerState.Permit> = []
      for (let i = 0; i < outcomes.length; i++) {
        const [p, next] = BreakerState.acquire(s, `p${i}`, 1_000, rule)
        permits.push(p)
        s = next
      }
      outcomes.forEach((o, i) => (s = BreakerState.record(s, permits[i]!, o, false, 1_100, rule)))
      return s
    }
    expect(run(["success", "failure", "success"]).phase).toBe("half-open") // 3 of 4 reported
    expect(run(["success", "failure", "success", "success"]).phase).toBe("closed") // 25% < 50%
    expect(run(["failure", "success", "failure", "success"]).phase).toBe("open") // 50%
  })

  it("all-succeed rule: one slow probe re-opens it", () => {
    const [p, s] = BreakerState.acquire(tripped(), "a", 1_000, config)
    expect(BreakerState.record(s, p, "success", true, 3_000, config).phase).toBe("open")
  })

  it("a closed call admitted before a trip does not count after it", () => {
    const [late, s0] = BreakerState.acquire(BreakerState.initial, "x", 0, config)
    const s = tripped()
    expect(s0.generation).toBe(0)
    expect(BreakerState.record(s, late, "failure", false, 0, config)).toBe(s)
  })
})
