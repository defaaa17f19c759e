/**
 * The reference server's config for the benchmarks: one mock upstream, every policy at its
 * default. Server and pool sizes are raised so `streams` held streams fit.
 */
export const gatewayConfig = (upstreamUrl, streams, { telemetry = false } = {}) => ({
  server: { host: "127.0.0.1", port: 0, maxConcurrentRequests: Math.max(8192, streams * 2) },
  // Telemetry on: every request traced (spans built, batched and exported to the bench's sink).
  ...(telemetry ? { telemetry: { enabled: true } } : {}),
  upstreams: {
    mock: { provider: "openai", baseUrl: `${upstreamUrl}/v1`, models: ["bench-model"], connections: Math.max(8192, streams * 2) }
  },
  routes: {
    "bench-model": { upstreams: ["mock"] },
    // The same baseline with a 1 ms retry backoff: the retry machinery's cost without the wait.
    // Same deployment (mock's bench-model), so the same breaker sees its faults among the
    // undisturbed traffic, as a real route with a faster retry would.
    "bench-model-fast-retry": { upstreams: [{ upstream: "mock", model: "bench-model" }], retry: { baseDelay: 1, maxDelay: 1 } }
  }
})
