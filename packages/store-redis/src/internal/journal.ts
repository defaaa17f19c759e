import { StreamJournal } from "@breakwater/stream-resume"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { Redis } from "ioredis"
import type { RedisStore } from "../RedisStore.js"
import { fallbackTotal } from "./connection.js"

type JournalError = StreamJournal.JournalError
const JournalError = StreamJournal.JournalError

/**
 * Per stream id `<id>`, under `<prefix>journal:`: `<id>:m` a hash (owner, alias, first and last
 * sequence numbers, size, finished, cancelled), `<id>:e` a list of the kept frames (the first is
 * event `first`), `<id>:t` the tombstone (the owner), `<id>:r` a sorted set of readers (score:
 * until when each counts). `<prefix>journal-alias:<alias>` names a stream. Every key has an
 * expiry: the stream's keys the idle TTL (renewed by each append) or, once finished, the
 * finished TTL; the tombstone that much plus the tombstone TTL, so it outlives the stream.
 * Frame sizes are counted in bytes (the memory store counts string length).
 */
const openScript = `
local meta, list, tomb, akey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, owner, alias, idle, tombTtl, base = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
if alias ~= '' then
  local existing = redis.call('GET', akey)
  if existing and redis.call('EXISTS', base .. existing .. ':m') == 1 then return {0, existing} end
end
if redis.call('EXISTS', meta) == 1 then return {0, id} end
redis.call('DEL', list)
redis.call('HSET', meta, 'owner', owner, 'alias', alias, 'first', 1, 'last', 0, 'size', 0, 'finished', 0, 'cancelled', 0)
redis.call('PEXPIRE', meta, idle)
redis.call('SET', tomb, owner, 'PX', idle + tombTtl)
if alias ~= '' then redis.call('SET', akey, id, 'PX', idle) end
return {1, id}
`

const appendScript = `
local meta, list, tomb, akey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local seq, frame, maxEvents, maxBytes, idle, tombTtl = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local m = redis.call('HMGET', meta, 'last', 'finished', 'cancelled', 'size', 'first', 'alias')
if not m[1] or m[2] == '1' then return 'unknown' end
local result = m[3] == '1' and 'cancelled' or 'ok'
local last = tonumber(m[1])
if seq <= last then return result end
if seq ~= last + 1 then return 'order' end
redis.call('RPUSH', list, frame)
local size = tonumber(m[4]) + string.len(frame)
local first = tonumber(m[5])
local count = seq - first + 1
while count > 0 and (count > maxEvents or size > maxBytes) do
  local dropped = redis.call('LPOP', list)
  size = size - string.len(dropped)
  first = first + 1
  count = count - 1
end
redis.call('HSET', meta, 'last', seq, 'size', size, 'first', first)
redis.call('PEXPIRE', meta, idle)
redis.call('PEXPIRE', list, idle)
redis.call('PEXPIRE', tomb, idle + tombTtl)
if m[6] and m[6] ~= '' then redis.call('PEXPIRE', akey, idle) end
return result
`

const finishScript = `
local meta, list, tomb, akey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local ttl, tombTtl = tonumber(ARGV[1]), tonumber(ARGV[2])
local m = redis.call('HMGET', meta, 'finished', 'alias')
if not m[1] or m[1] == '1' then return 0 end
redis.call('HSET', meta, 'finished', 1)
redis.call('PEXPIRE', meta, ttl)
redis.call('PEXPIRE', list, ttl)
redis.call('PEXPIRE', tomb, ttl + tombTtl)
if m[2] ~= '' then redis.call('PEXPIRE', akey, ttl) end
return 1
`

const removeScript = `
local meta, list, tomb, akey, readers = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, tombTtl = ARGV[1], tonumber(ARGV[2])
local owner = redis.call('HGET', meta, 'owner')
if not owner then return 0 end
if redis.call('GET', akey) == id then redis.call('DEL', akey) end
redis.call('DEL', meta, list, readers)
redis.call('SET', tomb, owner, 'PX', tombTtl)
return 1
`

const cancelScript = `
local m = redis.call('HMGET', KEYS[1], 'finished')
if not m[1] or m[1] == '1' then return 0 end
redis.call('HSET', KEYS[1], 'cancelled', 1)
return 1
`

const stateScript = `
local meta, tomb, readers = KEYS[1], KEYS[2], KEYS[3]
local now = tonumber(ARGV[1])
local m = redis.call('HMGET', meta, 'owner', 'first', 'last', 'finished', 'cancelled')
if not m[1] then
  local owner = redis.call('GET', tomb)
  if owner then return {'expired', owner} end
  return {'unknown'}
end
redis.call('ZREMRANGEBYSCORE', readers, '-inf', now)
return {'active', m[1], tonumber(m[2]), tonumber(m[3]), tonumber(m[4]), tonumber(m[5]), redis.call('ZCARD', readers)}
`

const readScript = `
local meta, list = KEYS[1], KEYS[2]
local after, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local m = redis.call('HMGET', meta, 'first', 'last', 'finished')
if not m[1] then return {'gone'} end
local first, last, finished = tonumber(m[1]), tonumber(m[2]), m[3] == '1'
if after >= last then return {'ok', finished and 1 or 0, after} end
if after + 1 < first then return {'gap', first} end
local from = after + 1 - first
local frames = redis.call('LRANGE', list, from, from + limit - 1)
local upto = after + #frames
if #frames == 0 and upto < last then return {'gap', first} end
local out = {'ok', (finished and upto == last) and 1 or 0, upto}
for i = 1, #frames do out[#out + 1] = frames[i] end
return out
`

/** Writes a whole stream as this instance's local copy has it (reconcile after an outage). */
const restoreScript = `
local meta, list, tomb, akey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, owner, alias, first, last, finished, cancelled, ttl, tombTtl = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], ARGV[7], tonumber(ARGV[8]), tonumber(ARGV[9])
local m = redis.call('HMGET', meta, 'last', 'cancelled', 'finished')
if m[1] and (tonumber(m[1]) > last or (tonumber(m[1]) == last and (m[3] == '1' or finished == '0'))) then return 0 end
if m[2] == '1' then cancelled = '1' end
redis.call('DEL', list)
local size = 0
for i = 10, #ARGV do
  redis.call('RPUSH', list, ARGV[i])
  size = size + string.len(ARGV[i])
end
redis.call('HSET', meta, 'owner', owner, 'alias', alias, 'first', first, 'last', last, 'size', size, 'finished', finished, 'cancelled', cancelled)
redis.call('PEXPIRE', meta, ttl)
if #ARGV >= 10 then redis.call('PEXPIRE', list, ttl) end
redis.call('SET', tomb, owner, 'PX', ttl + tombTtl)
if alias ~= '' then redis.call('SET', akey, id, 'PX', ttl) end
return 1
`

interface JournalClient extends Redis {
  bwJournalOpen(meta: string, list: string, tomb: string, akey: string, ...args: Array<string>): Promise<[number, string]>
  bwJournalAppend(meta: string, list: string, tomb: string, akey: string, ...args: Array<string>): Promise<string>
  bwJournalFinish(meta: string, list: string, tomb: string, akey: string, ...args: Array<string>): Promise<number>
  bwJournalRemove(meta: string, list: string, tomb: string, akey: string, readers: string, ...args: Array<string>): Promise<number>
  bwJournalCancel(meta: string): Promise<number>
  bwJournalState(meta: string, tomb: string, readers: string, now: string): Promise<Array<string | number>>
  bwJournalRead(meta: string, list: string, after: string, limit: string): Promise<Array<string | number>>
  bwJournalRestore(meta: string, list: string, tomb: string, akey: string, ...args: Array<string>): Promise<number>
}

export interface Options extends StreamJournal.JournalOptions {
  readonly pollInterval: Duration.Duration
}

/** How long a follower counts as a reader after its last poll. */
const READER_LEASE_MS = 5_000
/** Events per read while catching up. */
const BATCH = 500

const unavailable = (streamId: string) =>
  new JournalError({ reason: "unavailable", streamId, message: `stream ${streamId}: Redis is unreachable and this instance does not hold it` })
const gone = (streamId: string) => new JournalError({ reason: "gone", streamId, message: `stream ${streamId} is unknown or expired` })
const gap = (streamId: string, afterSeq: number, firstSeq: number) =>
  new JournalError({ reason: "gap", streamId, message: `stream ${streamId}: events after ${afterSeq} were dropped (oldest kept: ${firstSeq})` })

/** A Redis answer, or the sign that the call was served without Redis. */
const LOCAL = Symbol("local")
type Local = typeof LOCAL

export const make = (redis: RedisStore, options: Options): Effect.Effect<StreamJournal.StreamJournal> =>
  Effect.gen(function*() {
    const client = redis.client as JournalClient
    const define = (name: string, numberOfKeys: number, lua: string) => client.defineCommand(name, { numberOfKeys, lua })
    define("bwJournalOpen", 4, openScript)
    define("bwJournalAppend", 4, appendScript)
    define("bwJournalFinish", 4, finishScript)
    define("bwJournalRemove", 5, removeScript)
    define("bwJournalCancel", 1, cancelScript)
    define("bwJournalState", 3, stateScript)
    define("bwJournalRead", 2, readScript)
    define("bwJournalRestore", 4, restoreScript)

    // The local journal: every stream this instance writes is kept here too (with the same
    // bounds), so its own streams stay readable while Redis is down and can be restored after.
    const local = yield* StreamJournal.makeMemory(options)
    const fellBack = Metric.tagged(fallbackTotal, "store", "journal")
    const live = Clock.make()

    const base = `${redis.options.prefix}journal:`
    const keys = (id: string) => ({ meta: `${base}${id}:m`, list: `${base}${id}:e`, tomb: `${base}${id}:t`, readers: `${base}${id}:r` })
    const aliasKey = (alias: string | undefined) => `${redis.options.prefix}journal-alias:${alias ?? ""}`
    const idle = String(Duration.toMillis(options.idleTtl))
    const finishedTtl = String(Duration.toMillis(options.finishedTtl))
    const tombTtl = String(Duration.toMillis(options.tombstoneTtl))
    const pollMillis = Math.max(1, Duration.toMillis(options.pollInterval))

    /** Streams this instance writes: their alias, and whether Redis missed some of their writes. */
    const written = new Map<string, { readonly alias: string | undefined; dirty: boolean }>()
    /** Local followers waiting for the next event of a stream (woken by this instance's appends). */
    const waiters = new Map<string, Set<() => void>>()

    const wake = (id: string) => {
      const set = waiters.get(id)
      if (set === undefined) return
      waiters.delete(id)
      for (const w of set) w()
    }

    const remote = <A>(op: (c: JournalClient) => Promise<A>): Effect.Effect<A | Local> =>
      redis.use<A | Local>((c) => op(c as JournalClient), Effect.as(Metric.increment(fellBack), LOCAL as Local))

    /** Forgets the streams the local copy no longer holds (expired or evicted). */
    const prune = Effect.suspend(() =>
      Effect.forEach([...written.keys()], (id) =>
        Effect.map(local.state(id), (s) => {
          if (s._tag !== "Active") written.delete(id)
        }), { discard: true })
    )

    /** The Clock of the writers' fibers (the local copy's time). */
    let callerClock: Clock.Clock | undefined

    const open = (streamId: string, opts: StreamJournal.OpenOptions) =>
      Effect.gen(function*() {
        callerClock = yield* Effect.clock
        const k = keys(streamId)
        const answer = yield* remote((c) =>
          c.bwJournalOpen(k.meta, k.list, k.tomb, aliasKey(opts.alias), streamId, opts.owner, opts.alias ?? "", idle, tombTtl, base)
        )
        if (answer !== LOCAL && answer[0] === 0) return { _tag: "Exists", streamId: answer[1] } as const
        if (answer === LOCAL) {
          // Alone, the local journal decides (aliases included) until Redis is back.
          const mine = yield* local.open(streamId, opts)
          if (mine._tag === "Exists") return mine
        } else {
          // Redis claimed the alias; the local copy only mirrors this stream (an old copy of the id is stale).
          const mine = yield* local.open(streamId, { owner: opts.owner })
          if (mine._tag === "Exists") {
            yield* local.remove(streamId)
            yield* local.open(streamId, { owner: opts.owner })
          }
        }
        written.set(streamId, { alias: opts.alias, dirty: answer === LOCAL })
        if (written.size > options.maxStreams) yield* prune
        return { _tag: "Opened" } as const
      })

    const append = (streamId: string, seq: number, frame: string) =>
      Effect.gen(function*() {
        const mine = yield* local.append(streamId, seq, frame)
        wake(streamId)
        const entry = written.get(streamId)
        if (mine === "unknown" || entry === undefined) {
          if (mine === "unknown") written.delete(streamId)
          return mine
        }
        if (entry.dirty) return mine
        const k = keys(streamId)
        const answer = yield* remote((c) =>
          c.bwJournalAppend(
            k.meta, k.list, k.tomb, aliasKey(entry.alias),
            String(seq), frame, String(options.maxEventsPerStream), String(options.maxBytesPerStream), idle, tombTtl
          )
        )
        if (answer === LOCAL || answer === "unknown" || answer === "order") {
          // Redis missed writes (down, or restarted empty): restored from the local copy on reconnect.
          entry.dirty = true
          if (answer !== LOCAL) yield* Effect.ignore(restore(streamId))
          return mine
        }
        return answer === "cancelled" ? "cancelled" as const : mine
      })

    const finish = (streamId: string) =>
      Effect.gen(function*() {
        yield* local.finish(streamId)
        wake(streamId)
        const entry = written.get(streamId)
        if (entry === undefined || entry.dirty) return
        const k = keys(streamId)
        const answer = yield* remote((c) => c.bwJournalFinish(k.meta, k.list, k.tomb, aliasKey(entry.alias), finishedTtl, tombTtl))
        if (answer === LOCAL) entry.dirty = true
      })

    const remove = (streamId: string) =>
      Effect.gen(function*() {
        yield* local.remove(streamId)
        wake(streamId)
        const entry = written.get(streamId)
        written.delete(streamId)
        const k = keys(streamId)
        yield* remote((c) => c.bwJournalRemove(k.meta, k.list, k.tomb, aliasKey(entry?.alias), k.readers, streamId, tombTtl))
      })

    const cancel = (streamId: string) =>
      Effect.gen(function*() {
        const mine = written.has(streamId) ? yield* local.cancel(streamId) : false
        const answer = yield* remote((c) => c.bwJournalCancel(keys(streamId).meta))
        if (answer === LOCAL) {
          if (written.has(streamId)) return mine
          return yield* Effect.fail(unavailable(streamId))
        }
        return answer === 1 || mine
      })

    const localState = (streamId: string) =>
      Effect.flatMap(local.state(streamId), (s) =>
        s._tag === "Unknown" && !redis.isUp() && !written.has(streamId) ? Effect.fail(unavailable(streamId)) : Effect.succeed(s))

    const state = (streamId: string): Effect.Effect<StreamJournal.StreamState, JournalError> =>
      Effect.gen(function*() {
        const k = keys(streamId)
        const now = yield* Clock.currentTimeMillis
        const answer = yield* remote((c) => c.bwJournalState(k.meta, k.tomb, k.readers, String(now)))
        if (answer === LOCAL) return yield* localState(streamId)
        if (answer[0] === "active") {
          const localReaders = waiters.get(streamId)?.size ?? 0
          return {
            _tag: "Active",
            owner: String(answer[1]),
            firstSeq: Number(answer[2]),
            lastSeq: Number(answer[3]),
            finished: answer[4] === 1,
            cancelled: answer[5] === 1,
            readers: Math.max(Number(answer[6]), localReaders)
          } as const
        }
        // Redis does not have it (restarted empty?) but this instance writes it: its copy answers.
        if (written.has(streamId)) return yield* local.state(streamId)
        return answer[0] === "expired" ? { _tag: "Expired", owner: String(answer[1]) } as const : { _tag: "Unknown" } as const
      })

    const resolve = (alias: string): Effect.Effect<Option.Option<string>, JournalError> =>
      Effect.gen(function*() {
        const answer = yield* remote(async (c) => {
          const id = await c.get(aliasKey(alias))
          return id !== null && (await c.exists(keys(id).meta)) === 1 ? id : null
        })
        if (answer === LOCAL || answer === null) return yield* local.resolve(alias)
        return Option.some(answer)
      })

    const read = (streamId: string, afterSeq: number, limit = Number.MAX_SAFE_INTEGER): Effect.Effect<StreamJournal.ReadResult, JournalError> =>
      Effect.gen(function*() {
        const k = keys(streamId)
        const answer = yield* remote((c) => c.bwJournalRead(k.meta, k.list, String(afterSeq), String(Math.min(limit, 1_000_000_000))))
        if (answer === LOCAL || (answer[0] === "gone" && written.has(streamId))) {
          return yield* Effect.catchIf(
            local.read(streamId, afterSeq, limit),
            (e) => e.reason === "gone" && answer === LOCAL && !written.has(streamId),
            () => Effect.fail(unavailable(streamId))
          )
        }
        if (answer[0] === "gone") return yield* Effect.fail(gone(streamId))
        if (answer[0] === "gap") return yield* Effect.fail(gap(streamId, afterSeq, Number(answer[1])))
        const frames = answer.slice(3) as Array<string>
        return {
          events: frames.map((frame, i) => ({ seq: afterSeq + 1 + i, frame })),
          finished: answer[1] === 1
        }
      })

    /** Until this instance appends to the stream, or `pollMillis` passed (real time: another instance may have). */
    const waitForEvent = (streamId: string) =>
      Effect.async<void>((resume) => {
        let set = waiters.get(streamId)
        if (set === undefined) waiters.set(streamId, set = new Set())
        const w = () => {
          clearTimeout(timer)
          resume(Effect.void)
        }
        const timer = setTimeout(() => {
          waiters.get(streamId)?.delete(w)
          resume(Effect.void)
        }, pollMillis)
        set.add(w)
        return Effect.sync(() => {
          clearTimeout(timer)
          waiters.get(streamId)?.delete(w)
        })
      })

    const follow = (streamId: string, afterSeq: number): Stream.Stream<StreamJournal.JournalEvent, JournalError> =>
      Stream.unwrapScoped(Effect.gen(function*() {
        const reader = Math.random().toString(36).slice(2, 12)
        const k = keys(streamId)
        let lastBeat = -Infinity
        const beat = Effect.suspend(() => {
          const now = live.unsafeCurrentTimeMillis()
          if (now - lastBeat < READER_LEASE_MS / 5) return Effect.void
          lastBeat = now
          return Effect.asVoid(remote((c) =>
            c.multi().zadd(k.readers, now + READER_LEASE_MS, reader).pexpire(k.readers, READER_LEASE_MS * 2).exec()
          ))
        })
        yield* Effect.addFinalizer(() => Effect.asVoid(remote((c) => c.zrem(k.readers, reader))))
        let cursor = afterSeq
        // The first read fails at once on an unknown, expired or gapped stream.
        const first = yield* read(streamId, cursor, BATCH)
        let pending: StreamJournal.ReadResult | undefined = first
        const next: Effect.Effect<Chunk.Chunk<StreamJournal.JournalEvent>, Option.Option<JournalError>> = Effect.suspend(() => {
          const got = pending !== undefined ? Effect.succeed(pending) : read(streamId, cursor, BATCH)
          pending = undefined
          return Effect.flatMap(Effect.mapError(got, Option.some), (result) => {
            if (result.events.length > 0) {
              cursor = result.events[result.events.length - 1]!.seq
              return Effect.as(beat, Chunk.unsafeFromArray(result.events))
            }
            if (result.finished) return Effect.fail(Option.none())
            return Effect.zipRight(Effect.zipRight(beat, waitForEvent(streamId)), next)
          })
        })
        return Stream.repeatEffectChunkOption(next)
      }))

    /** Writes a stream this instance holds to Redis as it holds it (reconcile). */
    const restore = (streamId: string): Effect.Effect<void, unknown> =>
      Effect.gen(function*() {
        const entry = written.get(streamId)
        if (entry === undefined) return
        const s = yield* local.state(streamId)
        if (s._tag !== "Active") {
          written.delete(streamId)
          return
        }
        const { events } = yield* local.read(streamId, s.firstSeq - 1)
        const k = keys(streamId)
        yield* Effect.tryPromise(() =>
          client.bwJournalRestore(
            k.meta, k.list, k.tomb, aliasKey(entry.alias),
            streamId, s.owner, entry.alias ?? "", String(s.firstSeq), String(s.lastSeq),
            s.finished ? "1" : "0", s.cancelled ? "1" : "0", s.finished ? finishedTtl : idle, tombTtl,
            ...events.map((e) => e.frame)
          )
        )
        entry.dirty = false
      })

    // Reconcile: the streams this instance holds are written back from its local copy where Redis
    // missed writes (it was down, or restarted empty), so a reconnect elsewhere finds them whole.
    // The local copy keeps time by the writers' Clock: reconcile reads it on that Clock too.
    yield* redis.onReconnect(Effect.suspend(() => {
      const restoreAll = Effect.forEach([...written.keys()], restore, { discard: true })
      return callerClock === undefined ? restoreAll : Effect.withClock(restoreAll, callerClock)
    }))

    return { open, append, finish, remove, cancel, state, resolve, read, follow }
  })
