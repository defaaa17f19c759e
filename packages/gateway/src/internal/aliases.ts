/**
 * The config's old names, still read: before the policy sections reused the policies' own
 * Schemas, a few settings had names of the gateway's. A config that writes one is rewritten to
 * the policy's name (and a deprecation reported); one that writes both names is an issue.
 */

/** An old name in a section, and the path of its new name inside the same section. */
interface Alias {
  readonly old: string
  readonly now: readonly [string, ...Array<string>]
}

const breaker: ReadonlyArray<Alias> = [{ old: "openBackoffFactor", now: ["openDurationMultiplier"] }]
const window: ReadonlyArray<Alias> = [{ old: "type", now: ["kind"] }]
const retry: ReadonlyArray<Alias> = [
  { old: "budgetRatio", now: ["budget", "ratio"] },
  { old: "budgetMinPerSecond", now: ["budget", "minRetriesPerSecond"] }
]
const resume: ReadonlyArray<Alias> = [{ old: "toolCalls", now: ["toolStreaming"] }]
const hedging: ReadonlyArray<Alias> = [{ old: "budgetRatio", now: ["budget", "ratio"] }]

/** A deprecated name found, or both names written. */
export interface Rename {
  readonly path: string
  readonly now: string
  readonly conflict: boolean
}

type Json = Record<string, unknown>

const isRecord = (u: unknown): u is Json => typeof u === "object" && u !== null && !Array.isArray(u)

const rename = (section: unknown, path: string, aliases: ReadonlyArray<Alias>, found: Array<Rename>): void => {
  if (!isRecord(section)) return
  for (const { now, old } of aliases) {
    if (!(old in section)) continue
    const value = section[old]
    delete section[old]
    let parent: Json | undefined = section
    for (const key of now.slice(0, -1)) {
      if (parent[key] === undefined) parent[key] = {}
      const next: unknown = parent[key]
      parent = isRecord(next) ? next : undefined
      if (parent === undefined) break
    }
    const last = now[now.length - 1]!
    const conflict = parent === undefined || last in parent
    found.push({ path: `${path}.${old}`, now: `${path}.${now.join(".")}`, conflict })
    if (!conflict) parent![last] = value
  }
}

const breakerSection = (section: unknown, path: string, found: Array<Rename>) => {
  rename(section, path, breaker, found)
  if (isRecord(section)) rename(section["window"], `${path}.window`, window, found)
}

const each = (record: unknown, path: string, visit: (value: unknown, path: string) => void) => {
  if (isRecord(record)) for (const [key, value] of Object.entries(record)) visit(value, `${path}.${key}`)
}

/**
 * Rewrites the old names of a config (a fresh copy: it is changed in place) to the new ones,
 * and lists what it found. Where the new name is written too, the old one is dropped and the
 * rename listed as a conflict (an issue for the caller to report).
 */
export const apply = (config: unknown): ReadonlyArray<Rename> => {
  const found: Array<Rename> = []
  if (!isRecord(config)) return found
  const defaults = config["defaults"]
  if (isRecord(defaults)) {
    breakerSection(defaults["breaker"], "defaults.breaker", found)
    rename(defaults["retry"], "defaults.retry", retry, found)
    rename(defaults["resume"], "defaults.resume", resume, found)
  }
  each(config["upstreams"], "upstreams", (upstream, path) => {
    if (isRecord(upstream)) breakerSection(upstream["breaker"], `${path}.breaker`, found)
  })
  each(config["routes"], "routes", (route, path) => {
    if (!isRecord(route)) return
    rename(route["retry"], `${path}.retry`, retry, found)
    rename(route["resume"], `${path}.resume`, resume, found)
    rename(route["hedging"], `${path}.hedging`, hedging, found)
  })
  return found
}
