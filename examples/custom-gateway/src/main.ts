/**
 * Runs the hand-composed gateway in front of two local mock upstreams (the primary fails 30% of
 * the time): `npm start -w @breakwater/example-custom-gateway`.
 */
import { HttpHost } from "@breakwater/host-http"
import { MockUpstream } from "@breakwater/testing"
import * as Effect from "effect/Effect"
import { makeGateway } from "./gateway.js"

const { Fault } = MockUpstream

const program = Effect.gen(function*() {
  const primary = yield* MockUpstream.scoped({ chunkDelayMs: 10 })
  const secondary = yield* MockUpstream.scoped({ chunkDelayMs: 10 })
  primary.chaos({ rate: 0.3, behaviors: [{ fault: Fault.Status({ status: 503 }) }, { fault: Fault.Cut({ afterChunks: 5 }) }], seed: 7 })
  const gateway = yield* makeGateway({ primary: primary.url, secondary: secondary.url })
  const running = yield* HttpHost.serve(gateway)
  process.stderr.write(`custom gateway on ${running.url}: model "assistant"\n`)
  return yield* Effect.never
})

Effect.runFork(Effect.scoped(program))
