import { ModelError } from "@breakwater/core"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

/**
 * A per-upstream concurrency limit with a bounded queue. `pending` counts the calls holding a
 * permit plus those waiting for one, so admission is one comparison; beyond the queue a call
 * fails at once with `CapacityExceeded` (which the router treats as a reason to move on).
 */
export class Bulkhead {
  private pending = 0
  private readonly semaphore: Effect.Semaphore
  private readonly limit: number
  constructor(
    readonly upstream: string,
    readonly maxConcurrent: number,
    readonly maxQueue: number
  ) {
    this.semaphore = Effect.unsafeMakeSemaphore(maxConcurrent)
    this.limit = maxConcurrent + maxQueue
  }

  private reject(): ModelError.CapacityExceeded {
    return new ModelError.CapacityExceeded({
      message: `upstream "${this.upstream}" is at its concurrency limit (${this.maxConcurrent} in flight, ${this.maxQueue} queued)`,
      upstream: this.upstream
    })
  }

  /** Runs an effect under a permit. */
  run<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | ModelError.CapacityExceeded, R> {
    return Effect.suspend((): Effect.Effect<A, E | ModelError.CapacityExceeded, R> => {
      if (this.pending >= this.limit) return Effect.fail(this.reject())
      this.pending++
      return Effect.ensuring(
        this.semaphore.withPermits(1)(self),
        Effect.sync(() => {
          this.pending--
        })
      )
    })
  }

  /** Takes a permit for the life of the scope (a stream's). */
  readonly acquire: Effect.Effect<void, ModelError.CapacityExceeded, Scope.Scope> = Effect.suspend(() => {
    if (this.pending >= this.limit) return Effect.fail(this.reject())
    this.pending++
    return Effect.zipRight(
      Effect.addFinalizer(() =>
        Effect.sync(() => {
          this.pending--
        })
      ),
      // Waiting for a permit stays interruptible; once taken, its release is registered before
      // anything can interrupt us.
      Effect.uninterruptibleMask((restore) =>
        Effect.zipRight(restore(this.semaphore.take(1)), Effect.addFinalizer(() => this.semaphore.release(1)))
      )
    )
  })
}
