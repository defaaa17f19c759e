import { RequestObserver } from "@breakwater/core"
import { describe, expect, it } from "@effect/vitest"

const recording = (name: string, log: Array<string>, headers?: Record<string, string>): RequestObserver.RequestObserver => ({
  attempt: (info) => ({
    headers,
    chunks: (chunks) => log.push(`${name}:chunks:${chunks.length}`),
    end: (outcome) => log.push(`${name}:end:${outcome._tag}:${info.upstream}`)
  }),
  event: (event) => log.push(`${name}:event:${event._tag}`)
})

const info = { upstream: "primary", model: "m", attempt: 1, stream: true }

describe("RequestObserver.combine", () => {
  it("is undefined without observers and the observer itself with one", () => {
    const log: Array<string> = []
    const one = recording("a", log)
    expect(RequestObserver.combine()).toBeUndefined()
    expect(RequestObserver.combine(undefined, undefined)).toBeUndefined()
    expect(RequestObserver.combine(undefined, one)).toBe(one)
  })

  it("tells every observer each attempt and event, and merges their upstream headers", () => {
    const log: Array<string> = []
    const both = RequestObserver.combine(recording("a", log, { traceparent: "00-x" }), undefined, recording("b", log, { baggage: "k=v" }))!
    const attempt = both.attempt(info)!
    expect(attempt.headers).toEqual({ traceparent: "00-x", baggage: "k=v" })
    attempt.chunks([])
    attempt.end({ _tag: "Interrupted" })
    both.event({ _tag: "Hedge", outcome: "started", delayMillis: 5 })
    expect(log).toEqual([
      "a:chunks:0",
      "b:chunks:0",
      "a:end:Interrupted:primary",
      "b:end:Interrupted:primary",
      "a:event:Hedge",
      "b:event:Hedge"
    ])
  })

  it("leaves an attempt alone when only one observer follows it", () => {
    const log: Array<string> = []
    const follower = recording("a", log)
    const ignoring: RequestObserver.RequestObserver = { attempt: () => undefined, event: () => undefined }
    const both = RequestObserver.combine(ignoring, follower)!
    expect(both.attempt(info)?.headers).toBeUndefined()
    both.attempt(info)!.end({ _tag: "Interrupted" })
    expect(log).toEqual(["a:end:Interrupted:primary"])
  })
})
