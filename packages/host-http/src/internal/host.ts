/** What every part of the server shares, built once per server. */
import type { Gateway, RequestPipeline } from "@breakwater/gateway"
import type { StreamJournal } from "@breakwater/stream-resume"
import type * as ManagedRuntime from "effect/ManagedRuntime"
import type * as Lifecycle from "./lifecycle.js"
import type { StatusPage } from "./statusPage.js"

export interface Host {
  readonly gateway: Gateway.Gateway
  readonly settings: Gateway.ServerSettings
  readonly pipeline: RequestPipeline.RequestPipeline
  readonly runtime: ManagedRuntime.ManagedRuntime<never, never>
  /** Where streams are journaled for reconnects; undefined when journaling is off. */
  readonly journal: StreamJournal.StreamJournal | undefined
  /** The `retry:` hint of a journaled stream, in ms. */
  readonly retryMs: number
  /** The host the server listens on, as configured (for the keyless `Host` check). */
  readonly listenHost: string
  readonly lifecycle: Lifecycle.Lifecycle
  /** The live status page (`/status`); undefined when turned off. */
  readonly status: StatusPage | undefined
}
