/**
 * What the mock received: a log of requests (bounded, or none in fast mode), a counter, and
 * waiters for a number of requests.
 */
import type { IncomingHttpHeaders, ServerResponse } from "node:http"
import type { Behavior } from "./behavior.js"

export interface RecordedRequest {
  readonly method: string
  readonly path: string
  readonly headers: IncomingHttpHeaders
  readonly body: any
  readonly at: number
  /** The behavior applied. */
  readonly behavior: Behavior
  /** Whether the client went away before the response ended (not counting the mock's own cuts and `stop`). */
  readonly clientAborted: boolean
  /** Resolves with `clientAborted` once the exchange is over. */
  readonly closed: Promise<boolean>
}

/** One exchange in progress. */
export interface Exchange {
  /** Set when the mock itself ends the exchange abnormally (a cut, a reset, `stop`). */
  byMock: boolean
}

export class RequestLog {
  readonly requests: Array<RecordedRequest> = []
  /** Requests received since the last reset (also counted when nothing is logged). */
  received = 0
  private readonly waiters: Array<{ n: number; resolve: () => void }> = []

  constructor(private readonly maxRequests: number) {}

  /** Counts a request, and logs it unless `logged` is false (fast mode). */
  add(
    request: Omit<RecordedRequest, "clientAborted" | "closed" | "at">,
    res: ServerResponse,
    exchange: Exchange,
    logged: boolean
  ): void {
    if (logged) {
      let settle!: (aborted: boolean) => void
      const closed = new Promise<boolean>((resolve) => (settle = resolve))
      const record = { ...request, at: Date.now(), clientAborted: false, closed }
      this.requests.push(record)
      // A long-running mock (the reference server's) keeps only the most recent requests.
      if (this.requests.length > this.maxRequests) this.requests.splice(0, this.requests.length - this.maxRequests)
      res.on("close", () => {
        record.clientAborted = !res.writableFinished && !exchange.byMock
        settle(record.clientAborted)
      })
    }
    this.received++
    if (this.waiters.length > 0) {
      for (const w of this.waiters.filter((w) => this.received >= w.n)) {
        this.waiters.splice(this.waiters.indexOf(w), 1)
        w.resolve()
      }
    }
  }

  reset(): void {
    this.requests.length = 0
    this.received = 0
  }

  waitFor(n: number, timeoutMs: number): Promise<void> {
    if (this.received >= n) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const waiter = { n, resolve: () => (clearTimeout(timer), resolve()) }
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1)
        reject(new Error(`MockUpstream: ${this.received} of ${n} requests after ${timeoutMs} ms`))
      }, timeoutMs)
      this.waiters.push(waiter)
    })
  }
}
