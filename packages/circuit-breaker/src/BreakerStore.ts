/**
 * Where breaker state lives: a versioned value per key with an atomic compare-and-set. The
 * breaker's logic is the pure `BreakerState.transition`, applied through `modify` (read value
 * and version, apply the function, write only if the version is unchanged, else try again with
 * what is stored). A shared store (Redis) implements just `get` and `compareAndSet` (one small
 * Lua script: compare the version field, write value, version + 1 and expiry), and every
 * instance runs the same transitions: that is what makes the half-open probe limit hold
 * fleet-wide and a trip visible to every instance.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import type { BreakerState } from "./BreakerState.js"
import * as machine from "./internal/machine.js"

/**
 * A state with its version. An unknown (or expired) key reads as the initial state at version 0.
 *
 * @since 0.1.0
 * @category models
 */
export interface Versioned {
  readonly state: BreakerState
  readonly version: number
}

/**
 * What a compare-and-set did: wrote (the new version is `expectedVersion + 1`), or found
 * another version and wrote nothing (`current` is what is stored, so the caller can try again
 * without another read).
 *
 * @since 0.1.0
 * @category models
 */
export type CompareAndSetResult =
  | { readonly _tag: "Written"; readonly version: number }
  | { readonly _tag: "Conflict"; readonly current: Versioned }

/**
 * The store failed (connection lost, a stored value that does not decode, endless contention).
 * A breaker whose store fails falls back to its local view: it keeps refusing while it knows
 * the breaker is open and lets calls through otherwise.
 *
 * @since 0.1.0
 * @category errors
 */
export class BreakerStoreError extends Data.TaggedError("BreakerStoreError")<{
  readonly message: string
  readonly cause?: unknown
}> {}

/**
 * A breaker state store.
 *
 * @since 0.1.0
 * @category models
 */
export interface BreakerStore {
  /** The state of `key` and its version (`{ state: initial, version: 0 }` when unknown). */
  readonly get: (key: string) => Effect.Effect<Versioned, BreakerStoreError>
  /**
   * Atomically: when the stored version of `key` is `expectedVersion` (0: absent), stores `next`
   * as version `expectedVersion + 1` with an expiry of `ttlMillis` from now (a shared store
   * must expire untouched keys; memory may keep them); otherwise writes nothing and returns
   * what is stored.
   */
  readonly compareAndSet: (
    key: string,
    expectedVersion: number,
    next: BreakerState,
    ttlMillis: number
  ) => Effect.Effect<CompareAndSetResult, BreakerStoreError>
  /**
   * `modify` done synchronously, for a store whose operations are (the memory store): what the
   * breaker uses on every call when present. Absent where the store is remote (Redis).
   */
  readonly modifyNow?: (<A>(
    key: string,
    f: (state: BreakerState) => readonly [A, BreakerState],
    ttlMillis: number
  ) => readonly [A, BreakerState]) | undefined
}

/**
 * The breaker state store tag. Without one in context, each breaker keeps its state in memory.
 *
 * @since 0.1.0
 * @category tags
 */
export const BreakerStore: Context.Tag<BreakerStore, BreakerStore> = Context.GenericTag<BreakerStore>("@breakwater/circuit-breaker/BreakerStore")

/**
 * The former name of the `BreakerStore` tag.
 *
 * @deprecated Use `BreakerStore` (Effect's convention: the tag is named like its service).
 * @since 0.1.0
 * @category tags
 */
export const BreakerStoreTag: Context.Tag<BreakerStore, BreakerStore> = BreakerStore

/**
 * @deprecated Use `BreakerStore`.
 * @since 0.1.0
 * @category tags
 */
export type BreakerStoreTag = BreakerStore

/** A conflict storm this long means something is wrong with the store, not bad luck. */
const MAX_ATTEMPTS = 64

/**
 * Atomically replaces the state of `key` with the second element of `f(state)` and returns
 * `f`'s first element with the state now stored. `f` must be pure: it runs again on a conflict.
 * When `f` returns the very state it was given, nothing is written.
 *
 * @since 0.1.0
 * @category combinators
 */
export const modify: {
  <A>(
    key: string,
    f: (state: BreakerState) => readonly [A, BreakerState],
    ttlMillis: number
  ): (store: BreakerStore) => Effect.Effect<readonly [A, BreakerState], BreakerStoreError>
  <A>(
    store: BreakerStore,
    key: string,
    f: (state: BreakerState) => readonly [A, BreakerState],
    ttlMillis: number
  ): Effect.Effect<readonly [A, BreakerState], BreakerStoreError>
} = dual(4, <A>(
  store: BreakerStore,
  key: string,
  f: (state: BreakerState) => readonly [A, BreakerState],
  ttlMillis: number
): Effect.Effect<readonly [A, BreakerState], BreakerStoreError> => {
  const attempt = (current: Versioned, n: number): Effect.Effect<readonly [A, BreakerState], BreakerStoreError> => {
    const [a, next] = f(current.state)
    if (next === current.state) return Effect.succeed([a, next] as const)
    return Effect.flatMap(store.compareAndSet(key, current.version, next, ttlMillis), (result) => {
      if (result._tag === "Written") return Effect.succeed([a, next] as const)
      if (n + 1 >= MAX_ATTEMPTS) {
        return Effect.fail(new BreakerStoreError({ message: `breaker state of ${key}: ${MAX_ATTEMPTS} conflicting writes in a row` }))
      }
      return attempt(result.current, n + 1)
    })
  }
  return Effect.flatMap(store.get(key), (current) => attempt(current, 0))
})

/**
 * A store in process memory. Its operations are synchronous, so each is atomic among fibers;
 * keys do not expire (they are upstreams: few and long-lived).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<BreakerStore> = Effect.sync(() => {
  const entries = new Map<string, Versioned>()
  const absent: Versioned = { state: machine.initial, version: 0 }
  return {
    modifyNow: (key, f) => {
      const current = entries.get(key) ?? absent
      const [a, next] = f(current.state)
      if (next !== current.state) entries.set(key, { state: next, version: current.version + 1 })
      return [a, next] as const
    },
    get: (key) => Effect.sync(() => entries.get(key) ?? absent),
    compareAndSet: (key, expectedVersion, next, _ttlMillis) =>
      Effect.sync((): CompareAndSetResult => {
        const current = entries.get(key) ?? absent
        if (current.version !== expectedVersion) return { _tag: "Conflict", current }
        const version = expectedVersion + 1
        entries.set(key, { state: next, version })
        return { _tag: "Written", version }
      })
  }
})

/**
 * The in-memory store as a layer (to share one store among several breaker sets of a process).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<BreakerStoreTag> = Layer.effect(BreakerStoreTag, makeMemory)
