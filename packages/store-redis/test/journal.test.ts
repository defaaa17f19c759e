import { RedisStore, RedisStreamJournal } from "@breakwater/store-redis"
import { StreamJournal } from "@breakwater/stream-resume"
import { describe, expect, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { afterAll, beforeAll } from "vitest"
import { countCommands, hasRedis, RedisServer, waitUntil } from "./redisServer.js"

const unhandled: Array<unknown> = []
const onUnhandled = (reason: unknown) => void unhandled.push(reason)

const frame = (id: string, seq: number, text = "é ✓ x") => `id: ${id}:${seq}\ndata: {"t":"${text}"}\n\n`
const fill = (journal: StreamJournal.StreamJournal, id: string, from: number, to: number) =>
  Effect.forEach(Array.from({ length: to - from + 1 }, (_, i) => from + i), (seq) => journal.append(id, seq, frame(id, seq)))
const seqs = (events: ReadonlyArray<StreamJournal.JournalEvent>) => events.map((e) => e.seq)
const wait = (condition: () => boolean, what: string) => Effect.promise(() => waitUntil(condition, 5_000, what))

describe.skipIf(!hasRedis)("RedisStreamJournal against a real redis-server", () => {
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
  const freshPrefix = () => `bw-journal-${process.pid}-${++n}:`

  const instance = (prefix: string, options: RedisStreamJournal.RedisJournalOptionsInput = {}, extra: Partial<RedisStore.RedisOptionsInput> = {}) =>
    Effect.map(
      Layer.build(Layer.provideMerge(
        RedisStreamJournal.layer({ pollInterval: 20, ...options }),
        RedisStore.layer({ url: server.url, prefix, commandTimeout: "2 seconds", ...extra })
      )),
      (ctx) => ({ redis: Context.get(ctx, RedisStore.RedisStore), journal: Context.get(ctx, StreamJournal.StreamJournal) })
    )

  /** Follows in a fiber, collecting events as they come. */
  const followInto = (journal: StreamJournal.StreamJournal, id: string, afterSeq: number) =>
    Effect.gen(function*() {
      const got: Array<StreamJournal.JournalEvent> = []
      const fiber = yield* Effect.fork(Stream.runForEach(journal.follow(id, afterSeq), (e) => Effect.sync(() => got.push(e))))
      return { got, fiber }
    })

  it.scoped("events appended via A are read after a sequence number via B, byte for byte; B follows live to the finish", () =>
    Effect.gen(function*() {
      const prefix = freshPrefix()
      const a = yield* instance(prefix)
      const b = yield* instance(prefix)
      expect(yield* a.journal.open("s", { owner: "key-1" })).toEqual({ _tag: "Opened" })
      yield* fill(a.journal, "s", 1, 5)
      const after2 = yield* b.journal.read("s", 2)
      expect(seqs(after2.events)).toEqual([3, 4, 5])
      expect(after2.events.map((e) => e.frame).join("")).toBe(frame("s", 3) + frame("s", 4) + frame("s", 5))
      expect(after2.finished).toBe(false)
      expect(seqs((yield* b.journal.read("s", 0, 2)).events)).toEqual([1, 2])
      expect(yield* b.journal.state("s")).toEqual({
        _tag: "Active", owner: "key-1", firstSeq: 1, lastSeq: 5, finished: false, cancelled: false, readers: 0
      })

      const { fiber, got } = yield* followInto(b.journal, "s", 1)
      yield* wait(() => got.length === 4, "the replay on B")
      expect((yield* a.journal.state("s"))._tag === "Active" && (yield* a.journal.state("s"))).toMatchObject({ readers: 1 })
      yield* fill(a.journal, "s", 6, 7)
      yield* wait(() => got.length === 6, "live events on B")
      expect(fiber.unsafePoll()).toBeNull()
      yield* a.journal.append("s", 8, frame("s", 8))
      yield* a.journal.finish("s")
      yield* Fiber.join(fiber)
      expect(seqs(got)).toEqual([2, 3, 4, 5, 6, 7, 8])
      expect(got.map((e) => e.frame).join("")).toBe([2, 3, 4, 5, 6, 7, 8].map((i) => frame("s", i)).join(""))
      expect(yield* b.journal.read("s", 8)).toEqual({ events: [], finished: true })
      expect((yield* b.journal.read("s", 3)).finished).toBe(true)
      expect((yield* b.journal.read("s", 3, 1)).finished).toBe(false)
      expect(yield* a.journal.append("s", 9, frame("s", 9))).toBe("unknown")
      expect(yield* a.journal.state("s")).toMatchObject({ readers: 0, finished: true })
      // A follower of a finished stream replays and ends.
      expect(seqs([...yield* Stream.runCollect(b.journal.follow("s", 6))])).toEqual([7, 8])
    }))

  it.scoped("bounds drop the oldest events (a gap for a reader from before them); every key expires and carries the prefix", () =>
    Effect.gen(function*() {
      const prefix = freshPrefix()
      const a = yield* instance(prefix, { maxEventsPerStream: 3 })
      const b = yield* instance(prefix, { maxEventsPerStream: 3 })
      yield* a.journal.open("s", { owner: "", alias: "k/idem" })
      yield* fill(a.journal, "s", 1, 5)
      expect(yield* b.journal.state("s")).toMatchObject({ firstSeq: 3, lastSeq: 5 })
      expect(seqs((yield* b.journal.read("s", 2)).events)).toEqual([3, 4, 5])
      expect((yield* Effect.flip(b.journal.read("s", 1))).reason).toBe("gap")
      expect((yield* Effect.flip(Stream.runDrain(b.journal.follow("s", 0)))).reason).toBe("gap")

      const bySize = yield* instance(freshPrefix(), { maxBytesPerStream: Buffer.byteLength(frame("t", 1)) * 2 })
      yield* bySize.journal.open("t", { owner: "" })
      yield* fill(bySize.journal, "t", 1, 4)
      expect(seqs((yield* bySize.journal.read("t", 2)).events)).toEqual([3, 4])

      const { fiber, got } = yield* followInto(b.journal, "s", 4)
      yield* wait(() => got.length === 1, "a reader")
      const c = server.client()
      yield* Effect.addFinalizer(() => Effect.sync(() => c.disconnect()))
      const keys = (yield* Effect.promise(() => c.keys(`${prefix}*`))).sort()
      expect(keys).toEqual([`${prefix}journal-alias:k/idem`, `${prefix}journal:s:e`, `${prefix}journal:s:m`, `${prefix}journal:s:r`, `${prefix}journal:s:t`])
      for (const key of keys) expect(yield* Effect.promise(() => c.pttl(key)), key).toBeGreaterThan(0)
      yield* Fiber.interrupt(fiber)
    }))

  it.scoped("aliases are claimed once fleet-wide; cancel on B reaches A's writer; remove on A ends B's follower with gone", () =>
    Effect.gen(function*() {
      const prefix = freshPrefix()
      const a = yield* instance(prefix)
      const b = yield* instance(prefix)
      expect(yield* a.journal.open("s1", { owner: "k", alias: "k/key" })).toEqual({ _tag: "Opened" })
      expect(yield* b.journal.open("s2", { owner: "k", alias: "k/key" })).toEqual({ _tag: "Exists", streamId: "s1" })
      expect(yield* b.journal.resolve("k/key")).toEqual(Option.some("s1"))
      expect(yield* b.journal.state("s2")).toEqual({ _tag: "Unknown" })

      expect(yield* a.journal.append("s1", 1, "a")).toBe("ok")
      expect(yield* b.journal.cancel("s1")).toBe(true)
      expect(yield* a.journal.append("s1", 2, "b")).toBe("cancelled")
      expect(yield* b.journal.cancel("nope")).toBe(false)

      const follower = yield* Effect.fork(Effect.flip(Stream.runDrain(b.journal.follow("s1", 0))))
      yield* wait(() => true, "")
      yield* a.journal.remove("s1")
      expect((yield* Fiber.join(follower)).reason).toBe("gone")
      expect(yield* b.journal.state("s1")).toEqual({ _tag: "Expired", owner: "k" })
      expect(yield* b.journal.resolve("k/key")).toEqual(Option.none())
      expect(yield* b.journal.open("s3", { owner: "k", alias: "k/key" })).toEqual({ _tag: "Opened" })
    }))

  it.scoped("Redis killed mid-stream: A keeps journaling locally, B fails fast with unavailable; restarted: B replays every event and follows live", () =>
    Effect.gen(function*() {
      const prefix = freshPrefix()
      const fast = { commandTimeout: 100, healthCheckInterval: 50 }
      const a = yield* instance(prefix, {}, fast)
      const b = yield* instance(prefix, {}, fast)
      yield* a.journal.open("s", { owner: "" })
      yield* fill(a.journal, "s", 1, 3)

      const sent = [countCommands(a.redis.client), countCommands(b.redis.client)]
      yield* Effect.promise(() => server.kill())
      yield* fill(a.journal, "s", 4, 6)
      // The writer's own instance still reads its stream (from its local copy).
      expect(seqs((yield* a.journal.read("s", 0)).events)).toEqual([1, 2, 3, 4, 5, 6])
      expect((yield* Effect.flip(b.journal.read("s", 0))).reason).toBe("unavailable")
      expect((yield* Effect.flip(b.journal.state("s"))).reason).toBe("unavailable")
      // Fast because nothing waits on Redis: at most the first call of each instance (the one that
      // finds it gone) reaches the client.
      expect(sent.map((s) => s.sent <= 1)).toEqual([true, true])

      yield* Effect.promise(() => server.start())
      yield* wait(() => a.redis.isUp() && b.redis.isUp(), "both instances to see Redis again")
      // Restored from A's copy: B reads what was appended during the outage, then follows live.
      const { fiber, got } = yield* followInto(b.journal, "s", 2)
      yield* wait(() => got.length === 4, "the replay on B")
      yield* fill(a.journal, "s", 7, 8)
      yield* a.journal.finish("s")
      yield* Fiber.join(fiber)
      expect(seqs(got)).toEqual([3, 4, 5, 6, 7, 8])
      expect(got.map((e) => e.frame).join("")).toBe([3, 4, 5, 6, 7, 8].map((i) => frame("s", i)).join(""))
      expect(unhandled).toEqual([])
    }))
})
