/**
 * The breaker's state machine as pure functions over a plain, JSON-safe state, so any store (in
 * memory, or Redis through a compare-and-set) applies exactly the same logic atomically.
 *
 * Every phase change bumps `generation`; a permit carries the generation it was granted in, so
 * the outcome of a call that ends after the breaker moved on (a slow call admitted before a trip,
 * a probe of an earlier half-open episode) changes nothing.
 */

export type Phase = "closed" | "open" | "half-open"

/** Outcome codes in a window (bit 0: failure, bit 1: slow). */
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

export interface Probe {
  readonly id: string
  /** When its slot is forfeit: a probe that has not reported by then counts as failed. */
  readonly expiresAt: number
}

export interface State {
  readonly phase: Phase
  /** Bumped on every phase change. */
  readonly generation: number
  /** Count window: the last outcomes, oldest first (codes above). */
  readonly outcomes: ReadonlyArray<number>
  /** Time window: per-second buckets, oldest first. */
  readonly buckets: ReadonlyArray<Bucket>
  /** When the breaker opened last (ms), and until when it stays open. */
  readonly openedAt: number
  readonly openUntil: number
  /** Consecutive trips without a close in between: the open duration grows with them. */
  readonly trips: number
  /** Half-open: probes in flight. */
  readonly probes: ReadonlyArray<Probe>
  /** Half-open: outcomes of the probes that reported (codes above). */
  readonly probeOutcomes: ReadonlyArray<number>
}

export type HalfOpenRule = "all-succeed" | "failure-rate"

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
  /** Probes allowed in half-open (at once, and in all before the decision). */
  readonly halfOpenProbes: number
  readonly halfOpenRule: HalfOpenRule
  /** How long a probe may hold its slot. */
  readonly probeTimeoutMillis: number
}

export const initial: State = {
  phase: "closed",
  generation: 0,
  outcomes: [],
  buckets: [],
  openedAt: 0,
  openUntil: 0,
  trips: 0,
  probes: [],
  probeOutcomes: []
}

export const BUCKET_MILLIS = 1_000

export type Permit =
  | { readonly _tag: "Call"; readonly generation: number }
  | { readonly _tag: "Probe"; readonly generation: number; readonly id: string }
  | { readonly _tag: "Rejected"; readonly retryAfterMillis: number }

export type Outcome = "success" | "failure" | "ignored"

export type Event =
  | { readonly _tag: "Acquire"; readonly probeId: string }
  | { readonly _tag: "Record"; readonly permit: Permit; readonly outcome: Outcome; readonly slow: boolean }

/** An open breaker whose time is up is half-open (no store write needed to see it). */
export const phaseAt = (state: State, now: number): Phase =>
  state.phase === "open" && now >= state.openUntil ? "half-open" : state.phase

/** The open duration of the `trips`-th consecutive trip. */
export const openMillisFor = (trips: number, config: Config): number =>
  Math.min(config.maxOpenMillis, config.openMillis * Math.pow(config.openMultiplier, Math.max(0, trips - 1)))

const trip = (state: State, now: number, config: Config): State => {
  const trips = state.trips + 1
  return {
    ...initial,
    phase: "open",
    generation: state.generation + 1,
    openedAt: now,
    openUntil: now + openMillisFor(trips, config),
    trips
  }
}

const close = (state: State): State => ({ ...initial, generation: state.generation + 1 })

/** While probes are out, a refused caller may ask again soon: their outcome decides shortly. */
const probeBusyMillis = (config: Config) => Math.min(1_000, config.openMillis)

/** Asks for permission to call; `probeId` names the probe if one is granted. */
export const acquire = (state: State, probeId: string, now: number, config: Config): readonly [Permit, State] => {
  let current = state
  if (current.phase === "open") {
    if (now < current.openUntil) return [{ _tag: "Rejected", retryAfterMillis: current.openUntil - now }, current]
    current = { ...current, phase: "half-open", generation: current.generation + 1, probes: [], probeOutcomes: [] }
  }
  if (current.phase === "half-open") {
    if (current.probes.some((p) => p.expiresAt <= now)) {
      // A probe that never reported (its caller hung, or its instance died) is a failed probe.
      const opened = trip(current, now, config)
      return [{ _tag: "Rejected", retryAfterMillis: opened.openUntil - now }, opened]
    }
    if (current.probes.length + current.probeOutcomes.length >= config.halfOpenProbes) {
      return [{ _tag: "Rejected", retryAfterMillis: probeBusyMillis(config) }, current]
    }
    const probes = [...current.probes, { id: probeId, expiresAt: now + config.probeTimeoutMillis }]
    return [{ _tag: "Probe", generation: current.generation, id: probeId }, { ...current, probes }]
  }
  return [{ _tag: "Call", generation: current.generation }, current]
}

interface Rates {
  readonly calls: number
  readonly failureRate: number
  readonly slowRate: number
}

const ratesOf = (codes: ReadonlyArray<number>): Rates => {
  let failures = 0
  let slow = 0
  for (const o of codes) {
    if ((o & FAILURE) !== 0) failures++
    if ((o & SLOW) !== 0) slow++
  }
  const calls = codes.length
  return { calls, failureRate: calls === 0 ? 0 : (failures * 100) / calls, slowRate: calls === 0 ? 0 : (slow * 100) / calls }
}

/** The calls, failure rate and slow-call rate (percent) of the window at `now`. */
export const rates = (state: State, now: number, config: Config): Rates => {
  if (config.window.kind === "count") return ratesOf(state.outcomes)
  let calls = 0
  let failures = 0
  let slow = 0
  const from = now - config.window.millis
  for (const b of state.buckets) {
    if (b.at + BUCKET_MILLIS <= from) continue
    calls += b.calls
    failures += b.failures
    slow += b.slow
  }
  return { calls, failureRate: calls === 0 ? 0 : (failures * 100) / calls, slowRate: calls === 0 ? 0 : (slow * 100) / calls }
}

// The state with a new window, written out: it runs on every call, and a spread copy of the
// state went to V8's slow object copy there (~2,000 instructions a call).
const withWindow = (state: State, outcomes: ReadonlyArray<number>, buckets: ReadonlyArray<Bucket>): State => ({
  phase: state.phase,
  generation: state.generation,
  outcomes,
  buckets,
  openedAt: state.openedAt,
  openUntil: state.openUntil,
  trips: state.trips,
  probes: state.probes,
  probeOutcomes: state.probeOutcomes
})

const addToWindow = (state: State, code: number, now: number, config: Config): State => {
  if (config.window.kind === "count") {
    const size = config.window.size
    const outcomes = state.outcomes.slice(state.outcomes.length >= size ? state.outcomes.length - size + 1 : 0)
    outcomes.push(code)
    return withWindow(state, outcomes, state.buckets)
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
  kept.push(bucket)
  return withWindow(state, state.outcomes, kept)
}

const over = (r: Rates, config: Config) =>
  r.failureRate >= config.failureRateThreshold || r.slowRate >= config.slowCallRateThreshold

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
  if (permit._tag === "Rejected" || permit.generation !== state.generation) return state
  const code = (outcome === "failure" ? FAILURE : SUCCESS) | (slow ? SLOW : 0)
  if (permit._tag === "Probe") {
    if (state.phase !== "half-open") return state
    const index = state.probes.findIndex((p) => p.id === permit.id)
    if (index < 0) return state
    const probes = state.probes.filter((_, i) => i !== index)
    if (outcome === "ignored") return { ...state, probes }
    const probeOutcomes = [...state.probeOutcomes, code]
    if (config.halfOpenRule === "all-succeed") {
      if (code !== SUCCESS) return trip(state, now, config)
      return probeOutcomes.length >= config.halfOpenProbes ? close(state) : { ...state, probes, probeOutcomes }
    }
    if (probeOutcomes.length < config.halfOpenProbes) return { ...state, probes, probeOutcomes }
    return over(ratesOf(probeOutcomes), config) ? trip(state, now, config) : close(state)
  }
  if (state.phase !== "closed" || outcome === "ignored") return state
  const next = addToWindow(state, code, now, config)
  const r = rates(next, now, config)
  if (r.calls < config.minimumCalls) return next
  return over(r, config) ? trip(next, now, config) : next
}

/** The whole machine as one transition: the permit (for `Acquire`) and the next state. */
export const transition = (
  state: State,
  event: Event,
  now: number,
  config: Config
): readonly [Permit | undefined, State] =>
  event._tag === "Acquire"
    ? acquire(state, event.probeId, now, config)
    : [undefined, record(state, event.permit, event.outcome, event.slow, now, config)]
