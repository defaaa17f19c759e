import { Durations } from "@breakwater/core"
import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"

describe("Durations", () => {
  it("parse reads a Duration, milliseconds and strings, and refuses other strings", () => {
    expect(Option.map(Durations.parse(Duration.seconds(2)), Duration.toMillis)).toEqual(Option.some(2000))
    expect(Option.map(Durations.parse(250), Duration.toMillis)).toEqual(Option.some(250))
    expect(Option.map(Durations.parse(" 30 seconds "), Duration.toMillis)).toEqual(Option.some(30000))
    expect(Option.isNone(Durations.parse("soon"))).toBe(true)
  })

  it("DurationInput decodes all three forms and fails with a readable message", () => {
    const decode = Schema.decodeUnknownEither(Durations.DurationInput)
    expect(Either.map(decode("2 minutes"), Duration.toMillis)).toEqual(Either.right(120000))
    expect(Either.map(decode(Duration.millis(5)), Duration.toMillis)).toEqual(Either.right(5))
    const bad = decode("later")
    expect(Either.isLeft(bad) && String(bad.left)).toContain(`expected a duration like "10 seconds"`)
    expect(Either.isLeft(decode(-1))).toBe(true)
  })

  it("DurationFromConfig takes no Duration instance and encodes back to milliseconds", () => {
    const decode = Schema.decodeUnknownEither(Durations.DurationFromConfig)
    expect(Either.map(decode("1500 millis"), Duration.toMillis)).toEqual(Either.right(1500))
    expect(Either.isLeft(decode(Duration.seconds(1)))).toBe(true)
    expect(Schema.encodeSync(Durations.DurationFromConfig)(Duration.seconds(3))).toBe(3000)
  })
})
