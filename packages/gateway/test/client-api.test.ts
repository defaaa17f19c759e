import { ModelError } from "@breakwater/core"
import { ClientApi, type Gateway, RequestPipeline, StreamReconnect } from "@breakwater/gateway"
import { FakeLanguageModel } from "@breakwater/testing"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"

describe("ClientApi.isApiError", () => {
  it("is true of the gateway's errors, made or spread, and of nothing else that has a status", () => {
    const made = [
      ClientApi.unauthorized,
      ClientApi.badRequest("no"),
      ClientApi.tooLarge(10),
      ClientApi.fromModelError(new ModelError.UpstreamUnavailable({ message: "down", upstream: "u" }), undefined, []),
      StreamReconnect.notFound,
      { ...StreamReconnect.eventsGone, message: "the stream expired while being read" },
      ClientApi.apiError({ status: 418, message: "teapot", type: "invalid_request_error", code: null })
    ]
    expect(made.map(ClientApi.isApiError)).toEqual(made.map(() => true))
    const foreign: ReadonlyArray<unknown> = [
      { status: 404 },
      { status: "active", name: "team-a" },
      // The whole shape of one, but not one of the gateway's.
      { status: 400, message: "m", type: "invalid_request_error", code: null },
      new Response(null, { status: 204 }),
      JSON.parse(JSON.stringify(ClientApi.unauthorized)),
      undefined,
      null,
      3
    ]
    expect(foreign.map(ClientApi.isApiError)).toEqual(foreign.map(() => false))
  })

  it("a client key that carries a status field of its own is a key: admitted, and its non-JSON body still refused", () => {
    const fromStore = { name: "team-a", key: Redacted.make("gw-team-a"), status: "active" }
    const key: Gateway.ClientKey = fromStore
    const gateway: Gateway.Gateway = {
      model: FakeLanguageModel.make().model,
      models: ["gpt-test"],
      keys: [key],
      server: {
        host: "127.0.0.1", port: 0, maxBodyBytes: 256, maxHeaderBytes: 8192, maxConcurrentRequests: 10,
        requestTimeoutMs: 1000, shutdownGraceMs: 1000, streamCommitTimeoutMs: 1000, detachGraceMs: 0
      },
      health: Effect.succeed({ ready: true, upstreams: [], routes: [] }),
      secrets: []
    }
    const pipeline = RequestPipeline.make(gateway, { log: () => {} })
    expect(ClientApi.isApiError(pipeline.authenticate("Bearer gw-team-a"))).toBe(false)
    expect(pipeline.admitChat("Bearer gw-team-a", "application/json")).toBe(key)
    expect(pipeline.admitChat("Bearer gw-team-a", "text/plain")).toBe(ClientApi.unsupportedMediaType)
  })
})
