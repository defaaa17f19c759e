/**
 * The default stack's policy layers in the order `GatewayBuilder` stacks them, one at a time over
 * a base model, for the in-process benches that attribute a cost per layer (`bench/layers.mjs`,
 * `bench/run-loop-steps.mjs`), and the chat fixtures they push through them.
 */
import { CircuitBreaker } from "@breakwater/circuit-breaker"
import { Retry } from "@breakwater/retry"
import { Router } from "@breakwater/router"
import { StreamResume } from "@breakwater/stream-resume"
import { AttemptTimeout, Deadline } from "@breakwater/timeout"
import { Effect } from "effect"

/** Chunk `i` of a stream (the first carries the role). */
export const chunk = (i) => ({ id: "c", object: "chat.completion.chunk", created: 1, model: "m", choices: [{ index: 0, delta: i === 0 ? { role: "assistant", content: "w0 " } : { content: `w${i} ` }, finish_reason: null }] })

/** A stream of `n` content chunks and the finishing one. */
export const chunksOf = (n) => [...Array.from({ length: n }, (_, i) => chunk(i)), { ...chunk(n), choices: [{ index: 0, delta: {}, finish_reason: "stop" }] }]

/** A non-streaming answer. */
export const completion = { id: "c", object: "chat.completion", created: 1, model: "m", choices: [{ index: 0, message: { role: "assistant", content: "hello" }, finish_reason: "stop" }] }

// Each layer wraps the stack below it; the breaker and the router share one set of breakers.
export const layers = [
  ["adapter alone", (m) => Effect.succeed(m)],
  ["+ attempt timeout", (m) => AttemptTimeout.withPolicy(m, { firstToken: "10 seconds", idle: "5 seconds" })],
  ["+ breaker", (m, breakers) => Effect.succeed(breakers.wrap("u", m))],
  ["+ router", (m, breakers) => Router.make({ strategy: "fallback", upstreams: [{ name: "u", model: m, isAvailable: (k) => breakers.isAvailable(k) }] })],
  ["+ retry", (m) => Retry.withPolicy(m, { maxRetries: 2 })],
  ["+ stream-resume", (m) => StreamResume.withPolicy(m, { maxResumes: 3 })],
  ["+ deadline", (m) => Deadline.withPolicy(m, { total: "60 seconds" })]
]

/** `base` wrapped in the first `depth + 1` entries of `layers`. */
export const stackOf = (base, depth) => Effect.scoped(Effect.gen(function*() {
  const breakers = yield* CircuitBreaker.make({})
  let m = base
  for (let i = 0; i <= depth; i++) m = yield* layers[i][1](m, breakers)
  return m
}))
