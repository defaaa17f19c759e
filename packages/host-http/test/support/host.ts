/** What the host's test files share: server settings, a gateway around a model, servers closed after each test. */
import type { LanguageModel } from "@breakwater/core"
import type { Gateway } from "@breakwater/gateway"
import type { HttpHost } from "@breakwater/host-http"
import { afterEach } from "@effect/vitest"
import { Effect } from "effect"

export const settings: Gateway.ServerSettings = {
  host: "127.0.0.1",
  port: 0,
  maxBodyBytes: 64 * 1024,
  maxHeaderBytes: 8 * 1024,
  maxConcurrentRequests: 64,
  requestTimeoutMs: 5_000,
  shutdownGraceMs: 2_000,
  streamCommitTimeoutMs: 5_000,
  detachGraceMs: 0
}

/** A gateway serving `model` for "gpt-test" and "gpt-other", no keys, ready; `over` and `server` replace fields. */
export const gatewayOf = (
  model: LanguageModel.Service,
  over: Partial<Gateway.Gateway> = {},
  server: Partial<Gateway.ServerSettings> = {}
): Gateway.Gateway => ({
  model,
  models: ["gpt-test", "gpt-other"],
  keys: [],
  server: { ...settings, ...server },
  health: Effect.succeed({ ready: true, upstreams: [], routes: [] }),
  secrets: [],
  ...over
})

/** The servers a test file starts (push them here); each is closed after its test. */
export const closedAfterEach = (): Array<HttpHost.RunningServer> => {
  const servers: Array<HttpHost.RunningServer> = []
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close(100)))
  })
  return servers
}
