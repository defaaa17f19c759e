import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type {
  AppendResult,
  JournalEvent,
  JournalOptionsInput,
  OpenOptions,
  OpenResult,
  ReadResult,
  StreamJournal,
  StreamState
} from "../StreamJournal.js"
import { JournalError, JournalOptions } from "../StreamJournal.js"
import { Fifo } from "./fifo.js"
import { FrameLog } from "./frameLog.js"

interface Entry {
  readonly id: string
  readonly owner: string
  readonly alias: string | undefined
  /**
   * The frames kept, oldest first (the last one's sequence number is `lastSeq`): text and
   * offsets, not an event object (nor a string tree) each, as a finished stream is kept for
   * minutes and there can be thousands of them for the collector to trace.
   */
  readonly frames: FrameLog
  lastSeq: number
  size: number
  finished: boolean
  cancelled: boolean
  expiresAt: number
  readers: number
  /** Readers waiting for more; made when the first one waits (most streams never have one). */
  waiters: Set<() => void> | undefined
  /** Dropped from the journal (its queues skip it). */
  dropped: boolean
}

interface Tombstone {
  readonly id: string
  readonly owner: string
  readonly expiresAt: number
  /** The alias an evicted stream keeps naming it by, so that a retry finds it gone (410), not a new generation. */
  readonly alias: string | undefined
}

/** The sequence number of the oldest frame kept. */
const firstSeqOf = (entry: Entry) => entry.lastSeq - entry.frames.length + 1

/** The kept frames from index `from` (0: the oldest kept), at most `limit`, as journal events. */
const eventsOf = (entry: Entry, from: number, limit: number): Array<JournalEvent> => {
  const to = Math.min(entry.frames.length, from + limit)
  const firstSeq = firstSeqOf(entry)
  const out: Array<JournalEvent> = []
  for (let i = from; i < to; i++) out.push({ seq: firstSeq + i, frame: entry.frames.at(i) })
  return out
}

/** One owner's streams, oldest first, how many, and their size. */
interface Owned {
  readonly entries: Fifo<Entry>
  count: number
  size: number
}

const isDropped = (entry: Entry) => entry.dropped

/** Full sweeps of expired streams run at most this often (expiry is also checked on each access). */
const SWEEP_EVERY_MS = 1_000

const gone = (streamId: string) => new JournalError({ reason: "gone", streamId, message: `stream ${streamId} is unknown or expired` })
const gap = (streamId: string, afterSeq: number, firstSeq: number) =>
  new JournalError({ reason: "gap", streamId, message: `stream ${streamId}: events after ${afterSeq} were dropped (oldest kept: ${firstSeq})` })

const wake = (entry: Entry) => {
  if (entry.waiters === undefined || entry.waiters.size === 0) return
  const waiters = [...entry.waiters]
  entry.waiters.clear()
  for (const w of waiters) w()
}

export const makeMemory = (input: JournalOptionsInput = {}): Effect.Effect<StreamJournal> =>
  // Decoded here, not at module load: this module and StreamJournal.ts import each other.
  Effect.flatMap(Effect.orDie(Schema.decodeUnknown(JournalOptions)(input, { errors: "all" })), (options) =>
    Effect.map(Effect.clock, (clock) => make(options, clock)))

// `clock` is the program's, read when the journal is made: `appendNow` runs off any fiber.
const make = (options: JournalOptions, clock: Clock.Clock): StreamJournal => {
  const finishedTtl = Duration.toMillis(options.finishedTtl)
  const idleTtl = Duration.toMillis(options.idleTtl)
  const tombstoneTtl = Duration.toMillis(options.tombstoneTtl)
  const maxTombstones = options.maxStreams * 4
  const streams = new Map<string, Entry>()
  // Every stream, oldest first (`streams` is for lookups).
  const byAge = new Fifo<Entry>(isDropped)
  const aliases = new Map<string, string>()
  const tombstones = new Map<string, Tombstone>()
  const tombstoneAges = new Fifo<Tombstone>((t) => tombstones.get(t.id) !== t)
  const owners = new Map<string, Owned>()
  let totalSize = 0
  let lastSweep = -Infinity

  const ownedBy = (owner: string): Owned => {
    let owned = owners.get(owner)
    if (owned === undefined) owners.set(owner, owned = { entries: new Fifo(isDropped), count: 0, size: 0 })
    return owned
  }

  const resize = (entry: Entry, delta: number) => {
    entry.size += delta
    totalSize += delta
    ownedBy(entry.owner).size += delta
  }

  const forget = (id: string) => {
    const t = tombstones.get(id)
    if (t === undefined) return
    tombstones.delete(id)
    tombstoneAges.forgot()
    if (t.alias !== undefined && aliases.get(t.alias) === id) aliases.delete(t.alias)
  }

  /** Drops a stream, leaving a tombstone; an evicted one keeps its alias (see `Tombstone`). */
  const drop = (entry: Entry, now: number, evicted = false) => {
    if (streams.get(entry.id) !== entry) return
    streams.delete(entry.id)
    entry.dropped = true
    byAge.forgot()
    const keepAlias = evicted && entry.alias !== undefined && aliases.get(entry.alias) === entry.id
    if (!keepAlias && entry.alias !== undefined && aliases.get(entry.alias) === entry.id) aliases.delete(entry.alias)
    resize(entry, -entry.size)
    const owned = owners.get(entry.owner)!
    owned.count--
    owned.entries.forgot()
    if (owned.count === 0) owners.delete(entry.owner)
    forget(entry.id)
    const tombstone: Tombstone = { id: entry.id, owner: entry.owner, expiresAt: now + tombstoneTtl, alias: keepAlias ? entry.alias : undefined }
    tombstones.set(entry.id, tombstone)
    tombstoneAges.push(tombstone)
    if (tombstones.size > maxTombstones) forget(tombstoneAges.oldest(() => true)!.id)
    wake(entry)
  }

  /** The entry if it exists and has not expired (an expired one is dropped on the way). */
  const live = (id: string, now: number): Entry | undefined => {
    const entry = streams.get(id)
    if (entry === undefined) return undefined
    if (now >= entry.expiresAt) {
      drop(entry, now)
      return undefined
    }
    return entry
  }

  const sweep = (now: number) => {
    if (now - lastSweep < SWEEP_EVERY_MS) return
    lastSweep = now
    for (const entry of streams.values()) if (now >= entry.expiresAt) drop(entry, now)
    for (const [id, t] of tombstones) if (now >= t.expiresAt) forget(id)
  }

  /** The oldest entry other than `keep` (finished ones only, if `finishedOnly`). */
  const oldest = (entries: Fifo<Entry> | undefined, keep: Entry | undefined, finishedOnly: boolean): Entry | undefined =>
    entries?.oldest((entry) => entry !== keep && (entry.finished || !finishedOnly))

  /**
   * Drops one stream to make room for `owner`, other than `keep`. An owner pays for its own
   * streams first: its oldest finished, then anyone's oldest finished (its events were
   * delivered to a connected client, most likely), then its own oldest live one, and only then
   * the oldest live stream of whoever holds the most.
   */
  const evictFor = (owner: string, now: number, keep?: Entry): boolean => {
    const own = owners.get(owner)?.entries
    let victim = oldest(own, keep, true) ?? oldest(byAge, keep, true) ?? oldest(own, keep, false)
    if (victim === undefined) {
      let largest: Owned | undefined
      for (const owned of owners.values()) {
        if (oldest(owned.entries, keep, false) !== undefined && (largest === undefined || owned.count > largest.count)) largest = owned
      }
      victim = largest === undefined ? undefined : oldest(largest.entries, keep, false)
    }
    if (victim === undefined) return false
    drop(victim, now, true)
    return true
  }

  /** Drops one of the owner's own streams, other than `keep` (finished ones first). */
  const evictOwn = (owner: string, now: number, keep?: Entry): boolean => {
    const own = owners.get(owner)?.entries
    const victim = oldest(own, keep, true) ?? oldest(own, keep, false)
    if (victim === undefined) return false
    drop(victim, now, true)
    return true
  }


  const readNow = (entry: Entry, afterSeq: number, limit: number): ReadResult | JournalError => {
    const first = firstSeqOf(entry)
    if (afterSeq >= entry.lastSeq) return { events: [], finished: entry.finished }
    if (afterSeq + 1 < first) return gap(entry.id, afterSeq, first)
    const from = afterSeq + 1 - first
    const events = eventsOf(entry, from, limit)
    const last = events.length === 0 ? afterSeq : events[events.length - 1]!.seq
    return { events, finished: entry.finished && last === entry.lastSeq }
  }

  const waitFor = (entry: Entry, cursor: number, now: number): Effect.Effect<void> => {
    const wait = Effect.async<void>((resume) => {
      // Checked again when the waiter is registered (the timeout below starts this in another
      // fiber): an append or finish in between would otherwise be a lost wake-up.
      if (entry.lastSeq > cursor || entry.finished || entry.cancelled) return resume(Effect.void)
      const w = () => resume(Effect.void)
      if (entry.waiters === undefined) entry.waiters = new Set()
      entry.waiters.add(w)
      return Effect.sync(() => {
        entry.waiters?.delete(w)
      })
    })
    // Wakes at the expiry too, so that a follower of a stream whose writer died does not hang.
    return Effect.ignore(Effect.timeout(wait, Duration.millis(Math.max(1, entry.expiresAt - now))))
  }

  const openAt = (streamId: string, opts: OpenOptions, now: number): OpenResult => {
    sweep(now)
    if (opts.alias !== undefined) {
      const existing = aliases.get(opts.alias)
      if (existing !== undefined && live(existing, now) !== undefined) return { _tag: "Exists", streamId: existing }
      // Evicted: the request was made and paid for; its retry learns the stream is gone.
      if (existing !== undefined && tombstones.get(existing)?.alias === opts.alias) return { _tag: "Exists", streamId: existing }
    }
    if (live(streamId, now) !== undefined) return { _tag: "Exists", streamId }
    while ((owners.get(opts.owner)?.count ?? 0) >= options.maxStreamsPerOwner && evictOwn(opts.owner, now)) {
      // evicting
    }
    while (streams.size >= options.maxStreams && evictFor(opts.owner, now)) {
      // evicting
    }
    const entry: Entry = {
      id: streamId,
      owner: opts.owner,
      alias: opts.alias,
      frames: new FrameLog(),
      lastSeq: 0,
      size: 0,
      finished: false,
      cancelled: false,
      expiresAt: now + idleTtl,
      readers: 0,
      waiters: undefined,
      dropped: false
    }
    streams.set(streamId, entry)
    byAge.push(entry)
    const owned = ownedBy(opts.owner)
    owned.entries.push(entry)
    owned.count++
    forget(streamId)
    if (opts.alias !== undefined) aliases.set(opts.alias, streamId)
    return { _tag: "Opened" }
  }

  const open = (streamId: string, opts: OpenOptions): Effect.Effect<OpenResult, JournalError> =>
    Effect.map(Clock.currentTimeMillis, (now) => openAt(streamId, opts, now))

  const openNow = (streamId: string, opts: OpenOptions): OpenResult => openAt(streamId, opts, clock.unsafeCurrentTimeMillis())

  const appendAt = (
    streamId: string,
    seq: number,
    frames: ReadonlyArray<string>,
    now: number,
    bytes?: Uint8Array | undefined,
    at?: number | undefined
  ): AppendResult => {
    const entry = live(streamId, now)
    if (entry === undefined || entry.finished) return "unknown"
    // Frames already kept (a repeated append) are skipped; a gap is a bug in the caller.
    const from = Math.max(0, entry.lastSeq + 1 - seq)
    if (from < frames.length) {
      if (seq + from !== entry.lastSeq + 1) throw new Error(`stream ${streamId}: append of ${seq + from} after ${entry.lastSeq}`)
      resize(entry, entry.frames.append(frames, from, bytes, at))
      entry.lastSeq = seq + frames.length - 1
    }
    entry.expiresAt = now + idleTtl
    while (entry.frames.length > 0 && (entry.frames.length > options.maxEventsPerStream || entry.size > options.maxBytesPerStream)) {
      resize(entry, -entry.frames.shift())
    }
    while (ownedBy(entry.owner).size > options.maxBytesPerOwner && evictOwn(entry.owner, now, entry)) {
      // evicting
    }
    while (totalSize > options.maxTotalBytes && evictFor(entry.owner, now, entry)) {
      // evicting
    }
    if (totalSize > options.maxTotalBytes || ownedBy(entry.owner).size > options.maxBytesPerOwner) drop(entry, now, true)
    wake(entry)
    if (streams.get(streamId) !== entry) return "unknown"
    return entry.cancelled ? "cancelled" : "ok"
  }

  const append = (streamId: string, seq: number, frame: string): Effect.Effect<AppendResult, JournalError> =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.try({ try: () => appendAt(streamId, seq, [frame], now), catch: (e) => e }).pipe(Effect.orDie))

  const appendNow = (
    streamId: string,
    seq: number,
    frames: ReadonlyArray<string>,
    bytes?: Uint8Array | undefined,
    at?: number | undefined
  ): AppendResult => appendAt(streamId, seq, frames, clock.unsafeCurrentTimeMillis(), bytes, at)

  const finishAt = (streamId: string, now: number): void => {
    const entry = live(streamId, now)
    if (entry === undefined || entry.finished) return
    entry.finished = true
    entry.expiresAt = now + finishedTtl
    wake(entry)
  }

  const finish = (streamId: string): Effect.Effect<void, JournalError> => Effect.map(Clock.currentTimeMillis, (now) => finishAt(streamId, now))

  const finishNow = (streamId: string): void => finishAt(streamId, clock.unsafeCurrentTimeMillis())

  const removeAt = (streamId: string, now: number): void => {
    const entry = streams.get(streamId)
    if (entry !== undefined) drop(entry, now)
  }

  const remove = (streamId: string): Effect.Effect<void, JournalError> => Effect.map(Clock.currentTimeMillis, (now) => removeAt(streamId, now))

  const removeNow = (streamId: string): void => removeAt(streamId, clock.unsafeCurrentTimeMillis())

  const cancel = (streamId: string): Effect.Effect<boolean, JournalError> =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      const entry = live(streamId, now)
      if (entry === undefined || entry.finished) return false
      entry.cancelled = true
      return true
    })

  const state = (streamId: string): Effect.Effect<StreamState, JournalError> =>
    Effect.map(Clock.currentTimeMillis, (now): StreamState => {
      const entry = live(streamId, now)
      if (entry !== undefined) {
        return {
          _tag: "Active",
          owner: entry.owner,
          firstSeq: firstSeqOf(entry),
          lastSeq: entry.lastSeq,
          finished: entry.finished,
          cancelled: entry.cancelled,
          readers: entry.readers
        }
      }
      const t = tombstones.get(streamId)
      if (t !== undefined && now < t.expiresAt) return { _tag: "Expired", owner: t.owner }
      return { _tag: "Unknown" }
    })

  const resolve = (alias: string): Effect.Effect<Option.Option<string>, JournalError> =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      const id = aliases.get(alias)
      return id !== undefined && live(id, now) !== undefined ? Option.some(id) : Option.none()
    })

  const read = (streamId: string, afterSeq: number, limit = Number.MAX_SAFE_INTEGER): Effect.Effect<ReadResult, JournalError> =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const entry = live(streamId, now)
      if (entry === undefined) return Effect.fail(gone(streamId))
      const result = readNow(entry, afterSeq, limit)
      return result instanceof JournalError ? Effect.fail(result) : Effect.succeed(result)
    })

  const follow = (streamId: string, afterSeq: number): Stream.Stream<JournalEvent, JournalError> =>
    Stream.unwrapScoped(Effect.gen(function*() {
      const now0 = yield* Clock.currentTimeMillis
      const entry = live(streamId, now0)
      if (entry === undefined) return yield* Effect.fail(gone(streamId))
      yield* Effect.acquireRelease(Effect.sync(() => entry.readers++), () => Effect.sync(() => entry.readers--))
      let cursor = afterSeq
      const next: Effect.Effect<Chunk.Chunk<JournalEvent>, Option.Option<JournalError>> = Effect.flatMap(
        Clock.currentTimeMillis,
        (now) => {
          if (live(streamId, now) !== entry) return Effect.fail(Option.some(gone(streamId)))
          const result = readNow(entry, cursor, Number.MAX_SAFE_INTEGER)
          if (result instanceof JournalError) return Effect.fail(Option.some(result))
          if (result.events.length > 0) {
            cursor = result.events[result.events.length - 1]!.seq
            return Effect.succeed(Chunk.unsafeFromArray(result.events))
          }
          if (result.finished) return Effect.fail(Option.none())
          return Effect.zipRight(waitFor(entry, cursor, now), next)
        }
      )
      return Stream.repeatEffectChunkOption(next)
    }))

  return { open, openNow, append, appendNow, finish, finishNow, remove, removeNow, cancel, state, resolve, read, follow }
}
