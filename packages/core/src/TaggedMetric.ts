/**
 * Tagged metric series, resolved once and updated with a plain call.
 *
 * `Metric.tagged(m, k, v).unsafeUpdate(x, [])` (and `Metric.increment` of a tagged metric) joins
 * its tags into a new array on every update, which misses the metric's hook cache (keyed by the
 * array itself), so every update builds and hashes a `MetricKey` and looks it up in the
 * registry. An updater from here passes one array, made once: the hook is found once and each
 * update is a direct write. One module for it, instead of a cache in each package.
 *
 * @since 0.2.0
 */
import type * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"

/**
 * Updates one tagged series of a metric (a counter's increment, a histogram's observation, a
 * gauge's value). Synchronous: in an effect, call it from `Effect.sync`.
 *
 * @since 0.3.0
 * @category models
 */
export type Updater<In> = (input: In) => void

/**
 * The updater of `metric`'s series tagged `tags` (in the order given). Make it once, where the
 * tags are known (per upstream, per outcome), not per update.
 *
 * @since 0.3.0
 * @category constructors
 */
export const make = <Type, In, Out>(metric: Metric.Metric<Type, In, Out>, tags: Readonly<Record<string, string>>): Updater<In> => {
  const labels = Object.entries(tags).map(([key, value]) => MetricLabel.make(key, value))
  return (input) => metric.unsafeUpdate(input, labels)
}

/**
 * The updaters of `metric` tagged `key` with each of a known set of values (and `tags`), all
 * made at once.
 *
 * @since 0.2.0
 * @category constructors
 */
export const forValues = <const V extends string, Type, In, Out>(
  metric: Metric.Metric<Type, In, Out>,
  key: string,
  values: ReadonlyArray<V>,
  tags: Readonly<Record<string, string>> = {}
): Readonly<Record<V, Updater<In>>> => {
  const out = {} as Record<V, Updater<In>>
  for (const value of values) out[value] = make(metric, { ...tags, [key]: value })
  return out
}

/**
 * The updater of `metric` tagged `key` with a value known only when it is used (an error's tag,
 * a status, a breaker's key), and `tags`: each value's updater is made on its first use and
 * kept, up to `limit` values (1024); past that, a value's updater is made on each use, so values
 * from outside cannot grow memory.
 *
 * @since 0.2.0
 * @category constructors
 */
export const byValue = <Type, In, Out>(
  metric: Metric.Metric<Type, In, Out>,
  key: string,
  tags: Readonly<Record<string, string>> = {},
  limit = 1024
): (value: string) => Updater<In> => {
  const made = new Map<string, Updater<In>>()
  return (value) => {
    let updater = made.get(value)
    if (updater === undefined) {
      updater = make(metric, { ...tags, [key]: value })
      if (made.size < limit) made.set(value, updater)
    }
    return updater
  }
}
