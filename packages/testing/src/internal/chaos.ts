/**
 * Chaos: a seeded, reproducible share of unscripted requests gets one of a list of behaviors.
 */
import type { Behavior } from "./behavior.js"

export interface ChaosOptions {
  readonly rate: number
  readonly behaviors: ReadonlyArray<Behavior>
  readonly seed?: number | undefined
}

/** A xorshift PRNG, so chaos is reproducible from its seed. */
const prng = (seed: number) => {
  let s = (seed >>> 0) || 0x9e3779b9
  return () => {
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    return s / 0x100000000
  }
}

/** Picks the behavior of one request: one of `behaviors` for a `rate` share of calls, `undefined` for the rest. */
export type Pick = () => Behavior | undefined

/** The pick for `options` (seeded by `options.seed`, else `defaultSeed`), or none when it would never pick. */
export const make = (options: ChaosOptions | undefined, defaultSeed: number): Pick | undefined => {
  if (options === undefined || options.rate <= 0 || options.behaviors.length === 0) return undefined
  const { rate, behaviors } = options
  const random = prng(options.seed ?? defaultSeed)
  return () => (random() < rate ? behaviors[Math.floor(random() * behaviors.length)] : undefined)
}
