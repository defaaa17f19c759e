/**
 * Every Redis store over one connection, in one layer: what a gateway instance provides to share
 * its breaker state, retry budget and client-resume journal with the rest of the fleet.
 *
 * @since 0.1.0
 */
import type { BreakerStore } from "@breakwater/circuit-breaker"
import type { RetryBudget } from "@breakwater/retry"
import type { StreamJournal } from "@breakwater/stream-resume"
import * as Layer from "effect/Layer"
import * as RedisBreakerStore from "./RedisBreakerStore.js"
import * as RedisRetryBudget from "./RedisRetryBudget.js"
import * as RedisStore from "./RedisStore.js"
import * as RedisStreamJournal from "./RedisStreamJournal.js"

/**
 * The connection's options (`RedisStore.RedisOptions`) and, under `journal`, the journal's
 * (`RedisStreamJournal.RedisJournalOptions`).
 *
 * @since 0.1.0
 * @category models
 */
export type StoresOptionsInput = RedisStore.RedisOptionsInput & {
  readonly journal?: RedisStreamJournal.RedisJournalOptionsInput | undefined
}

/**
 * The services this layer provides.
 *
 * @since 0.1.0
 * @category models
 */
export type Stores =
  | RedisStore.RedisStore
  | RetryBudget.RetryBudgetStore
  | BreakerStore.BreakerStore
  | StreamJournal.StreamJournal

/**
 * One connection and the three stores over it. Never fails to build: an unreachable Redis
 * starts every store on local state.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: StoresOptionsInput): Layer.Layer<Stores> => {
  const { journal, ...connection } = options
  return Layer.mergeAll(RedisRetryBudget.layer, RedisBreakerStore.layer, RedisStreamJournal.layer(journal ?? {})).pipe(
    Layer.provideMerge(RedisStore.layer(connection))
  )
}
