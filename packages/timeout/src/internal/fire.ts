import { ModelError, RequestContext, TaggedMetric } from "@breakwater/core"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"

export const timeoutsTotal = Metric.counter("breakwater_timeouts_total", {
  description: "Time limits that fired, by phase (headers, first-token, idle, total)",
  incremental: true
})

const byPhase = TaggedMetric.forValues(timeoutsTotal, "phase", ["connect", "headers", "first-token", "idle", "total"] satisfies ReadonlyArray<ModelError.TimeoutPhase>)

const describe: Record<ModelError.TimeoutPhase, string> = {
  connect: "no connection",
  headers: "no response",
  "first-token": "no first token",
  idle: "no chunk",
  total: "the request's deadline passed"
}

/**
 * The error of a time limit that fired: a `Timeout` with its phase, or, once chunks were
 * received (and for any phase but `total`), a `StreamInterrupted` that says how many, so that
 * stream-resume can continue from there.
 */
export const timeoutError = (
  ctx: RequestContext.RequestContextShape,
  phase: ModelError.TimeoutPhase,
  millis: number,
  receivedChunks: number
): ModelError.ModelError => {
  const upstream = ctx.upstream
  const message = phase === "total"
    ? `${describe.total} (${millis} ms)`
    : `${upstream ?? "upstream"}: ${describe[phase]} within ${millis} ms (${phase} timeout)`
  const timeout = new ModelError.Timeout({ message, upstream, phase })
  if (phase === "total" || receivedChunks === 0) return timeout
  return new ModelError.StreamInterrupted({ message, upstream, reason: "idle-timeout", receivedChunks, cause: timeout })
}

/** Counts, logs and fails with the error of a time limit that fired. */
export const fire = (
  ctx: RequestContext.RequestContextShape,
  phase: ModelError.TimeoutPhase,
  millis: number,
  receivedChunks: number
): Effect.Effect<never, ModelError.ModelError> =>
  Effect.zipRight(
    Effect.zipRight(
      Effect.sync(() => {
        byPhase[phase](1)
        ctx.observer?.event({ _tag: "Timeout", phase, upstream: ctx.upstream, limitMillis: millis, receivedChunks })
      }),
      Effect.annotateLogs(Effect.logWarning("timed out"), {
        request_id: ctx.requestId,
        attempt: ctx.attempt,
        upstream: ctx.upstream ?? "",
        phase,
        limit_ms: millis,
        received_chunks: receivedChunks
      })
    ),
    Effect.fail(timeoutError(ctx, phase, millis, receivedChunks))
  )
