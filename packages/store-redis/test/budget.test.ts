import { describe, expect, it } from "@effect/vitest"
import { RetryBudget } from "@breakwater/retry"
import { RedisRetryBudget, RedisStore } from "@breakwater/store-redis"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Metric from "effect/Metric"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import * as fc from "fast-check"
import { afterAll, beforeAll } from "vitest"
import { countCommands, hasRedis, RedisServer, waitUntil } from "./redisServer.js"

const unhandled: Array<unknown> = []
const onUnhandled = (reason: unknown) => void unhandled.push(reason)

describe.skipIf(!hasRedis)("RedisRetryBudget against a real redis-server", () => {
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
  const freshPrefix = () => `bw-test-${process.pid}-${++n}:`

  const instance = (options: Partial<RedisStore.RedisOptionsInput> & { prefix: string }) =>
    Effect.map(
      Layer.build(Layer.provideMerge(RedisRetryBudget.layer, RedisStore.layer({ url: server.url, commandTimeout: "2 seconds", ...options }))),
      (ctx) => ({ redis: Context.get(ctx, RedisStore.RedisStore), store: Context.get(ctx, RetryBudget.RetryBudgetStore) })
    )

  const budgetOptions = { ratio: 0.1, minRetriesPerSecond: 10, window: "10 seconds", key: "retry" } as const
  const settings = Schema.decodeSync(RetryBudget.BudgetOptions)(budgetOptions)
  const bind = (store: RetryBudget.RetryBudgetStore) => RetryBudget.make(store, settings)

  /** Every instance records `requests`, then `attempts` fibers per instance ask for a retry at once. */
  const hammer = (budgets: ReadonlyArray<RetryBudget.RetryBudget>, requests: number, attempts: number) =>
    Effect.gen(function*() {
      for (const b of budgets) yield* Effect.repeatN(b.recordRequest, requests - 1)
      const grants = yield* Effect.forEach(
        budgets.flatMap((b) => Array.from({ length: attempts }, () => b.tryRetry)),
        (e) => e,
        { concurrency: "unbounded" }
      )
      return grants.filter(Boolean).length
    })

  it.scoped("two instances hammering one budget grant exactly what one budget allows, atomically", () =>
    Effect.gen(function*() {
      const prefix = freshPrefix()
      const a = yield* instance({ prefix })
      const b = yield* instance({ prefix })
      expect(a.redis.client).not.toBe(b.redis.client)
      // 20 requests each, 50 concurrent retry attempts each: the fleet floor is 10 per second and
      // 10% of 40 requests is 4, so exactly 10 retries across both instances.
      const shared = yield* hammer([bind(a.store), bind(b.store)], 20, 50)
      expect(shared).toBe(10)
      // The same traffic on two private budgets would grant twice the floor: the test can fail.
      const apart = yield* hammer([bind(yield* RetryBudget.makeMemory), bind(yield* RetryBudget.makeMemory)], 20, 50)
      expect(apart).toBe(20)
    }))

  it.scoped("the shared window slides like the in-memory one (same answers for the same calls)", () =>
    Effect.gen(function*() {
      const { store } = yield* instance({ prefix: freshPrefix() })
      const op = fc.record({
        advance: fc.integer({ min: 0, max: 3_000 }),
        requests: fc.integer({ min: 0, max: 4 }),
        retry: fc.boolean()
      })
      const limits = fc.record({
        ratio: fc.double({ min: 0, max: 1, noNaN: true }),
        minPerSecond: fc.integer({ min: 0, max: 3 }),
        windowMillis: fc.integer({ min: 500, max: 5_000 })
      })
      const samples = fc.sample(fc.tuple(limits, fc.array(op, { minLength: 10, maxLength: 60 })), { numRuns: 25, seed: 42 })
      let run = 0
      for (const [lim, ops] of samples) {
        const memory = yield* RetryBudget.makeMemory
        const key = `equivalence-${run++}`
        let now = 1_000_000 + run * 100_000
        for (const o of ops) {
          now += o.advance
          const input = { key, now, requests: o.requests, retry: o.retry, limits: lim }
          const expected = yield* memory.acquire(input)
          const actual = yield* store.acquire(input)
          expect(actual, JSON.stringify({ lim, o, now })).toBe(expected)
        }
      }
    }))

  it.scoped("every budget key has an expiry, and lives under the deployment's prefix", () =>
    Effect.gen(function*() {
      const prefix = freshPrefix()
      const { store } = yield* instance({ prefix })
      const other = yield* instance({ prefix: freshPrefix() })
      const budget = bind(store)
      yield* Effect.repeatN(budget.recordRequest, 4)
      yield* budget.tryRetry
      // Another prefix is another deployment: its budget is its own.
      const otherBudget = bind(other.store)
      const grants = yield* hammer([otherBudget], 1, 20)
      expect(grants).toBe(10)

      const c = server.client()
      yield* Effect.addFinalizer(() => Effect.sync(() => c.disconnect()))
      const keys = yield* Effect.promise(() => c.keys(`${prefix}*`))
      expect(keys).toEqual([`${prefix}budget:retry`])
      for (const key of keys) {
        const ttl = yield* Effect.promise(() => c.pttl(key))
        expect(ttl).toBeGreaterThan(0)
        expect(ttl).toBeLessThanOrEqual(12_000)
      }
      // The window slides on the Clock the caller uses: 11 s later the floor is free again.
      yield* TestClock.adjust("11 seconds")
      expect(yield* hammer([budget], 1, 15)).toBe(10)
    }))

  it.scoped("Redis killed: both instances keep answering from local state, fast; restarted: sharing resumes", () =>
    Effect.gen(function*() {
      const prefix = freshPrefix()
      const options = { prefix, commandTimeout: 100, healthCheckInterval: 50, fleetSize: 2 }
      const a = yield* instance(options)
      const b = yield* instance(options)
      const budgets = [bind(a.store), bind(b.store)]
      expect((yield* a.redis.health).status).toBe("up")
      expect((yield* Metric.value(RedisStore.upGauge)).value).toBe(1)

      const sent = [countCommands(a.redis.client), countCommands(b.redis.client)]
      yield* Effect.promise(() => server.kill())
      // No requests recorded: only the floor counts, and alone each instance keeps half of it.
      const grants = yield* hammer(budgets, 1, 20)
      expect(grants).toBe(10)
      // Fast because local: of 21 calls per instance at most the first (which finds Redis gone)
      // reaches the client; the rest never wait on Redis.
      expect(sent.map((s) => s.sent <= 1)).toEqual([true, true])
      expect((yield* a.redis.health).status).toBe("down")
      expect((yield* b.redis.health).lastError).toBeDefined()
      expect((yield* Metric.value(RedisStore.upGauge)).value).toBe(0)
      const fallbacks = yield* Metric.value(Metric.tagged(RedisStore.fallbackTotal, "store", "budget"))
      expect(fallbacks.count).toBeGreaterThanOrEqual(40)

      yield* Effect.promise(() => server.start())
      yield* Effect.promise(() =>
        waitUntil(() => a.redis.isUp() && b.redis.isUp(), 5_000, "both instances to see Redis again")
      )
      expect((yield* a.redis.health).status).toBe("up")
      // Shared again (a fresh Redis: a fresh window), one fleet-wide floor.
      yield* TestClock.adjust("1 second")
      expect(yield* hammer(budgets, 1, 20)).toBe(10)
      expect(unhandled).toEqual([])
    }))

  it.scoped("a frozen Redis (SIGSTOP) costs at most the command timeout, then calls stay local", () =>
    Effect.gen(function*() {
      const { redis, store } = yield* instance({ prefix: freshPrefix(), commandTimeout: 100, healthCheckInterval: 50 })
      const budget = bind(store)
      server.pause()
      yield* Effect.addFinalizer(() => Effect.sync(() => server.resume()))
      const sent = countCommands(redis.client)
      const first = performance.now()
      expect(yield* budget.tryRetry).toBe(true)
      const firstMillis = performance.now() - first
      // The first call waited for its command, and the command timeout (not anything else) ended it.
      expect(sent.sent).toBe(1)
      expect((yield* redis.health).lastError).toMatch(/timed out/i)
      expect(firstMillis).toBeGreaterThanOrEqual(95)
      expect(redis.isUp()).toBe(false)
      const second = performance.now()
      yield* Effect.repeatN(budget.tryRetry, 20)
      // Down: no call waits for Redis at all. None reaches the client, and all 21 take less time
      // together than the one call that waited (each waiting would take 20 times as long).
      expect(sent.sent).toBe(1)
      expect(performance.now() - second).toBeLessThan(firstMillis)
      server.resume()
      yield* Effect.promise(() => waitUntil(() => redis.isUp(), 5_000, "Redis to be seen again after SIGCONT"))
    }))

  it.scoped("Redis down at start: the layer builds at once and serves locally; when Redis appears, sharing starts", () =>
    Effect.gen(function*() {
      const later = yield* Effect.promise(() => RedisServer.reserve())
      // A connect timeout far beyond the test's own: the layer builds on the refused connection,
      // not at the end of any wait (a build that waited would time the test out, not flake it).
      const { redis, store } = yield* Layer.build(Layer.provideMerge(
        RedisRetryBudget.layer,
        RedisStore.layer({ url: later.url, prefix: freshPrefix(), connectTimeout: "1 hour", healthCheckInterval: 50 })
      )).pipe(Effect.map((ctx) => ({ redis: Context.get(ctx, RedisStore.RedisStore), store: Context.get(ctx, RetryBudget.RetryBudgetStore) })))
      const health = yield* redis.health
      expect(health).toMatchObject({ status: "down", endpoint: `127.0.0.1:${later.port}/0` })
      expect(health.lastError).toBeDefined()
      expect(yield* hammer([bind(store)], 1, 12)).toBe(10)
      yield* Effect.promise(() => later.start())
      yield* Effect.addFinalizer(() => Effect.promise(() => later.kill()))
      yield* Effect.promise(() => waitUntil(() => redis.isUp(), 5_000, "Redis to be seen once it starts"))
      expect((yield* redis.health).status).toBe("up")
    }))

  it.scoped("the password in the URL is never shown: health, logs and errors carry host:port/db only", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const capture = Logger.make(({ annotations, message }) => void lines.push(JSON.stringify({ message, annotations: [...annotations] })))
      const redis = yield* RedisStore.make({ url: `redis://:s3cr3t-pass@127.0.0.1:${server.port}/2`, prefix: freshPrefix(), connectTimeout: 300 }).pipe(
        Effect.provide(Logger.add(capture))
      )
      const health = yield* redis.health
      expect(JSON.stringify(health)).not.toContain("s3cr3t")
      expect(health.endpoint).toBe(`127.0.0.1:${server.port}/2`)
      expect(String(redis.options.url)).not.toContain("s3cr3t")
      expect(JSON.stringify(redis.options)).not.toContain("s3cr3t")
      expect(lines.length).toBeGreaterThan(0)
      expect(lines.join("\n")).not.toContain("s3cr3t")
    }))
})
