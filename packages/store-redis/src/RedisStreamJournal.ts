/**
 * The client-resume journal in Redis: the events of a stream, appended by the instance that
 * serves it, can be replayed and followed live by any instance, so a client that reconnects with
 * `Last-Event-ID` and lands elsewhere gets exactly what it missed, then the rest.
 *
 * Per stream: a hash (owner, alias, first and last sequence numbers, size, finished, cancelled)
 * and a list of the kept frames, each operation one Lua script; the per-stream bounds of
 * `StreamJournal.JournalOptions` (oldest events dropped first), an expiry on every key (the idle
 * TTL renewed by each append, the finished TTL after `finish`, a tombstone that outlives the
 * stream so it reads "expired"), `SET`-once aliases. The overall and per-owner bounds
 * (`maxStreams`, `maxTotalBytes`, `maxStreamsPerOwner`, `maxBytesPerOwner`) bound the local copy
 * only; in Redis streams leave by expiry (which runs no script, so a per-owner index would drift)
 * and memory is Redis's own: set `maxmemory` with a `volatile-*` eviction policy.
 *
 * Following live: a follower on the writing instance is woken by each append at once; on
 * another instance it polls Redis every `pollInterval` (100 ms): that is the bound on how late
 * a live event reaches a reader on another instance.
 *
 * Degradation: the writing instance keeps every stream it writes in a local in-memory journal
 * too (same bounds), so while Redis is down its own streams stay readable and followable there;
 * a stream written elsewhere then fails with `unavailable`. Reconcile when Redis returns (or
 * when an append finds that Redis lost a stream): each stream this instance still holds and
 * Redis missed writes of is written back whole from the local copy, unless Redis has more.
 *
 * @since 0.1.0
 */
import { Durations } from "@breakwater/core"
import { StreamJournal } from "@breakwater/stream-resume"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as internal from "./internal/journal.js"
import { RedisStore } from "./RedisStore.js"

/**
 * The journal's settings: `StreamJournal.JournalOptions` (bounds and TTLs, same defaults) and
 * `pollInterval` (100 ms): how often a follower on another instance than the writer's checks
 * for new events.
 *
 * @since 0.1.0
 * @category schemas
 */
export const RedisJournalOptions = Schema.Struct({
  ...StreamJournal.JournalOptions.fields,
  pollInterval: Schema.optionalWith(Durations.DurationInput, { default: () => Duration.millis(100) })
})

/**
 * The journal's settings as a user writes them (every field optional).
 *
 * @since 0.1.0
 * @category models
 */
export type RedisJournalOptionsInput = typeof RedisJournalOptions.Encoded

const decode = Schema.decodeUnknown(RedisJournalOptions)

/**
 * A stream journal over a Redis connection. Invalid options are a defect.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (redis: RedisStore, options: RedisJournalOptionsInput = {}): Effect.Effect<StreamJournal.StreamJournal> =>
  Effect.flatMap(Effect.orDie(decode(options, { errors: "all" })), (settings) => internal.make(redis, settings))

/**
 * Provides the host's `StreamJournal` from Redis (needs `RedisStore.layer`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: RedisJournalOptionsInput = {}): Layer.Layer<StreamJournal.StreamJournal, never, RedisStore> =>
  Layer.effect(StreamJournal.StreamJournal, Effect.flatMap(RedisStore, (redis) => make(redis, options)))
