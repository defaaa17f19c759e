import { StreamReconnect } from "@breakwater/gateway"
import { StreamJournal } from "@breakwater/stream-resume"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"

describe("StreamReconnect.openNow", () => {
  it.effect("opens on the memory journal at once, as open does: a fresh stream, then the same Idempotency-Key's stream", () =>
    Effect.gen(function*() {
      const journal = yield* StreamJournal.makeMemory()
      const first = StreamReconnect.openNow(journal, "owner", "key-1", "chat")
      expect(first?._tag).toBe("Opened")
      const streamId = first?._tag === "Opened" ? first.journaled.streamId : ""
      expect(streamId).toMatch(/^bws_[0-9a-f]{32}$/)
      expect(yield* journal.state(streamId)).toMatchObject({ _tag: "Active", owner: "owner", finished: false })
      // The same owner's key names that stream; by the effect form too.
      expect(StreamReconnect.openNow(journal, "owner", "key-1", "chat")).toEqual({ _tag: "Exists", streamId })
      expect(yield* StreamReconnect.open(journal, "owner", "key-1", "chat")).toEqual({ _tag: "Exists", streamId })
      // Another owner's same key is another stream; a Messages stream says so in its id.
      const other = StreamReconnect.openNow(journal, "someone else", "key-1", "messages")
      expect(other?._tag === "Opened" && other.journaled.streamId.startsWith("bws_msg_")).toBe(true)
    }))

  it.effect("is undefined for a journal that cannot open synchronously (the host then opens it by an effect)", () =>
    Effect.gen(function*() {
      const memory = yield* StreamJournal.makeMemory()
      const { openNow: _, ...effectOnly } = memory
      expect(StreamReconnect.openNow(effectOnly, "owner", undefined, "chat")).toBeUndefined()
    }))
})
