/**
 * `POST /v1/messages/count_tokens`: admitted as a Messages request (Anthropic's auth headers and
 * error shape), then proxied to the Anthropic upstream that starts the model's route, or the 400
 * saying that none does.
 */
import { RequestContext } from "@breakwater/core"
import { ClientApi, RequestPipeline } from "@breakwater/gateway"
import * as Cause from "effect/Cause"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import { fail, finish, sendJson } from "./answer.js"
import * as Body from "./body.js"
import { type Exchange, header } from "./exchange.js"
import type { Host } from "./host.js"
import * as Lifecycle from "./lifecycle.js"

export const countTokens = (h: Host, x: Exchange): void => {
  if (h.lifecycle.draining) return fail(h, x, Lifecycle.shuttingDown)
  const key = x.protocol!.admit(x.req.headers.authorization, header(x, "x-api-key"), header(x, "content-type"))
  if (ClientApi.isApiError(key)) return fail(h, x, key)
  Lifecycle.track(h.lifecycle, x)
  Body.readWithin(h, x, (body) => {
    const ctx = RequestContext.make({ requestId: x.requestId })
    const started = h.pipeline.startCountTokens(body, key, ctx)
    if (Either.isLeft(started)) return fail(h, x, started.left)
    const fiber = started.right
    x.fiber = fiber
    fiber.addObserver((exit) => {
      const trace = ctx.trace
      if (Exit.isSuccess(exit)) {
        if (!x.res.destroyed) sendJson(x, 200, exit.value, trace)
        return finish(h, x, 200, RequestPipeline.traceFields(trace))
      }
      if (Cause.isInterruptedOnly(exit.cause)) return finish(h, x, 499, { error: "client_closed" })
      fail(h, x, h.pipeline.failureOf(exit.cause, trace), trace)
    })
  })
}
