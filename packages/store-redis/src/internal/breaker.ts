import { BreakerState, BreakerStore } from "@breakwater/circuit-breaker"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Metric from "effect/Metric"
import * as Schema from "effect/Schema"
import type { Redis } from "ioredis"
import type { RedisStore } from "../RedisStore.js"
import { fallbackTotal } from "./connection.js"

type State = BreakerState.BreakerState
type Versioned = BreakerStore.Versioned

/**
 * Compare-and-set on one breaker's hash (`v`: version, `s`: the state as JSON): write only if
 * the version is the one the caller read (0: absent), bump it, refresh the expiry. On a conflict
 * the stored version and state come back, so the caller retries without another read.
 */
const casScript = `
local cur = redis.call('HMGET', KEYS[1], 'v', 's')
local v = tonumber(cur[1] or '0')
if v ~= tonumber(ARGV[1]) then return {0, v, cur[2] or ''} end
redis.call('HSET', KEYS[1], 'v', v + 1, 's', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, v + 1}
`

type CasReply = [1, number] | [0, number, string]

interface CasClient extends Redis {
  breakwaterBreakerCas(key: string, expected: string, json: string, ttl: string): Promise<CasReply>
}

/** What Redis answered (raw, decoded outside the connection's error handling) or what local state said. */
type Answer<A> = { readonly remote: true; readonly value: A } | { readonly remote: false; readonly value: A }

const decodeState = Schema.decodeUnknownEither(BreakerState.BreakerStateFromJson)

const absent: Versioned = { state: BreakerState.initial, version: 0 }

export const make = (redis: RedisStore): Effect.Effect<BreakerStore.BreakerStore> =>
  Effect.gen(function*() {
    const client = redis.client as CasClient
    client.defineCommand("breakwaterBreakerCas", { numberOfKeys: 1, lua: casScript })
    const prefix = `${redis.options.prefix}breaker:`
    const fellBack = Metric.tagged(fallbackTotal, "store", "breaker")

    /**
     * This instance's local view: a copy of every state Redis returned or accepted, and the store
     * itself while Redis is down (so breakers keep tripping and probing on local counts, starting
     * from the last fleet state this instance saw).
     */
    const local = new Map<string, Versioned>()
    const ttls = new Map<string, number>()
    /** The Clock of the breaker's fibers, so reconcile reads the time its states were written with. */
    let callerClock: Clock.Clock | undefined

    const decode = (key: string, version: number, json: string): Effect.Effect<Versioned, BreakerStore.BreakerStoreError> => {
      if (json === "") return Effect.succeed(absent)
      const decoded = decodeState(json)
      return Either.isRight(decoded)
        ? Effect.sync(() => {
          const entry = { state: decoded.right, version }
          local.set(key, entry)
          return entry
        })
        : Effect.fail(new BreakerStore.BreakerStoreError({ message: `breaker state of ${key} in Redis does not decode`, cause: decoded.left }))
    }

    const localGet = (key: string) => local.get(key) ?? absent

    const get = (key: string): Effect.Effect<Versioned, BreakerStore.BreakerStoreError> =>
      Effect.flatMap(
        redis.use(
          (c) => c.hmget(prefix + key, "v", "s").then(([v, s]): Answer<[number, string]> => ({ remote: true, value: [Number(v ?? 0), s ?? ""] })),
          Effect.as(Metric.increment(fellBack), { remote: false, value: [0, ""] } as Answer<[number, string]>)
        ),
        (answer) => answer.remote ? decode(key, answer.value[0], answer.value[1]) : Effect.sync(() => localGet(key))
      )

    const localCas = (key: string, expected: number, next: State): BreakerStore.CompareAndSetResult => {
      const current = localGet(key)
      if (current.version !== expected) return { _tag: "Conflict", current }
      const version = expected + 1
      local.set(key, { state: next, version })
      return { _tag: "Written", version }
    }

    const compareAndSet = (
      key: string,
      expected: number,
      next: State,
      ttlMillis: number
    ): Effect.Effect<BreakerStore.CompareAndSetResult, BreakerStore.BreakerStoreError> =>
      Effect.clockWith((clock) => {
        callerClock = clock
        ttls.set(key, ttlMillis)
        const json = JSON.stringify(next)
        return Effect.flatMap(
          redis.use(
            (c) =>
              (c as CasClient).breakwaterBreakerCas(prefix + key, String(expected), json, String(Math.max(1, Math.ceil(ttlMillis))))
                .then((reply): Answer<CasReply> => ({ remote: true, value: reply })),
            Effect.as(Metric.increment(fellBack), { remote: false, value: [1, 0] } as Answer<CasReply>)
          ),
          (answer): Effect.Effect<BreakerStore.CompareAndSetResult, BreakerStore.BreakerStoreError> => {
            if (!answer.remote) return Effect.sync(() => localCas(key, expected, next))
            const reply = answer.value
            if (reply[0] === 1) {
              return Effect.sync(() => {
                local.set(key, { state: next, version: reply[1] })
                return { _tag: "Written", version: reply[1] } as const
              })
            }
            return Effect.map(decode(key, reply[1], reply[2]), (current) => ({ _tag: "Conflict", current }) as const)
          }
        )
      })

    // Reconcile: a breaker this instance holds open (tripped alone while Redis was down, or open
    // in the fleet before) and still open is written back unless Redis holds an opening that lasts
    // as long, with a generation above both so permits granted meanwhile on either side change
    // nothing; the fleet then fails fast on it too. Closed and half-open local states are not
    // written back: the fleet's own counts are as good, and probing restarts under its limit.
    yield* redis.onReconnect(Effect.gen(function*() {
      const now = callerClock === undefined ? yield* Clock.currentTimeMillis : callerClock.unsafeCurrentTimeMillis()
      const open = [...local].filter(([, e]) => e.state.phase === "open" && e.state.openUntil > now)
      const written: Array<string> = []
      for (const [key, mine] of open) {
        const ttl = ttls.get(key) ?? Duration.toMillis(Duration.hours(1))
        for (let attempt = 0; attempt < 8; attempt++) {
          const [v, s] = yield* Effect.tryPromise(() => client.hmget(prefix + key, "v", "s"))
          const remote = yield* decode(key, Number(v ?? 0), s ?? "")
          if (remote.state.phase === "open" && remote.state.openUntil >= mine.state.openUntil) break
          const next: State = { ...mine.state, generation: Math.max(remote.state.generation, mine.state.generation) + 1 }
          const reply = yield* Effect.tryPromise(() =>
            client.breakwaterBreakerCas(prefix + key, String(remote.version), JSON.stringify(next), String(Math.ceil(ttl)))
          )
          if (reply[0] === 1) {
            local.set(key, { state: next, version: reply[1] })
            written.push(key)
            break
          }
        }
      }
      if (written.length > 0) {
        yield* Effect.logInfo("redis store: breakers opened locally written back").pipe(Effect.annotateLogs({ circuits: written.join(",") }))
      }
    }))

    return { get, compareAndSet }
  })
