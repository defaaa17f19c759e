/**
 * The requests in flight: tracking (and the in-flight gauge), each key's concurrency share, a
 * journaled generation that outlives its client (detach), and the graceful shutdown.
 */
import { InFlightSet } from "@breakwater/core"
import type { Gateway } from "@breakwater/gateway"
import { ClientApi, StreamReconnect } from "@breakwater/gateway"
import * as FiberId from "effect/FiberId"
import type * as ManagedRuntime from "effect/ManagedRuntime"
import * as Metric from "effect/Metric"
import type * as http from "node:http"
import type { Exchange } from "./exchange.js"
import type { Host } from "./host.js"

const inflightGauge = Metric.gauge("breakwater_http_inflight_requests", { description: "Requests being served" })

export interface Lifecycle {
  /** Requests in flight (tracked ones: those that run work); not a `Set`: see `InFlightSet`. */
  readonly active: InFlightSet.InFlightSet<Exchange>
  /** Generations running per client key (for the per-key concurrency share). */
  readonly perKey: Map<string, number>
  /** Journaled generations running on this instance, by stream id (for the cancel endpoint). */
  readonly running: Map<string, Running>
  /** True once shutdown began: new work is refused. */
  draining: boolean
}

/**
 * A running generation's entry, emptied when it ends: a `Map` churned by every stream leaves its
 * rebuilt tables behind in the old generation, still pointing at what was in them, and a young
 * collection keeps alive whatever those point to (a finished request's whole exchange, but for
 * this holder).
 */
export interface Running {
  exchange: Exchange | undefined
}

/** Registers a journaled generation under its stream id; `stopRunning` when it ends. */
export const startRunning = (l: Lifecycle, streamId: string, x: Exchange): Running => {
  const running: Running = { exchange: x }
  l.running.set(streamId, running)
  return running
}

/** Unregisters a generation `startRunning` registered. */
export const stopRunning = (l: Lifecycle, streamId: string, running: Running): void => {
  running.exchange = undefined
  l.running.delete(streamId)
}

export const make = (): Lifecycle => ({ active: InFlightSet.make(), perKey: new Map(), running: new Map(), draining: false })

/** The 503 for new work once shutdown began. */
export const shuttingDown: ClientApi.ApiError = ClientApi.apiError({ status: 503, message: "the gateway is shutting down", type: "server_error", code: "shutting_down", shouldRetry: true })

/** The 503 at the server's concurrency limit. */
export const gatewayBusy: ClientApi.ApiError = ClientApi.apiError({
  status: 503,
  message: "the gateway is at its concurrency limit",
  type: "server_error",
  code: "gateway_busy",
  retryAfterSeconds: 1,
  shouldRetry: true
})

/** Stops a request's work. */
export const interrupt = (x: Exchange): void => {
  x.fiber?.unsafeInterruptAsFork(FiberId.none)
}

export const release = (l: Lifecycle, x: Exchange): void => {
  x.undetach?.()
  x.undetach = undefined
  if (x.share !== undefined) {
    const n = (l.perKey.get(x.share) ?? 1) - 1
    if (n <= 0) l.perKey.delete(x.share)
    else l.perKey.set(x.share, n)
    x.share = undefined
  }
  if (x.slot !== undefined && l.active.remove(x.slot)) inflightGauge.unsafeUpdate(l.active.size, [])
  x.slot = undefined
}

/** Registers a request as in flight; a client that leaves early stops its work (unless it detaches). */
export const track = (l: Lifecycle, x: Exchange): void => {
  x.slot = l.active.add(x)
  inflightGauge.unsafeUpdate(l.active.size, [])
  const res = x.res
  res.once("close", () => {
    if (!res.writableFinished) {
      if (x.onClientGone?.() === true) return
      interrupt(x)
    }
    release(l, x)
  })
}

/**
 * Takes a slot of the key's concurrency share for a new generation; the error when the share is
 * full. Replays of a journaled stream take none: its generation already holds one.
 */
export const claim = (l: Lifecycle, gateway: Gateway.Gateway, x: Exchange, key: Gateway.ClientKey | undefined): ClientApi.ApiError | undefined => {
  const share = ClientApi.concurrencyShareOf(gateway, key)
  if (share === undefined || key === undefined) return undefined
  const n = l.perKey.get(key.name) ?? 0
  if (n >= share) return ClientApi.keyBusy(share)
  l.perKey.set(key.name, n + 1)
  x.share = key.name
  return undefined
}

/**
 * Lets a journaled generation go on after its client left, for the server's `detachGraceMs`;
 * then it is cut, unless a reader reconnected (checked again a grace later while one follows).
 */
export const detach = (h: Host, x: Exchange, journaled: StreamReconnect.Journaled): void => {
  x.undetach = StreamReconnect.detach(h.runtime, journaled, h.settings.detachGraceMs, () => interrupt(x))
}

/** Stops accepting, lets running requests finish for up to `graceMs`, then cuts the rest. */
export const shutdown = (
  l: Lifecycle,
  server: http.Server,
  runtime: ManagedRuntime.ManagedRuntime<never, never>,
  graceMs: number
): Promise<void> =>
  new Promise<void>((done) => {
    l.draining = true
    server.close()
    server.closeIdleConnections()
    const cut = () => {
      for (const x of l.active) {
        interrupt(x)
        x.res.destroy()
      }
    }
    const timer = setTimeout(cut, graceMs)
    const check = () => {
      if (l.active.size > 0) return void setTimeout(check, 20)
      clearTimeout(timer)
      server.closeAllConnections()
      void runtime.dispose().then(done, done)
    }
    check()
  })
