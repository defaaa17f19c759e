/**
 * A metric with fixed tags, updated without an effect and without rebuilding its key.
 *
 * `Metric.tagged(m, k, v).unsafeUpdate(x, [])` joins its tags into a new array on every call,
 * which misses the metric's hook cache (keyed by the array itself), so every update builds and
 * hashes a `MetricKey` and looks it up in the registry. An updater from here passes one array,
 * made once: the hook is found once and each update is a direct write.
 *
 * @since 0.3.0
 */
import type * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"

/**
 * Updates one tagged series of a metric (a counter's increment, a histogram's observation, a
 * gauge's value).
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
 * Updaters by a tag value known only at run time (an error tag, a status), each made on first
 * use and kept (at most `limit` values, beyond which updates go uncached rather than grow the
 * cache without bound).
 *
 * @since 0.3.0
 * @category constructors
 */
export const byValue = <Type, In, Out>(
  metric: Metric.Metric<Type, In, Out>,
  tags: Readonly<Record<string, string>>,
  key: string,
  limit = 256
): (value: string) => Updater<In> => {
  const cache = new Map<string, Updater<In>>()
  return (value) => {
    const known = cache.get(value)
    if (known !== undefined) return known
    const updater = make(metric, { ...tags, [key]: value })
    if (cache.size < limit) cache.set(value, updater)
    return updater
  }
}
