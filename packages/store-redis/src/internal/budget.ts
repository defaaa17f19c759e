import { RetryBudget } from "@breakwater/retry"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import type { Redis } from "ioredis"
import type { RedisStore } from "../RedisStore.js"
import { fallbackTotal } from "./connection.js"

/**
 * The in-memory budget's algorithm (one-second buckets over a sliding window, a per-second floor,
 * then the ratio), in one script so that adding requests, reading the window and taking a token
 * are one atomic step across the fleet. One hash per budget: `q<second>` requests and
 * `r<second>` retries. Memory is bounded: fields older than the window are swept when the hash
 * grows past twice the window, and the whole key expires a window after its last use.
 */
export const script = `
local key = KEYS[1]
local now = tonumber(ARGV[1])
local requests = tonumber(ARGV[2])
local retry = ARGV[3] == '1'
local ratio = tonumber(ARGV[4])
local floor = tonumber(ARGV[5])
local window = tonumber(ARGV[6])
local second = math.floor(now / 1000)
local size = math.max(1, math.ceil(window / 1000))
if requests > 0 then redis.call('HINCRBY', key, 'q' .. second, requests) end
local allowed = 1
if retry then
  local here = tonumber(redis.call('HGET', key, 'r' .. second) or '0')
  if here >= floor then
    local fields = {}
    for s = second - size + 1, second do
      fields[#fields + 1] = 'q' .. s
      fields[#fields + 1] = 'r' .. s
    end
    local values = redis.call('HMGET', key, unpack(fields))
    local q, r = 0, 0
    for i = 1, #values, 2 do
      q = q + tonumber(values[i] or '0')
      r = r + tonumber(values[i + 1] or '0')
    end
    if r >= ratio * q then allowed = 0 end
  end
  if allowed == 1 then redis.call('HINCRBY', key, 'r' .. second, 1) end
end
if redis.call('HLEN', key) > 2 * size + 8 then
  for _, f in ipairs(redis.call('HKEYS', key)) do
    local s = tonumber(string.sub(f, 2))
    if s == nil or s <= second - size then redis.call('HDEL', key, f) end
  end
end
redis.call('PEXPIRE', key, window + 2000)
return allowed
`

interface BudgetClient extends Redis {
  breakwaterBudget(key: string, ...args: Array<string>): Promise<number>
}

export const make = (redis: RedisStore): Effect.Effect<RetryBudget.RetryBudgetStore> =>
  Effect.gen(function*() {
    const local = yield* RetryBudget.makeMemory
    const client = redis.client as BudgetClient
    client.defineCommand("breakwaterBudget", { numberOfKeys: 1, lua: script })
    const prefix = `${redis.options.prefix}budget:`
    const share = 1 / redis.options.fleetSize
    const fellBack = Metric.tagged(fallbackTotal, "store", "budget")

    return {
      acquire: (input) => {
        // Requests are mirrored locally (a synchronous map update), so that if Redis goes, the
        // local ratio starts from this instance's recent traffic rather than from nothing.
        const mirror = input.requests > 0 ? local.acquire({ ...input, retry: false }) : Effect.void
        const fallback = Effect.zipRight(
          Metric.increment(fellBack),
          input.retry
            // Alone, each instance keeps its share of the floor; the ratio applies to its own traffic.
            ? local.acquire({ ...input, requests: 0, limits: { ...input.limits, minPerSecond: input.limits.minPerSecond * share } })
            : Effect.succeed(true)
        )
        return Effect.zipRight(
          mirror,
          redis.use(
            (c) =>
              (c as BudgetClient).breakwaterBudget(
                prefix + input.key,
                String(input.now),
                String(Math.round(input.requests)),
                input.retry ? "1" : "0",
                String(input.limits.ratio),
                String(input.limits.minPerSecond),
                String(input.limits.windowMillis)
              ).then((allowed) => allowed === 1),
            fallback
          )
        )
      }
    }
  })
