import { BreakerState, BreakerStore, CircuitBreaker } from "@breakwater/circuit-breaker"
import { ModelError } from "@breakwater/core"
import { RedisBreakerStore, RedisStore } from "@breakwater/store-redis"
import { describe, expect, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Metric from "effect/Metric"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import { afterAll, beforeAll } from "vitest"
import { countCommands, hasRedis, RedisServer, waitUntil } from "./redisServer.js"

const unhandled: Array<unknown> = []
const onUnhandled = (reason: unknown) => void unhandled.push(reason)

const unavailable = Effect.fail(new ModelError.UpstreamUnavailable({ message: "503", status: 503 }))
const options = {
  window: { kind: "count" as const, size: 4 },
  minimumCalls: 4,
  failureRateThreshold: 50,
  openDuration: "30 seconds",
  syncInterval: "1 second"
}

describe.skipIf(!hasRedis)("RedisBreakerStore against a real redis-server", () => {
  let server: RedisServer
  beforeAll(async () => {
    process.on("unhandledRejection", onUnhandled)
    server = await RedisServer.start()
  })
  afterAll(async () => {
    process.off("unhandledRejection", onUnhandled)
    await server?.kill()
  })

  let n = 0
  const freshPrefix = () => `bw-breaker-${process.pid}-${++n}:`

  /** One gateway instance: its own connection, store and breakers. */
  // Tests that are not about a slow Redis give it time: a loaded CI machine must not look like an outage.
  const instance = (prefix: string, breakerOptions: CircuitBreaker.BreakerOptionsInput = options, extra: Partial<RedisStore.RedisOptionsInput> = {}) =>
    Effect.gen(function*() {
      const ctx = yield* Layer.build(
        Layer.provideMerge(RedisBreakerStore.layer, RedisStore.layer({ url: server.url, prefix, commandTimeout: "2 seconds", ...extra }))
      )
      const breaker = yield* Effect.provide(CircuitBreaker.make(breakerOptions), ctx)
      return { redis: Context.get(ctx, RedisStore.RedisStore), store: Context.get(ctx, BreakerStore.BreakerStore), breaker }
    })

  const call = (breaker: CircuitBreaker.CircuitBreaker, effect: Effect.Effect<string, unknown>, key = "up") =>
    Effect.exit(breaker.withBreaker(key)(effect))
  const failTimes = (breaker: CircuitBreaker.CircuitBreaker, times: number, key = "up") =>
    Effect.repeatN(call(breaker, unavailable, key), times - 1)
  const isOpenError = (exit: Exit.Exit<unknown, unknown>) =>
    Exit.isFailure(exit) && exit.cause._tag === "Fail" && (exit.cause.error as { _tag: string })._tag === "CircuitOpen"

  /** Two instances sharing a breaker that needs two probe successes, tripped and now half-open. */
  const halfOpenFleet = Effect.gen(function*() {
    const prefix = freshPrefix()
    const probes = { ...options, halfOpenProbes: 2 }
    const a = yield* instance(prefix, probes)
    const b = yield* instance(prefix, probes)
    yield* failTimes(a.breaker, 4)
    yield* TestClock.adjust("30 seconds")
    return { a, b }
  })

  it.scoped("compare-and-set from two clients and many fibers loses no update", () =>
    Effect.gen(function*() {
      const prefix = freshPrefix()
      const a = yield* instance(prefix)
      const b = yield* instance(prefix)
      const bump = (store: BreakerStore.BreakerStore) =>
        BreakerStore.modify(store, "hot", (s) => [undefined, { ...s, trips: s.trips + 1 }] as const, 60_000)
      yield* Effect.forEach(
        Array.from({ length: 50 }, (_, i) => bump(i % 2 === 0 ? a.store : b.store)),
        (e) => e,
        { concurrency: "unbounded", discard: true }
      )
      const stored = yield* a.store.get("hot")
      expect(stored.state.trips).toBe(50)
      expect(stored.version).toBe(50)
      expect((yield* b.store.get("hot")).state.trips).toBe(50)
    }))

  it.scoped("a breaker tripped on A makes B fail fast within syncInterval", () =>
    Effect.gen(function*() {
      const prefix = freshPrefix()
      const a = yield* instance(prefix)
      const b = yield* instance(prefix)
      let upstreamCalls = 0
      const upstream = Effect.sync(() => (++upstreamCalls, "ok"))

      // B has a fresh view of the breaker, closed.
      expect(Exit.isSuccess(yield* call(b.breaker, upstream))).toBe(true)
      yield* failTimes(a.breaker, 4)
      expect(a.breaker.isAvailable("up")).toBe(false)

      // Within syncInterval B may still let a call through on its view; that call's outcome
      // brings the fleet state back, so B fails fast from then on.
      upstreamCalls = 0
      const within = yield* Effect.forEach(Array.from({ length: 5 }), () => call(b.breaker, upstream))
      expect(upstreamCalls).toBeLessThanOrEqual(1)
      expect(within.filter(isOpenError).length).toBeGreaterThanOrEqual(4)
      expect(b.breaker.isAvailable("up")).toBe(false)

      // A third instance that never saw the key refuses on its first call.
      const c = yield* instance(prefix)
      expect(isOpenError(yield* call(c.breaker, upstream))).toBe(true)

      // And once syncInterval has passed, B refuses on the fleet's state without any call of its own.
      const d = yield* instance(prefix)
      expect(Exit.isSuccess(yield* call(d.breaker, upstream, "other"))).toBe(true)
      yield* failTimes(a.breaker, 4, "other")
      yield* TestClock.adjust("1 second")
      upstreamCalls = 0
      expect(isOpenError(yield* call(d.breaker, upstream, "other"))).toBe(true)
      expect(upstreamCalls).toBe(0)
    }))

  it.scoped("half-open: only halfOpenProbes probes run fleet-wide, and their successes close it everywhere", () =>
    Effect.gen(function*() {
      const { a, b } = yield* halfOpenFleet

      const gate = yield* Deferred.make<void>()
      let entered = 0
      const slowUpstream = Effect.zipRight(Effect.sync(() => ++entered), Effect.as(Deferred.await(gate), "ok"))
      const fibers = yield* Effect.forEach(
        Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? a : b).breaker),
        (breaker) => Effect.fork(call(breaker, slowUpstream)),
        { concurrency: "unbounded" }
      )
      // Every call has either entered the upstream (a probe) or been refused.
      yield* Effect.promise(() => waitUntil(() => entered + fibers.filter((f) => f.unsafePoll() !== null).length === 12, 5_000, "every call decided"))
      expect(a.redis.isUp() && b.redis.isUp()).toBe(true)
      expect(entered).toBe(2)
      yield* Deferred.succeed(gate, undefined)
      const exits = yield* Effect.forEach(fibers, Fiber.join)
      expect(exits.filter(Exit.isSuccess).length).toBe(2)
      expect(exits.filter(isOpenError).length).toBe(10)
      expect(yield* a.breaker.state("up")).toBe("closed")
      expect(yield* b.breaker.state("up")).toBe("closed")
    }))

  it.scoped("half-open across instances: one probe success of two keeps it half-open; the other probe failing re-opens it everywhere", () =>
    Effect.gen(function*() {
      const { a, b } = yield* halfOpenFleet

      const gateA = yield* Deferred.make<void>()
      const gateB = yield* Deferred.make<void>()
      let entered = 0
      const probeA = yield* Effect.fork(call(a.breaker, Effect.zipRight(Effect.sync(() => ++entered), Effect.as(Deferred.await(gateA), "ok"))))
      yield* Effect.promise(() => waitUntil(() => entered === 1, 5_000, "A's probe to start"))
      const probeB = yield* Effect.fork(call(b.breaker, Effect.zipRight(Effect.sync(() => ++entered), Effect.zipRight(Deferred.await(gateB), unavailable))))
      yield* Effect.promise(() => waitUntil(() => entered === 2, 5_000, "B's probe to start"))

      // A's probe succeeds: one of the two required, so the fleet stays half-open and no third probe is let in.
      yield* Deferred.succeed(gateA, undefined)
      expect(Exit.isSuccess(yield* Fiber.join(probeA))).toBe(true)
      expect(yield* a.breaker.state("up")).toBe("half-open")
      expect(yield* b.breaker.state("up")).toBe("half-open")
      let reached = false
      expect(isOpenError(yield* call(a.breaker, Effect.sync(() => (reached = true, "ok"))))).toBe(true)
      expect(reached).toBe(false)

      // B's probe fails: open again on both instances, for the second trip.
      yield* Deferred.succeed(gateB, undefined)
      expect(Exit.isFailure(yield* Fiber.join(probeB))).toBe(true)
      expect(yield* b.breaker.state("up")).toBe("open")
      yield* TestClock.adjust("1 second")
      expect(isOpenError(yield* call(a.breaker, Effect.sync(() => (reached = true, "ok"))))).toBe(true)
      expect(yield* a.breaker.state("up")).toBe("open")
      expect(reached).toBe(false)
    }))

  it.scoped("every breaker key has an expiry and the deployment's prefix; another prefix is another fleet", () =>
    Effect.gen(function*() {
      const prefix = freshPrefix()
      const a = yield* instance(prefix)
      const elsewhere = yield* instance(freshPrefix())
      yield* failTimes(a.breaker, 4, "x")
      yield* failTimes(a.breaker, 1, "y")
      expect(Exit.isSuccess(yield* call(elsewhere.breaker, Effect.succeed("ok"), "x"))).toBe(true)

      const c = server.client()
      yield* Effect.addFinalizer(() => Effect.sync(() => c.disconnect()))
      const keys = (yield* Effect.promise(() => c.keys(`${prefix}*`))).sort()
      expect(keys).toEqual([`${prefix}breaker:x`, `${prefix}breaker:y`])
      for (const key of keys) {
        const ttl = yield* Effect.promise(() => c.pttl(key))
        expect(ttl).toBeGreaterThan(0)
      }
      // The stored value is the breaker's own state, decodable by its schema.
      const json = yield* Effect.promise(() => c.hget(`${prefix}breaker:x`, "s"))
      const state = Schema.decodeSync(BreakerState.BreakerStateFromJson)(json ?? "")
      expect(state.phase).toBe("open")
    }))

  it.scoped("Redis killed: both instances keep serving on local state (trips included); restarted: the local trip is written back and shared", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const capture = Logger.make(({ message }) => void lines.push(Array.isArray(message) ? message.join(" ") : String(message)))
      yield* Effect.gen(function*() {
        const prefix = freshPrefix()
        const fast = { commandTimeout: 100, healthCheckInterval: 50 }
        const a = yield* instance(prefix, options, fast)
        const b = yield* instance(prefix, options, fast)
        const ok = Effect.succeed("ok")
        expect(Exit.isSuccess(yield* call(a.breaker, ok))).toBe(true)
        expect(Exit.isSuccess(yield* call(b.breaker, ok))).toBe(true)

        expect(lines.filter((l) => l.includes("redis store up")).length).toBe(2)
        lines.length = 0
        const sent = [countCommands(a.redis.client), countCommands(b.redis.client)]
        yield* Effect.promise(() => server.kill())
        // A trips its breaker alone; B, which never saw failures, keeps calling.
        yield* failTimes(a.breaker, 4)
        expect(isOpenError(yield* call(a.breaker, ok))).toBe(true)
        for (let i = 0; i < 10; i++) expect(Exit.isSuccess(yield* call(b.breaker, ok))).toBe(true)
        // Served on local state: of 15 calls, at most the first on each instance (the one that finds
        // Redis gone) reaches its client; no call waits on Redis.
        expect(sent.map((s) => s.sent <= 1)).toEqual([true, true])
        expect((yield* a.redis.health).status).toBe("down")
        expect((yield* Metric.value(RedisStore.upGauge)).value).toBe(0)
        expect(lines.filter((l) => l.includes("redis store down")).length).toBe(2)

        yield* Effect.promise(() => server.start())
        yield* Effect.promise(() => waitUntil(() => a.redis.isUp() && b.redis.isUp(), 5_000, "both instances to see Redis again"))
        expect(lines.filter((l) => l.includes("redis store up")).length).toBe(2)
        expect(lines.some((l) => l.includes("written back"))).toBe(true)
        // The fresh Redis now holds A's trip: B fails fast once its view is syncInterval old.
        yield* TestClock.adjust("1 second")
        let reached = false
        expect(isOpenError(yield* call(b.breaker, Effect.sync(() => (reached = true, "ok"))))).toBe(true)
        expect(reached).toBe(false)
        expect(unhandled).toEqual([])
      }).pipe(Effect.provide(Logger.add(capture)))
    }))
})
