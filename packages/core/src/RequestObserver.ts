/**
 * What a request's observer is told: the upstream attempts (with what each one was asked and
 * answered) and every decision a policy took for the request. A host that traces requests puts
 * one in the request context (`RequestContext.make({ observer })`, `@breakwater/telemetry` makes
 * them); without one — the default — a layer pays one `undefined` check at an event, never
 * anything per chunk.
 *
 * The calls are plain synchronous functions made where the layers already count and log the
 * same events; an observer must not throw and must not block.
 *
 * @since 0.4.0
 */
import type * as ChatCompletion from "./ChatCompletion.js"
import type * as ModelError from "./ModelError.js"

/**
 * An upstream attempt about to be sent.
 *
 * @since 0.4.0
 * @category models
 */
export interface AttemptInfo {
  /** The upstream's name (the transport's `name`). */
  readonly upstream: string
  /** The model requested from the upstream. */
  readonly model: string
  /** The attempt number the retry policy set (1-based). */
  readonly attempt: number
  /** Whether the attempt streams. */
  readonly stream: boolean
}

/**
 * How an upstream attempt ended.
 *
 * @since 0.4.0
 * @category models
 */
export type AttemptOutcome =
  /** It succeeded; a non-streaming call has its completion. */
  | { readonly _tag: "Success"; readonly completion: ChatCompletion.ChatCompletion | undefined }
  | { readonly _tag: "Failure"; readonly error: ModelError.ModelError }
  /** A bug (a throw on the chunk path), never the upstream's doing. */
  | { readonly _tag: "Defect"; readonly defect: unknown }
  /** Cancelled from above: a hedge that lost, a client that went away. */
  | { readonly _tag: "Interrupted" }

/**
 * Follows one upstream attempt.
 *
 * @since 0.4.0
 * @category models
 */
export interface AttemptObserver {
  /** Headers to send upstream with the attempt (a W3C `traceparent`), or none. */
  readonly headers: Readonly<Record<string, string>> | undefined
  /** The chunks of one upstream read of a streaming attempt, before the layers above see them. */
  readonly chunks: (chunks: ReadonlyArray<ChatCompletion.ChatCompletionChunk>) => void
  /** The attempt ended. Called once. */
  readonly end: (outcome: AttemptOutcome) => void
}

/**
 * A decision a policy took, as the policy's own metrics and logs name it.
 *
 * @since 0.4.0
 * @category models
 */
export type PolicyEvent =
  /** Retry: the failed `attempt` is retried after `waitMillis`. */
  | { readonly _tag: "Retry"; readonly attempt: number; readonly reason: string; readonly waitMillis: number }
  /** Retry: the failed `attempt` is not retried although it could be, for want of time or budget. */
  | { readonly _tag: "RetryRefused"; readonly attempt: number; readonly reason: string; readonly why: "deadline" | "budget" }
  /** Circuit breaker: the call was refused, the circuit for `key` is open. */
  | { readonly _tag: "BreakerRejected"; readonly key: string; readonly retryAfterMillis: number }
  /** Circuit breaker: the circuit for `key` changed state (this request's outcome moved it, or it saw the change). */
  | { readonly _tag: "BreakerTransition"; readonly key: string; readonly from: string; readonly to: string }
  /** Timeout: a time limit fired. */
  | {
    readonly _tag: "Timeout"
    readonly phase: ModelError.TimeoutPhase
    readonly upstream: string | undefined
    readonly limitMillis: number
    readonly receivedChunks: number
  }
  /** Router: a target was passed over, unavailable (its circuit breaker open). */
  | { readonly _tag: "TargetSkipped"; readonly target: string }
  /** Router: a failed target is left for the next one. */
  | { readonly _tag: "Fallback"; readonly from: string; readonly to: string; readonly reason: string }
  /** Router: a hedged second attempt was started after `delayMillis`, or won its race. */
  | { readonly _tag: "Hedge"; readonly outcome: "started" | "won"; readonly delayMillis: number | undefined }
  /**
   * Stream-resume: what it did with a broken stream. `resumed` stitched a continuation in at a
   * seam (`splice` says how, `droppedChars` the overlap trimmed); `restarted` started over
   * (nothing had reached the client); `rejected` refused a continuation; `gave_up` and
   * `terminated` ended the stream with an error.
   */
  | {
    readonly _tag: "Resume"
    readonly outcome: "resumed" | "restarted" | "rejected" | "gave_up" | "terminated"
    readonly reason: string | undefined
    readonly seam: number | undefined
    readonly splice: string | undefined
    readonly droppedChars: number | undefined
  }
  /** A reconnecting client was sent `events` journaled events it had missed. */
  | { readonly _tag: "JournalReplay"; readonly events: number; readonly lastEventId: string | undefined }

/**
 * Observes one client request. Carried by `RequestContextShape.observer`.
 *
 * @since 0.4.0
 * @category models
 */
export interface RequestObserver {
  /** An upstream attempt starts: returns what follows it, or `undefined` to leave it alone. */
  readonly attempt: (info: AttemptInfo) => AttemptObserver | undefined
  /** A policy took a decision. */
  readonly event: (event: PolicyEvent) => void
}

/**
 * One observer that tells every given observer (a trace and the status page, say). `undefined`
 * entries are skipped, so a host passes what it has; with none left it returns `undefined` and
 * the layers see no observer at all, and with one it returns that one unchanged.
 *
 * @since 0.4.0
 * @category combinators
 */
export const combine = (
  ...observers: ReadonlyArray<RequestObserver | undefined>
): RequestObserver | undefined => {
  // One observer present (or none) comes back as it is, with nothing allocated: per request, a
  // host whose other observers are off pays no more than this loop.
  let only: RequestObserver | undefined
  let count = 0
  for (const o of observers) {
    if (o !== undefined) {
      only = o
      count++
    }
  }
  if (count <= 1) return only
  const present = observers.filter((o): o is RequestObserver => o !== undefined)
  return {
    attempt: (info) => {
      const followers: Array<AttemptObserver> = []
      for (const o of present) {
        const a = o.attempt(info)
        if (a !== undefined) followers.push(a)
      }
      if (followers.length <= 1) return followers[0]
      let headers: Record<string, string> | undefined
      for (const a of followers) if (a.headers !== undefined) headers = { ...headers, ...a.headers }
      return {
        headers,
        chunks: (chunks) => {
          for (const a of followers) a.chunks(chunks)
        },
        end: (outcome) => {
          for (const a of followers) a.end(outcome)
        }
      }
    },
    event: (event) => {
      for (const o of present) o.event(event)
    }
  }
}
