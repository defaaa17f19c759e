/**
 * The status board: what a live status page shows, recorded as requests run. A host begins a
 * record per client request (`begin`), puts it in the request context as the request's observer
 * (combined with others by `RequestObserver.combine`), and ends it with the answer's status. The
 * board keeps, in fixed memory, per-second counters (requests, errors, retries, fallbacks,
 * resumes, breaker rejections, timeouts), latency and time-to-first-token histograms per time
 * slot, breaker transitions and the last requests with their attempt trail.
 *
 * Recording is synchronous array updates: no Effect, no timer, nothing between requests. The
 * snapshot is built only when a viewer asks for one.
 *
 * @since 0.4.0
 */
import type { RequestObserver } from "@breakwater/core"
import * as internal from "./internal/statusBoard.js"

/**
 * Bounds of a board; the defaults are in this one place.
 *
 * @since 0.4.0
 * @category models
 */
export interface Options {
  /** Per-second counters kept (default 600: ten minutes). */
  readonly historySeconds?: number | undefined
  /** Length of a latency histogram slot, in seconds (default 10). */
  readonly slotSeconds?: number | undefined
  /** The window of the rates and percentiles the page headlines, in seconds (default 300). */
  readonly windowSeconds?: number | undefined
  /** Requests kept with their trail (default 50). */
  readonly recentRequests?: number | undefined
  /** Breaker transitions kept (default 40). */
  readonly transitions?: number | undefined
  /** The clock, in ms since the epoch (default `Date.now`; tests pass their own). */
  readonly clock?: (() => number) | undefined
}

/**
 * One client request being recorded: its observer, and `end` once it was answered.
 *
 * @since 0.4.0
 * @category models
 */
export interface RequestRecord extends RequestObserver.RequestObserver {
  /** The request was answered with `status` (an error's `code` when it failed). Only the first call counts. */
  readonly end: (status: number, errorCode?: string) => void
}

/**
 * An upstream attempt in a request's trail (`at` and `ms` in ms from the request's start).
 *
 * @since 0.4.0
 * @category models
 */
export interface AttemptEntry {
  readonly _tag: "Attempt"
  readonly at: number
  readonly upstream: string
  readonly model: string
  readonly attempt: number
  readonly ms: number | undefined
  readonly outcome: "running" | "ok" | "failed" | "defect" | "interrupted"
  /** The error's tag (with the timeout phase or the stream interruption reason). */
  readonly error: string | undefined
}

/**
 * One entry of a request's trail: an attempt, or a policy decision as the observer was told it.
 *
 * @since 0.4.0
 * @category models
 */
export type TrailEntry = AttemptEntry | (RequestObserver.PolicyEvent & { readonly at: number })

/**
 * A finished request, as the recent-requests list shows it.
 *
 * @since 0.4.0
 * @category models
 */
export interface RecentRequest {
  /** Increases by one per finished request. */
  readonly seq: number
  readonly id: string
  readonly model: string
  readonly stream: boolean
  /** When it began, ms since the epoch. */
  readonly at: number
  readonly status: number
  readonly latencyMs: number
  /** Streams: time to the first upstream chunk. */
  readonly ttfbMs: number | undefined
  readonly error: string | undefined
  readonly trail: ReadonlyArray<TrailEntry>
  /** Trail entries left out (the trail is bounded). */
  readonly dropped: number
}

/**
 * A circuit breaker changing state (`key` is the upstream, or `upstream@model`).
 *
 * @since 0.4.0
 * @category models
 */
export interface Transition {
  readonly at: number
  readonly key: string
  readonly from: string
  readonly to: string
}

/**
 * Latency percentiles in ms (`null` without samples).
 *
 * @since 0.4.0
 * @category models
 */
export interface Percentiles {
  readonly count: number
  readonly p50: number | null
  readonly p95: number | null
  readonly p99: number | null
}

/**
 * The counters of a run of seconds or of the window.
 *
 * @since 0.4.0
 * @category models
 */
export interface Counts<A> {
  readonly requests: A
  /** Requests answered with a 5xx. */
  readonly errors: A
  readonly retries: A
  readonly fallbacks: A
  /** Broken streams resumed or restarted. */
  readonly resumes: A
  /** Calls an open breaker refused or the router passed over. */
  readonly rejections: A
  readonly timeouts: A
}

/**
 * What the board holds, from a point of view: everything, or the recent part for an update.
 *
 * @since 0.4.0
 * @category models
 */
export interface Snapshot {
  readonly now: number
  /** The `seq` of the last finished request. */
  readonly seq: number
  readonly inflight: number
  /** Per-second counts, the first at `start` (ms since the epoch), the last the current second. */
  readonly seconds: { readonly start: number } & Counts<ReadonlyArray<number>>
  /** Percentiles per slot, the last the current slot. */
  readonly slots: {
    readonly slotMs: number
    readonly starts: ReadonlyArray<number>
    readonly latency: ReadonlyArray<Percentiles>
    readonly ttfb: ReadonlyArray<Percentiles>
  }
  /** Totals and percentiles over the window (`seconds` long). */
  readonly window: { readonly seconds: number; readonly totals: Counts<number>; readonly latency: Percentiles; readonly ttfb: Percentiles }
  readonly transitions: ReadonlyArray<Transition>
  /** Recent finished requests, oldest first. */
  readonly requests: ReadonlyArray<RecentRequest>
}

/**
 * How much of the history a snapshot carries (default: all of it).
 *
 * @since 0.4.0
 * @category models
 */
export interface SnapshotOptions {
  /** Per-second counts to include, ending with the current second. */
  readonly seconds?: number | undefined
  /** Latency slots to include, ending with the current slot. */
  readonly slots?: number | undefined
  /** Only the requests finished after this `seq`. */
  readonly sinceSeq?: number | undefined
}

/**
 * A status board.
 *
 * @since 0.4.0
 * @category models
 */
export interface StatusBoard {
  /** Starts recording a client request. */
  readonly begin: (requestId: string, model: string, stream: boolean) => RequestRecord
  readonly snapshot: (options?: SnapshotOptions) => Snapshot
}

/**
 * Makes a status board.
 *
 * @since 0.4.0
 * @category constructors
 */
export const make = (options: Options = {}): StatusBoard => new internal.Board(options)
