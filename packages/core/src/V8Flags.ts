/**
 * The V8 settings a gateway process runs best with, applied at start-up by the process that owns
 * the runtime (the reference server does; a library never flips them on its own).
 *
 * Why allocation-site pretenuring is off: under load V8 sees the per-request objects of a long
 * request path (the request context, an Effect fiber's stack) survive a young collection while
 * their requests are in flight, and starts allocating them straight into the old generation.
 * Those requests end milliseconds later, but an old object is only freed by a full collection:
 * until then every young object it points to counts as live, is copied and then promoted. One
 * pretenured site thus drags each request's young objects into the old generation, which makes
 * young collections slow (the p99 tail) and full ones frequent. BENCHMARKS.md has the figures.
 *
 * @since 0.5.0
 */
import * as v8 from "node:v8"

/**
 * The flags `apply` sets by default.
 *
 * @since 0.5.0
 * @category constants
 */
export const gateway: ReadonlyArray<string> = ["--no-allocation-site-pretenuring"]

/**
 * The flag's name without its `--` / `--no-` prefix, with `_` spelled `-` (V8 takes both).
 */
const nameOf = (flag: string): string => flag.replace(/^--(no-?)?/, "").split("=")[0]!.replace(/_/g, "-")

/**
 * The flags of `flags` that the command line (`execArgv`, `NODE_OPTIONS`) does not already set,
 * in either polarity: an operator's explicit choice always wins.
 *
 * @since 0.5.0
 * @category decisions
 */
export const toApply = (
  flags: ReadonlyArray<string>,
  commandLine: { readonly execArgv: ReadonlyArray<string>; readonly nodeOptions: string | undefined }
): ReadonlyArray<string> => {
  const given = new Set(
    [...commandLine.execArgv, ...(commandLine.nodeOptions ?? "").split(/\s+/)]
      .filter((arg) => arg.startsWith("--"))
      .map(nameOf)
  )
  return flags.filter((flag) => !given.has(nameOf(flag)))
}

/**
 * Sets `flags` (default `gateway`) on this process's V8, except those its command line sets
 * itself; returns the flags it set. Call it first thing in a gateway's entry point.
 *
 * @since 0.5.0
 * @category effects
 */
export const apply = (flags: ReadonlyArray<string> = gateway): ReadonlyArray<string> => {
  const set = toApply(flags, { execArgv: process.execArgv, nodeOptions: process.env["NODE_OPTIONS"] })
  for (const flag of set) v8.setFlagsFromString(flag)
  return set
}
