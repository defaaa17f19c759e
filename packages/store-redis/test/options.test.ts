import { RedisStore, RedisStreamJournal } from "@breakwater/store-redis"
import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"

describe("RedisStore options", () => {
  it("have their documented defaults, and take the URL as a string or a Redacted", () => {
    const decoded = Schema.decodeUnknownSync(RedisStore.RedisOptions)({ url: "redis://:pw@host:6380/1" })
    expect(Redacted.isRedacted(decoded.url)).toBe(true)
    expect(Redacted.value(decoded.url)).toBe("redis://:pw@host:6380/1")
    expect(String(decoded.url)).not.toContain("pw")
    expect(decoded.prefix).toBe("breakwater:")
    expect(Duration.toMillis(decoded.commandTimeout)).toBe(250)
    expect(Duration.toMillis(decoded.connectTimeout)).toBe(1_000)
    expect(Duration.toMillis(decoded.healthCheckInterval)).toBe(1_000)
    expect(decoded.fleetSize).toBe(1)
  })

  it("accept the gateway's decoded `redis` section as it is (Redacted url, Duration, absent fields)", () => {
    const fromGateway = { url: Redacted.make("redis://cache:6379"), prefix: undefined, commandTimeout: Duration.millis(80) }
    const decoded = Schema.decodeUnknownSync(RedisStore.RedisOptions)(fromGateway)
    expect(Redacted.value(decoded.url)).toBe("redis://cache:6379")
    expect(decoded.prefix).toBe("breakwater:")
    expect(Duration.toMillis(decoded.commandTimeout)).toBe(80)
  })

  it("reject a missing url and a bad duration, naming each problem", () => {
    expect(() => Schema.decodeUnknownSync(RedisStore.RedisOptions)({}, { errors: "all" })).toThrow(/url/)
    expect(() => Schema.decodeUnknownSync(RedisStore.RedisOptions)({ url: "redis://x", commandTimeout: "soon" })).toThrow(/duration/)
    expect(() => Schema.decodeUnknownSync(RedisStore.RedisOptions)({ url: "redis://x", fleetSize: 0 })).toThrow()
  })

  it("the journal takes StreamJournal's bounds plus a poll interval", () => {
    const decoded = Schema.decodeUnknownSync(RedisStreamJournal.RedisJournalOptions)({})
    expect(Duration.toMillis(decoded.pollInterval)).toBe(100)
    expect(decoded.maxEventsPerStream).toBe(10_000)
  })
})
