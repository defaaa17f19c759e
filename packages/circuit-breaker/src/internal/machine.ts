/**
 * The breaker's state machine as pure functions over a plain, serialisable state, so any store
 * (in memory, or Redis through a compare-and-set) applies exactly the same logic atomically.
 */

export type Phase = "closed" | "open" | "half-open"

/** Outcome codes in the count window (bit 0: failure, bit 1: slow). */
export const SUCCESS = 0
export const FAILURE = 1
export const SLOW = 2

export interface Bucket {
  /** Start of the bucket, ms (a multiple of the bucket length). */
  readonly at: number
  readonly calls: number
  readonly failures: number
  readonly slow: number
}

export interface State {
  readonly phase: Phase
  /** Count window: the last outcomes, oldest first (codes above). */
  readonly outcomes: ReadonlyArray<number>
  /** Time window: per-second buckets, oldest first. */
  readonly buckets: ReadonlyArray<Bucket>
  /** When the breaker opened last (ms), and until when it stays open. */
  readonly openedAt: number
  readonly openUntil: number
  /** Consecutive trips without a close in between: the open duration grows with them. */
  readonly trips: number
  /** Half-open: probes in flight, and probe successes so far. */
  readonly probes: number
  readonly probeSuccesses: number
}

export interface Config {
  readonly window: { readonly kind: "count"; readonly size: number } | { readonly kind: "time"; readonly millis: number }
  readonly minimumCalls: number
  /** Percent (0–100). */
  readonly failureRateThreshold: number
  readonly slowCallRateThreshold: number
  readonly slowCallMillis: number
  readonly openMillis: number
  readonly openMultiplier: number
  readonly maxOpenMillis: number
  /** Probes allowed at once in half-open; that many successes close the breaker. */
  readonly halfOpenProbes: number
}

export const initial: State = {
  phase: "closed",
  outcomes: [],
  buckets: [],
  openedAt: 0,
  openUntil: 0,
  trips: 0,
  probes: 0,
  probeSuccesses: 0
}

const BUCKET_MILLIS = 1_000

export type Permit =
  | { readonly _tag: "Call" }
  | { readonly _tag: "Probe" }
  | { readonly _tag: "Rejected"; readonly retryAfterMillis: number }

/** An open breaker whose time is up is half-open (no store write needed to see it). */
export const phaseAt = (state: State, now: number): Phase =>
  state.phase === "open" && now >= state.openUntil ? "half-open" : state.phase

const toHalfOpen = (state: State): State => ({ ...state, phase: "half-open", probes: 0, probeSuccesses: 0 })

/** Asks for permission to call. */
export const acquire = (state: State, now: number, config: Config): readonly [Permit, State] => {
  let current = state
  if (current.phase === "open") {
    if (now < current.openUntil) return [{ _tag: "Rejected", retryAfterMillis: current.openUntil - now }, current]
    current = toHalfOpen(current)
  }
  if (current.phase === "half-open") {
    if (current.probes >= config.halfOpenProbes) {
      // Probes are in flight; their outcome decides soon. Ask again after a short while.
      return [{ _tag: "Rejected", retryAfterMillis: Math.min(1_000, config.openMillis) }, current]
    }
    return [{ _tag: "Probe" }, { ...current, probes: current.probes + 1 }]
  }
  return [{ _tag: "Call" }, current]
}

export type Outcome = "success" | "failure" | "ignored"

const trip = (state: State, now: number, config: Config): State => {
  const trips = state.trips + 1
  const millis = Math.min(config.maxOpenMillis, config.openMillis * Math.pow(config.openMultiplier, trips - 1))
  return { ...initial, phase: "open", openedAt: now, openUntil: now + millis, trips }
}

const close = (): State => initial

interface Rates {
  readonly calls: number
  readonly failureRate: number
  readonly slowRate: number
}

export const rates = (state: State, now: number, config: Config): Rates => {
  let calls = 0
  let failures = 0
  let slow = 0
  if (config.window.kind === "count") {
    for (const o of state.outcomes) {
      calls++
      if ((o & FAILURE) !== 0) failures++
      if ((o & SLOW) !== 0) slow++
    }
  } else {
    const from = now - config.window.millis
    for (const b of state.buckets) {
      if (b.at + BUCKET_MILLIS <= from) continue
      calls += b.calls
      failures += b.failures
      slow += b.slow
    }
  }
  return { calls, failureRate: calls === 0 ? 0 : (failures * 100) / calls, slowRate: calls === 0 ? 0 : (slow * 100) / calls }
}

const addToWindow = (state: State, code: number, now: number, config: Config): State => {
  if (config.window.kind === "count") {
    const outcomes = state.outcomes.length >= config.window.size
      ? [...state.outcomes.slice(state.outcomes.length - config.window.size + 1), code]
      : [...state.outcomes, code]
    return { ...state, outcomes }
  }
  const at = now - (now % BUCKET_MILLIS)
  const from = now - config.window.millis
  const kept = state.buckets.filter((b) => b.at + BUCKET_MILLIS > from && b.at !== at)
  const existing = state.buckets.find((b) => b.at === at)
  const bucket: Bucket = {
    at,
    calls: (existing?.calls ?? 0) + 1,
    failures: (existing?.failures ?? 0) + ((code & FAILURE) !== 0 ? 1 : 0),
    slow: (existing?.slow ?? 0) + ((code & SLOW) !== 0 ? 1 : 0)
  }
  return { ...state, buckets: [...kept, bucket] }
}

/**
 * Records the outcome of a call made under `permit`. `slow` says whether it took longer than
 * the slow-call duration. Ignored outcomes (cancelled calls, errors that do not count) only
 * release a probe slot.
 */
export const record = (
  state: State,
  permit: Permit,
  outcome: Outcome,
  slow: boolean,
  now: number,
  config: Config
): State => {
  if (permit._tag === "Rejected") return state
  if (permit._tag === "Probe") {
    // A probe that finishes after the breaker moved on (another probe re-opened it) changes nothing.
    if (state.phase !== "half-open") return state
    const probes = Math.max(0, state.probes - 1)
    if (outcome === "ignored") return { ...state, probes }
    if (outcome === "failure" || slow) return trip(state, now, config)
    const probeSuccesses = state.probeSuccesses + 1
    return probeSuccesses >= config.halfOpenProbes ? close() : { ...state, probes, probeSuccesses }
  }
  // A call admitted while closed that ends after the breaker opened does not count twice.
  if (state.phase !== "closed" || outcome === "ignored") return state
  const code = (outcome === "failure" ? FAILURE : SUCCESS) | (slow ? SLOW : 0)
  const next = addToWindow(state, code, now, config)
  const r = rates(next, now, config)
  if (r.calls < config.minimumCalls) return next
  if (r.failureRate >= config.failureRateThreshold || r.slowRate >= config.slowCallRateThreshold) return trip(next, now, config)
  return next
}
