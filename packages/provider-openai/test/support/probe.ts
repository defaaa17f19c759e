/** Helpers both adapters' tests use: byte splitting and failure inspection. */
import { RequestContext } from "@breakwater/core"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import { inspect } from "node:util"

/** `wire` cut at the given points (taken modulo its length), as non-empty parts in order. */
export const splitAt = (wire: Uint8Array, cuts: ReadonlyArray<number>): Array<Uint8Array> => {
  const points = [...new Set(cuts.map((c) => c % (wire.length + 1)))].sort((a, b) => a - b)
  const parts: Array<Uint8Array> = []
  let last = 0
  for (const p of [...points, wire.length]) {
    if (p > last) parts.push(wire.subarray(last, p))
    last = p
  }
  return parts
}

/** What a failed call left behind: its error's tag and reason, and every text it could leak into. */
export interface Failure {
  readonly tag: string
  readonly reason: string | undefined
  /** The pretty cause and a deep inspection of the error (causes included). */
  readonly text: string
  /** The log lines written while it ran (the error logged at error level, as a host would). */
  readonly logs: ReadonlyArray<string>
}

/** Runs a call that must fail, with a request context and a logger capturing every level. */
export const probe = (effect: Effect.Effect<unknown, unknown>): Effect.Effect<Failure> => {
  const logs: Array<string> = []
  const logger = Logger.make(({ annotations, cause, message }) => {
    logs.push(inspect({ message, annotations: [...annotations], cause: Cause.pretty(cause) }, { depth: 8 }))
  })
  return effect.pipe(
    Effect.tapError((e) => Effect.logError("upstream call failed", e)),
    Effect.annotateLogs("request_id", "req-1"),
    Effect.provideService(RequestContext.RequestContext, RequestContext.make()),
    Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
    Logger.withMinimumLogLevel(LogLevel.All),
    Effect.exit,
    Effect.map((exit) => {
      if (Exit.isSuccess(exit)) throw new Error("the call was expected to fail")
      const error = Cause.squash(exit.cause) as { _tag: string; reason?: string }
      return {
        tag: error._tag,
        reason: error.reason,
        text: `${Cause.pretty(exit.cause)}\n${inspect(error, { depth: 8, showHidden: true })}`,
        logs
      }
    })
  )
}
