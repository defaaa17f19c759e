import { StreamJournal } from "@breakwater/stream-resume"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Fiber, Option, Stream, TestClock } from "effect"

const frame = (id: string, seq: number, text = "x") => `id: ${id}:${seq}\ndata: {"t":"${text}"}\n\n`

const fill = (journal: StreamJournal.StreamJournal, id: string, from: number, to: number) =>
  Effect.forEach(Array.from({ length: to - from + 1 }, (_, i) => from + i), (seq) => journal.append(id, seq, frame(id, seq)))

/** Lets forked fibers run up to their next wait. */
const settle = Effect.repeatN(Effect.yieldNow(), 20)

const seqs = (events: ReadonlyArray<StreamJournal.JournalEvent>) => events.map((e) => e.seq)

describe("StreamJournal (memory)", () => {
  it.effect("reads exactly the events after a sequence number, byte for byte", () =>
    Effect.gen(function*() {
      const journal = yield* StreamJournal.makeMemory()
      expect(yield* journal.open("s", { owner: "a" })).toEqual({ _tag: "Opened" })
      yield* fill(journal, "s", 1, 5)
      const after2 = yield* journal.read("s", 2)
      expect(seqs(after2.events)).toEqual([3, 4, 5])
      expect(after2.events.map((e) => e.frame).join("")).toBe(frame("s", 3) + frame("s", 4) + frame("s", 5))
      expect(after2.finished).toBe(false)
      expect(seqs((yield* journal.read("s", 0, 2)).events)).toEqual([1, 2])
      expect((yield* journal.read("s", 5)).events).toEqual([])
      yield* journal.finish("s")
      expect(yield* journal.read("s", 5)).toEqual({ events: [], finished: true })
      expect((yield* journal.read("s", 3)).finished).toBe(true)
      expect((yield* journal.read("s", 3, 1)).finished).toBe(false)
      // Appends after the finish are refused; a repeated seq is ignored.
      expect(yield* journal.append("s", 6, frame("s", 6))).toBe("unknown")
      expect((yield* journal.state("s"))).toMatchObject({ _tag: "Active", owner: "a", firstSeq: 1, lastSeq: 5, finished: true })
    }))

  it.effect("openNow, appendNow, finishNow and removeNow do synchronously what open, append, finish and remove do", () =>
    Effect.gen(function*() {
      const journal = yield* StreamJournal.makeMemory()
      expect(journal.openNow!("s", { owner: "a", alias: "k" })).toEqual({ _tag: "Opened" })
      // The alias is claimed and the id taken, as `open` claims them.
      expect(yield* journal.open("t", { owner: "a", alias: "k" })).toEqual({ _tag: "Exists", streamId: "s" })
      expect(journal.openNow!("s", { owner: "a" })).toEqual({ _tag: "Exists", streamId: "s" })
      expect(journal.appendNow!("s", 1, [frame("s", 1), frame("s", 2)])).toBe("ok")
      journal.finishNow!("s")
      expect(yield* journal.read("s", 0)).toEqual({ events: [{ seq: 1, frame: frame("s", 1) }, { seq: 2, frame: frame("s", 2) }], finished: true })
      expect(yield* journal.state("s")).toMatchObject({ _tag: "Active", owner: "a", lastSeq: 2, finished: true })
      journal.removeNow!("s")
      expect((yield* Effect.flip(journal.read("s", 0))).reason).toBe("gone")
      expect(yield* journal.resolve("k")).toEqual(Option.none())
    }))

  it.effect("a finished stream reads back byte for byte from any point, whole or in slices, also after its oldest events were dropped", () =>
    Effect.gen(function*() {
      const journal = yield* StreamJournal.makeMemory({ maxEventsPerStream: 6 })
      yield* journal.open("s", { owner: "" })
      // Frames of different lengths (and a multi-byte character), so a wrong offset shows.
      const frames = Array.from({ length: 9 }, (_, i) => frame("s", i + 1, "é".repeat(i) + "x".repeat(3 * i)))
      yield* Effect.forEach(frames, (f, i) => journal.append("s", i + 1, f))
      const live = yield* journal.read("s", 3)
      yield* journal.finish("s")
      const whole = yield* journal.read("s", 3)
      expect(seqs(whole.events)).toEqual([4, 5, 6, 7, 8, 9])
      expect(whole.events.map((e) => e.frame)).toEqual(frames.slice(3))
      expect(whole.events.map((e) => e.frame)).toEqual(live.events.map((e) => e.frame))
      expect(whole.finished).toBe(true)
      for (let after = 3; after < 9; after++) {
        const slice = yield* journal.read("s", after, 2)
        expect(seqs(slice.events)).toEqual([after + 1, after + 2].filter((n) => n <= 9))
        expect(slice.events.map((e) => e.frame)).toEqual(frames.slice(after, after + 2))
      }
      expect((yield* Effect.flip(journal.read("s", 2))).reason).toBe("gap")
      expect(yield* journal.state("s")).toMatchObject({ firstSeq: 4, lastSeq: 9, finished: true })
    }))

  it.effect("a repeated sequence number is ignored and a hole is a defect", () =>
    Effect.gen(function*() {
      const journal = yield* StreamJournal.makeMemory()
      yield* journal.open("s", { owner: "" })
      yield* fill(journal, "s", 1, 2)
      expect(yield* journal.append("s", 2, "other")).toBe("ok")
      expect((yield* journal.read("s", 1)).events[0]!.frame).toBe(frame("s", 2))
      const exit = yield* Effect.exit(journal.append("s", 4, "hole"))
      expect(Exit.isFailure(exit) && !Exit.isInterrupted(exit)).toBe(true)
    }))

  it.effect("per-stream bounds drop the oldest events; reading from before them is a gap", () =>
    Effect.gen(function*() {
      const journal = yield* StreamJournal.makeMemory({ maxEventsPerStream: 3 })
      yield* journal.open("s", { owner: "" })
      yield* fill(journal, "s", 1, 5)
      expect(yield* journal.state("s")).toMatchObject({ firstSeq: 3, lastSeq: 5 })
      expect(seqs((yield* journal.read("s", 2)).events)).toEqual([3, 4, 5])
      const err = yield* Effect.flip(journal.read("s", 1))
      expect(err.reason).toBe("gap")

      const bySize = yield* StreamJournal.makeMemory({ maxBytesPerStream: frame("t", 1).length * 2 })
      yield* bySize.open("t", { owner: "" })
      yield* fill(bySize, "t", 1, 4)
      expect(seqs((yield* bySize.read("t", 2)).events)).toEqual([3, 4])
    }))

  it.effect("overall bounds drop the oldest streams, finished ones first", () =>
    Effect.gen(function*() {
      const journal = yield* StreamJournal.makeMemory({ maxStreams: 2 })
      yield* journal.open("a", { owner: "" })
      yield* journal.open("b", { owner: "" })
      yield* journal.finish("b")
      yield* journal.open("c", { owner: "" })
      expect((yield* journal.state("a"))._tag).toBe("Active")
      expect(yield* journal.state("b")).toEqual({ _tag: "Expired", owner: "" })
      yield* journal.open("d", { owner: "" })
      expect((yield* journal.state("a"))._tag).toBe("Expired")

      const one = frame("x", 1).length
      const bySize = yield* StreamJournal.makeMemory({ maxTotalBytes: one * 3 })
      yield* bySize.open("x", { owner: "" })
      yield* bySize.open("y", { owner: "" })
      yield* fill(bySize, "x", 1, 2)
      yield* fill(bySize, "y", 1, 1)
      expect(yield* bySize.append("y", 2, frame("x", 2))).toBe("ok")
      expect((yield* bySize.state("x"))._tag).toBe("Expired")
      expect(seqs((yield* bySize.read("y", 0)).events)).toEqual([1, 2])
    }))

  describe("one owner's streams never push out another owner's (issue #17, finding 5)", () => {
    it.effect("many tiny finished streams of one key evict that key's own, not another key's detached finished stream", () =>
      Effect.gen(function*() {
        const journal = yield* StreamJournal.makeMemory({ maxStreams: 20 })
        // Key B's stream finished while its client was away: it waits, unread, for a reconnect.
        yield* journal.open("victim", { owner: "b", alias: "b/1" })
        yield* fill(journal, "victim", 1, 3)
        yield* journal.finish("victim")
        for (let i = 0; i < 200; i++) {
          const id = `a${i}`
          yield* journal.open(id, { owner: "a" })
          yield* fill(journal, id, 1, 1)
          yield* journal.finish(id)
        }
        expect(yield* journal.state("victim")).toMatchObject({ _tag: "Active", owner: "b", lastSeq: 3, finished: true })
        expect(seqs((yield* journal.read("victim", 0)).events)).toEqual([1, 2, 3])
      }))

    it.effect("one key's live streams are capped per owner (maxStreamsPerOwner) and evict its own oldest, not another key's live stream", () =>
      Effect.gen(function*() {
        const journal = yield* StreamJournal.makeMemory({ maxStreams: 20, maxStreamsPerOwner: 5 })
        yield* journal.open("victim", { owner: "b" })
        yield* fill(journal, "victim", 1, 2)
        for (let i = 0; i < 50; i++) {
          yield* journal.open(`a${i}`, { owner: "a" })
          yield* fill(journal, `a${i}`, 1, 1)
        }
        expect(yield* journal.state("victim")).toMatchObject({ _tag: "Active", owner: "b", lastSeq: 2, finished: false })
        // Key A keeps its newest five; its older ones are gone.
        for (let i = 45; i < 50; i++) expect((yield* journal.state(`a${i}`))._tag).toBe("Active")
        expect((yield* journal.state("a44"))._tag).toBe("Expired")
        // At the global cap, a key with nothing finished to give up pays with its own live streams first.
        const crowded = yield* StreamJournal.makeMemory({ maxStreams: 4, maxStreamsPerOwner: 4 })
        yield* crowded.open("victim", { owner: "b" })
        for (let i = 0; i < 10; i++) yield* crowded.open(`a${i}`, { owner: "a" })
        expect((yield* crowded.state("victim"))._tag).toBe("Active")
      }))

    it.effect("one key's bytes are capped per owner (maxBytesPerOwner); its own oldest go first", () =>
      Effect.gen(function*() {
        const one = frame("a0", 1).length
        const journal = yield* StreamJournal.makeMemory({ maxTotalBytes: one * 100, maxBytesPerOwner: one * 4 })
        yield* journal.open("victim", { owner: "b" })
        yield* fill(journal, "victim", 1, 2)
        for (let i = 0; i < 10; i++) {
          yield* journal.open(`a${i}`, { owner: "a" })
          yield* fill(journal, `a${i}`, 1, 2)
        }
        expect(seqs((yield* journal.read("victim", 0)).events)).toEqual([1, 2])
        expect((yield* journal.state("a9"))._tag).toBe("Active")
        expect((yield* journal.state("a0"))._tag).toBe("Expired")
      }))

    it.effect("an evicted stream keeps its alias: a retry with the same Idempotency-Key finds it expired, not a fresh stream", () =>
      Effect.gen(function*() {
        const journal = yield* StreamJournal.makeMemory({ maxStreams: 2, maxStreamsPerOwner: 2 })
        yield* journal.open("first", { owner: "a", alias: "a/key-1" })
        yield* journal.open("second", { owner: "a" })
        yield* journal.open("third", { owner: "a" })
        expect((yield* journal.state("first"))._tag).toBe("Expired")
        expect(yield* journal.open("retry", { owner: "a", alias: "a/key-1" })).toEqual({ _tag: "Exists", streamId: "first" })
        // A removed stream (it failed before reaching its client) frees its alias: the retry starts afresh.
        yield* journal.open("fourth", { owner: "a", alias: "a/key-2" })
        yield* journal.remove("fourth")
        expect(yield* journal.open("retry2", { owner: "a", alias: "a/key-2" })).toEqual({ _tag: "Opened" })
      }))
  })

  it.effect("expires a finished stream after finishedTtl, an idle one after idleTtl, then forgets the tombstone", () =>
    Effect.gen(function*() {
      const journal = yield* StreamJournal.makeMemory({ finishedTtl: "1 minute", idleTtl: "5 minutes", tombstoneTtl: "1 hour" })
      yield* journal.open("done", { owner: "k", alias: "k/1" })
      yield* journal.open("idle", { owner: "k" })
      yield* fill(journal, "done", 1, 2)
      yield* journal.finish("done")
      yield* TestClock.adjust("59 seconds")
      expect((yield* journal.state("done"))._tag).toBe("Active")
      expect(yield* journal.resolve("k/1")).toEqual(Option.some("done"))
      yield* TestClock.adjust("1 second")
      expect(yield* journal.state("done")).toEqual({ _tag: "Expired", owner: "k" })
      expect((yield* Effect.flip(journal.read("done", 0))).reason).toBe("gone")
      expect(yield* journal.resolve("k/1")).toEqual(Option.none())
      // The idle stream is renewed by an append.
      yield* journal.append("idle", 1, frame("idle", 1))
      yield* TestClock.adjust("4 minutes")
      expect((yield* journal.state("idle"))._tag).toBe("Active")
      yield* TestClock.adjust("1 minute")
      expect((yield* journal.state("idle"))._tag).toBe("Expired")
      yield* TestClock.adjust("1 hour")
      expect(yield* journal.state("done")).toEqual({ _tag: "Unknown" })
      expect(yield* journal.state("never")).toEqual({ _tag: "Unknown" })
    }))

  it.effect("an alias is claimed once: a second open with it names the first stream", () =>
    Effect.gen(function*() {
      const journal = yield* StreamJournal.makeMemory()
      expect(yield* journal.open("s1", { owner: "k", alias: "k/key" })).toEqual({ _tag: "Opened" })
      expect(yield* journal.open("s2", { owner: "k", alias: "k/key" })).toEqual({ _tag: "Exists", streamId: "s1" })
      expect((yield* journal.state("s2"))._tag).toBe("Unknown")
      yield* journal.remove("s1")
      expect(yield* journal.resolve("k/key")).toEqual(Option.none())
      expect(yield* journal.open("s3", { owner: "k", alias: "k/key" })).toEqual({ _tag: "Opened" })
    }))

  it.effect("cancel is seen by the writer's next append", () =>
    Effect.gen(function*() {
      const journal = yield* StreamJournal.makeMemory()
      yield* journal.open("s", { owner: "" })
      expect(yield* journal.append("s", 1, "a")).toBe("ok")
      expect(yield* journal.cancel("s")).toBe(true)
      expect(yield* journal.append("s", 2, "b")).toBe("cancelled")
      yield* journal.finish("s")
      expect(yield* journal.cancel("s")).toBe(false)
      expect(yield* journal.cancel("nope")).toBe(false)
    }))

  it.effect("follow replays after the sequence number, then follows live until the finish, counting as a reader", () =>
    Effect.gen(function*() {
      const journal = yield* StreamJournal.makeMemory()
      yield* journal.open("s", { owner: "" })
      yield* fill(journal, "s", 1, 3)
      const fiber = yield* Effect.fork(Stream.runCollect(journal.follow("s", 1)))
      yield* settle
      expect(yield* journal.state("s")).toMatchObject({ readers: 1 })
      yield* fill(journal, "s", 4, 5)
      yield* settle
      expect(fiber.unsafePoll()).toBeNull()
      yield* journal.append("s", 6, frame("s", 6))
      yield* journal.finish("s")
      const events = Chunk.toArray(yield* Fiber.join(fiber))
      expect(seqs(events)).toEqual([2, 3, 4, 5, 6])
      expect(events.map((e) => e.frame).join("")).toBe([2, 3, 4, 5, 6].map((n) => frame("s", n)).join(""))
      expect(yield* journal.state("s")).toMatchObject({ readers: 0 })
      // A finished stream: follow replays and ends.
      expect(seqs(Chunk.toArray(yield* Stream.runCollect(journal.follow("s", 4))))).toEqual([5, 6])
      expect(Chunk.toArray(yield* Stream.runCollect(journal.follow("s", 6)))).toEqual([])
    }))

  it.effect("a follower fails with gone when the stream is removed or expires, and with gap when it falls behind a bound", () =>
    Effect.gen(function*() {
      const journal = yield* StreamJournal.makeMemory({ idleTtl: "1 minute", maxEventsPerStream: 2 })
      yield* journal.open("s", { owner: "" })
      const removed = yield* Effect.fork(Effect.flip(Stream.runDrain(journal.follow("s", 0))))
      yield* settle
      yield* journal.remove("s")
      expect((yield* Fiber.join(removed)).reason).toBe("gone")

      yield* journal.open("t", { owner: "" })
      const expired = yield* Effect.fork(Effect.flip(Stream.runDrain(journal.follow("t", 0))))
      yield* settle
      yield* TestClock.adjust("1 minute")
      expect((yield* Fiber.join(expired)).reason).toBe("gone")

      yield* journal.open("u", { owner: "" })
      expect((yield* Effect.flip(Stream.runDrain(journal.follow("nope", 0)))).reason).toBe("gone")
      yield* fill(journal, "u", 1, 4)
      expect((yield* Effect.flip(Stream.runDrain(journal.follow("u", 0)))).reason).toBe("gap")
    }))

  it("parses and formats event ids", () => {
    expect(StreamJournal.eventId("bw_abc", 12)).toBe("bw_abc:12")
    expect(StreamJournal.parseEventId("bw_abc:12")).toEqual({ streamId: "bw_abc", seq: 12 })
    expect(StreamJournal.parseEventId("a:b:3")).toEqual({ streamId: "a:b", seq: 3 })
    expect(StreamJournal.parseEventId("abc")).toBeUndefined()
    expect(StreamJournal.parseEventId(":3")).toBeUndefined()
    expect(StreamJournal.parseEventId("a:x")).toBeUndefined()
  })
})
