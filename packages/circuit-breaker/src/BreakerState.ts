/**
 * The state of one breaker and its transitions, as pure functions of `(state, event, now,
 * config)`. The state is plain JSON-safe data, so a shared store keeps it as it is and runs the
 * very same transitions under its compare-and-set (see `BreakerStore`): no second copy of the
 * logic exists anywhere.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import * as machine from "./internal/machine.js"

/**
 * A breaker state: `closed`, `open` or `half-open`.
 *
 * @since 0.1.0
 * @category models
 */
export type Phase = machine.Phase

/**
 * The serialisable state of one breaker: phase, generation (bumped on every phase change), the
 * sliding window (`outcomes` for a count window, one-second `buckets` for a time window), when
 * it opened and until when, consecutive trips, the probes in flight and the probe outcomes.
 *
 * @since 0.1.0
 * @category schemas
 */
export const BreakerState: Schema.Schema<machine.State> = Schema.Struct({
  phase: Schema.Literal("closed", "open", "half-open"),
  generation: Schema.Number,
  outcomes: Schema.Array(Schema.Number),
  buckets: Schema.Array(Schema.Struct({ at: Schema.Number, calls: Schema.Number, failures: Schema.Number, slow: Schema.Number })),
  openedAt: Schema.Number,
  openUntil: Schema.Number,
  trips: Schema.Number,
  probes: Schema.Array(Schema.Struct({ id: Schema.String, expiresAt: Schema.Number })),
  probeOutcomes: Schema.Array(Schema.Number)
})

/**
 * The serialisable state of one breaker.
 *
 * @since 0.1.0
 * @category models
 */
export type BreakerState = machine.State

/**
 * The state as a JSON string and back (what a shared store keeps).
 *
 * @since 0.1.0
 * @category schemas
 */
export const BreakerStateFromJson: Schema.Schema<machine.State, string> = Schema.parseJson(BreakerState)

/**
 * The state of a breaker never seen before: closed, empty window, generation 0.
 *
 * @since 0.1.0
 * @category constants
 */
export const initial: BreakerState = machine.initial

/**
 * The breaker's settings in the plain form the transitions use (durations in ms, rates in
 * percent). `CircuitBreaker` derives it from its options.
 *
 * @since 0.1.0
 * @category models
 */
export type Config = machine.Config

/**
 * What decides half-open: `all-succeed` (one failing or slow probe re-opens; `halfOpenProbes`
 * successes close) or `failure-rate` (after `halfOpenProbes` outcomes, close unless their
 * failure or slow-call rate reaches its threshold).
 *
 * @since 0.1.0
 * @category models
 */
export type HalfOpenRule = machine.HalfOpenRule

/**
 * A permission to call: a plain call (closed), a probe (half-open), or a refusal with when to
 * ask again. Calls and probes carry the generation they were granted in.
 *
 * @since 0.1.0
 * @category models
 */
export type Permit = machine.Permit

/**
 * How a call ended, for the breaker: `ignored` (cancelled, or an error that does not count)
 * only gives back a probe slot.
 *
 * @since 0.1.0
 * @category models
 */
export type Outcome = machine.Outcome

/**
 * An input of the state machine: ask for a permit, or record a call's outcome.
 *
 * @since 0.1.0
 * @category models
 */
export type Event = machine.Event

/**
 * Asks for permission to call at `now` (an open breaker whose time is up turns half-open).
 *
 * @since 0.1.0
 * @category transitions
 */
export const acquire: (state: BreakerState, probeId: string, now: number, config: Config) => readonly [Permit, BreakerState] =
  machine.acquire

/**
 * Records the outcome of a call made under a permit (`slow`: it took at least the slow-call
 * duration). Permits of an earlier generation change nothing.
 *
 * @since 0.1.0
 * @category transitions
 */
export const record: (
  state: BreakerState,
  permit: Permit,
  outcome: Outcome,
  slow: boolean,
  now: number,
  config: Config
) => BreakerState = machine.record

/**
 * The whole machine as one pure transition: the permit (for `Acquire`) and the next state.
 *
 * @since 0.1.0
 * @category transitions
 */
export const transition: (
  state: BreakerState,
  event: Event,
  now: number,
  config: Config
) => readonly [Permit | undefined, BreakerState] = machine.transition

/**
 * The phase at `now`: an open breaker whose open duration has passed reads as half-open.
 *
 * @since 0.1.0
 * @category getters
 */
export const phaseAt: (state: BreakerState, now: number) => Phase = machine.phaseAt

/**
 * The calls in the window at `now` and their failure and slow-call rates (percent).
 *
 * @since 0.1.0
 * @category getters
 */
export const rates: (
  state: BreakerState,
  now: number,
  config: Config
) => { readonly calls: number; readonly failureRate: number; readonly slowRate: number } = machine.rates
