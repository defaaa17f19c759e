/**
 * The status board's recorder: per-second counters in a ring, latency and time-to-first-token
 * histograms per time slot, breaker transitions and the last requests with their attempt trail.
 * Everything is recorded synchronously into fixed-size arrays; nothing runs between requests and
 * the snapshot is only built when a viewer asks for one.
 */
import type { RequestObserver } from "@breakwater/core"
import type * as StatusBoard from "../StatusBoard.js"
import * as Histogram from "./latencyHistogram.js"

/** The counted kinds, in the order of the counters ring. */
const KINDS = ["requests", "errors", "retries", "fallbacks", "resumes", "rejections", "timeouts"] as const
type Kind = typeof KINDS[number]
const K = KINDS.length
const REQUESTS = 0
const ERRORS = 1
const RETRIES = 2
const FALLBACKS = 3
const RESUMES = 4
const REJECTIONS = 5
const TIMEOUTS = 6

/** Entries kept in one request's trail (a request retried in a loop must not grow without end). */
const MAX_TRAIL = 24

class Attempt implements RequestObserver.AttemptObserver {
  readonly headers = undefined
  ms: number | undefined = undefined
  outcome: StatusBoard.AttemptEntry["outcome"] = "running"
  error: string | undefined = undefined
  constructor(
    readonly request: Request,
    readonly at: number,
    readonly info: RequestObserver.AttemptInfo
  ) {}
  chunks(chunks: ReadonlyArray<unknown>): void {
    if (this.request.ttfbMs === undefined && chunks.length > 0) this.request.ttfbMs = this.request.board.clock() - this.request.startedAt
  }
  end(outcome: RequestObserver.AttemptOutcome): void {
    this.ms = this.request.board.clock() - this.request.startedAt - this.at
    switch (outcome._tag) {
      case "Success":
        this.outcome = "ok"
        break
      case "Failure": {
        this.outcome = "failed"
        const e = outcome.error
        this.error = e._tag === "Timeout" ? `Timeout (${e.phase})` : e._tag === "StreamInterrupted" ? `StreamInterrupted (${e.reason})` : e._tag
        break
      }
      case "Defect":
        this.outcome = "defect"
        break
      case "Interrupted":
        this.outcome = "interrupted"
    }
  }
  toJSON(): StatusBoard.AttemptEntry {
    return {
      _tag: "Attempt",
      at: this.at,
      upstream: this.info.upstream,
      model: this.info.model,
      attempt: this.info.attempt,
      ms: this.ms,
      outcome: this.outcome,
      error: this.error
    }
  }
}

type TrailItem = Attempt | { readonly at: number; readonly event: RequestObserver.PolicyEvent }

/** One request: its observer while it runs, then an entry of the recent-requests ring. */
class Request implements StatusBoard.RequestRecord {
  seq = 0
  readonly startedAt: number
  readonly trail: Array<TrailItem> = []
  dropped = 0
  ttfbMs: number | undefined = undefined
  status: number | undefined = undefined
  latencyMs: number | undefined = undefined
  error: string | undefined = undefined
  constructor(
    readonly board: Board,
    readonly id: string,
    readonly model: string,
    readonly stream: boolean
  ) {
    this.startedAt = board.clock()
  }
  private push(item: TrailItem): boolean {
    if (this.trail.length >= MAX_TRAIL) {
      this.dropped++
      return false
    }
    this.trail.push(item)
    return true
  }
  attempt(info: RequestObserver.AttemptInfo): RequestObserver.AttemptObserver | undefined {
    const a = new Attempt(this, this.board.clock() - this.startedAt, info)
    return this.push(a) ? a : undefined
  }
  event(event: RequestObserver.PolicyEvent): void {
    this.board.count(event)
    this.push({ at: this.board.clock() - this.startedAt, event })
  }
  end(status: number, errorCode?: string): void {
    if (this.status !== undefined) return
    this.status = status
    this.latencyMs = this.board.clock() - this.startedAt
    this.error = errorCode
    this.board.finished(this)
  }
  toJSON(): StatusBoard.RecentRequest {
    return {
      seq: this.seq,
      id: this.id,
      model: this.model,
      stream: this.stream,
      at: this.startedAt,
      status: this.status ?? 0,
      latencyMs: this.latencyMs ?? 0,
      ttfbMs: this.ttfbMs,
      error: this.error,
      trail: this.trail.map((t) => t instanceof Attempt ? t.toJSON() : { at: t.at, ...t.event }),
      dropped: this.dropped
    }
  }
}

export class Board implements StatusBoard.StatusBoard {
  readonly clock: () => number
  readonly seconds: number
  readonly slotMs: number
  readonly windowMs: number
  /** Which epoch second each counter slot holds. */
  readonly secondOf: Float64Array
  readonly counts: Uint32Array
  readonly latency: Histogram.SlotHistograms
  readonly ttfb: Histogram.SlotHistograms
  readonly recent: Array<Request | undefined>
  readonly transitions: Array<StatusBoard.Transition> = []
  readonly maxTransitions: number
  /** The last state each breaker key was seen moving to (many requests report one change). */
  readonly lastState = new Map<string, string>()
  seq = 0
  inflight = 0

  constructor(options: StatusBoard.Options) {
    this.clock = options.clock ?? Date.now
    this.seconds = options.historySeconds ?? 600
    this.slotMs = (options.slotSeconds ?? 10) * 1000
    this.windowMs = (options.windowSeconds ?? 300) * 1000
    this.secondOf = new Float64Array(this.seconds).fill(-1)
    this.counts = new Uint32Array(this.seconds * K)
    const slots = Math.ceil((this.seconds * 1000) / this.slotMs)
    this.latency = Histogram.make(slots, this.slotMs)
    this.ttfb = Histogram.make(slots, this.slotMs)
    this.recent = new Array(options.recentRequests ?? 50).fill(undefined)
    this.maxTransitions = options.transitions ?? 40
  }

  begin(requestId: string, model: string, stream: boolean): StatusBoard.RequestRecord {
    this.inflight++
    return new Request(this, requestId, model, stream)
  }

  bump(kind: number, now = this.clock()): void {
    const sec = Math.floor(now / 1000)
    const i = sec % this.seconds
    if (this.secondOf[i] !== sec) {
      this.secondOf[i] = sec
      this.counts.fill(0, i * K, (i + 1) * K)
    }
    this.counts[i * K + kind]! += 1
  }

  count(event: RequestObserver.PolicyEvent): void {
    switch (event._tag) {
      case "Retry":
        return this.bump(RETRIES)
      case "Fallback":
        return this.bump(FALLBACKS)
      case "Resume":
        if (event.outcome === "resumed" || event.outcome === "restarted") this.bump(RESUMES)
        return
      case "BreakerRejected":
      case "TargetSkipped":
        return this.bump(REJECTIONS)
      case "Timeout":
        return this.bump(TIMEOUTS)
      case "BreakerTransition":
        return this.transition(event.key, event.from, event.to)
    }
  }

  transition(key: string, from: string, to: string): void {
    if (this.lastState.get(key) === to) return
    this.lastState.set(key, to)
    this.transitions.push({ at: this.clock(), key, from, to })
    if (this.transitions.length > this.maxTransitions) this.transitions.shift()
  }

  finished(r: Request): void {
    this.inflight--
    const now = this.clock()
    this.bump(REQUESTS, now)
    if (r.status! >= 500) this.bump(ERRORS, now)
    Histogram.record(this.latency, now, r.latencyMs!)
    if (r.stream && r.ttfbMs !== undefined) Histogram.record(this.ttfb, now, r.ttfbMs)
    r.seq = ++this.seq
    this.recent[r.seq % this.recent.length] = r
  }

  snapshot(options: StatusBoard.SnapshotOptions = {}): StatusBoard.Snapshot {
    const now = this.clock()
    const nowSec = Math.floor(now / 1000)
    const nSec = Math.min(this.seconds, options.seconds ?? this.seconds)
    const firstSec = nowSec - nSec + 1
    const series = {} as Record<Kind, Array<number>>
    for (const kind of KINDS) series[kind] = []
    for (let s = firstSec; s <= nowSec; s++) {
      const i = ((s % this.seconds) + this.seconds) % this.seconds
      const live = this.secondOf[i] === s
      for (let k = 0; k < K; k++) series[KINDS[k]!].push(live ? this.counts[i * K + k]! : 0)
    }
    const currentSlot = now - (now % this.slotMs)
    const nSlots = Math.min(this.latency.slots, options.slots ?? this.latency.slots)
    const slotStarts: Array<number> = []
    const latency: Array<Histogram.Percentiles> = []
    const ttfb: Array<Histogram.Percentiles> = []
    for (let j = nSlots - 1; j >= 0; j--) {
      const start = currentSlot - j * this.slotMs
      slotStarts.push(start)
      latency.push(Histogram.percentiles(this.latency, start, start))
      ttfb.push(Histogram.percentiles(this.ttfb, start, start))
    }
    // The window counts whole seconds that ended, so a rate is not diluted by the current one.
    const windowSec = Math.floor(this.windowMs / 1000)
    const totals = {} as Record<Kind, number>
    for (const kind of KINDS) totals[kind] = 0
    for (let s = nowSec - windowSec; s < nowSec; s++) {
      const i = ((s % this.seconds) + this.seconds) % this.seconds
      if (this.secondOf[i] !== s) continue
      for (let k = 0; k < K; k++) totals[KINDS[k]!] += this.counts[i * K + k]!
    }
    const since = options.sinceSeq ?? 0
    const requests: Array<StatusBoard.RecentRequest> = []
    for (let seq = Math.max(since + 1, this.seq - this.recent.length + 1); seq <= this.seq; seq++) {
      const r = this.recent[seq % this.recent.length]
      if (r !== undefined && r.seq === seq) requests.push(r.toJSON())
    }
    return {
      now,
      seq: this.seq,
      inflight: this.inflight,
      seconds: { start: firstSec * 1000, ...series },
      slots: { slotMs: this.slotMs, starts: slotStarts, latency, ttfb },
      window: {
        seconds: windowSec,
        totals,
        latency: Histogram.percentiles(this.latency, now - this.windowMs, now),
        ttfb: Histogram.percentiles(this.ttfb, now - this.windowMs, now)
      },
      transitions: [...this.transitions],
      requests
    }
  }
}
