/**
 * Where breaker state lives. The breaker's logic is a pure function of the state (see
 * `BreakerState`), applied through `modify`, which a store must run atomically per key: the
 * in-memory store does it synchronously; a shared store (Redis) does it as a compare-and-set
 * loop (read value and version, apply the function, write only if the version is unchanged),
 * which is what makes a fleet-wide half-open probe limit hold.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as machine from "./internal/machine.js"

/**
 * The serialisable state of one breaker (JSON-safe: numbers, strings, arrays).
 *
 * @since 0.1.0
 * @category models
 */
export type BreakerState = machine.State

/**
 * The state of a breaker never seen before: closed, empty window.
 *
 * @since 0.1.0
 * @category constants
 */
export const initialState: BreakerState = machine.initial

/**
 * A breaker state store.
 *
 * @since 0.1.0
 * @category models
 */
export interface BreakerStore {
  /**
   * Atomically replaces the state of `key` with `f(state)`'s second element and returns its first.
   * `f` is pure and may run more than once (on a compare-and-set conflict). `ttlMillis` bounds
   * how long an untouched key lives (a shared store expires it; memory may ignore it).
   */
  readonly modify: <A>(
    key: string,
    f: (state: BreakerState) => readonly [A, BreakerState],
    ttlMillis: number
  ) => Effect.Effect<A>
  /** The current state of `key` (the initial state when unknown). */
  readonly get: (key: string) => Effect.Effect<BreakerState>
}

/**
 * The breaker state store tag. Without one in context, each breaker keeps its state in memory.
 *
 * @since 0.1.0
 * @category tags
 */
export class BreakerStoreTag extends Context.Tag("@breakwater/circuit-breaker/BreakerStore")<BreakerStoreTag, BreakerStore>() {}

/**
 * A store in process memory: `modify` runs synchronously, so it is atomic among fibers.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<BreakerStore> = Effect.sync(() => {
  const states = new Map<string, BreakerState>()
  return {
    modify: (key, f) =>
      Effect.sync(() => {
        const [a, next] = f(states.get(key) ?? machine.initial)
        states.set(key, next)
        return a
      }),
    get: (key) => Effect.sync(() => states.get(key) ?? machine.initial)
  }
})

/**
 * The in-memory store as a layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<BreakerStoreTag> = Layer.effect(BreakerStoreTag, makeMemory)
