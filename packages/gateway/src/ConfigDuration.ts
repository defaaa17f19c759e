/**
 * Durations in config files: a number of milliseconds, or Effect's duration strings
 * (`"30 seconds"`, `"250 millis"`, `"2 minutes"`).
 *
 * @since 0.1.0
 */
import { Durations } from "@breakwater/core"

/**
 * A duration written as milliseconds or as a string like `"30 seconds"` (core's
 * `Durations.DurationFromConfig`, which every config duration shares).
 *
 * @since 0.1.0
 * @category schemas
 */
export const ConfigDuration = Durations.DurationFromConfig
