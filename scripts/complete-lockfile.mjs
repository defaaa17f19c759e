// The registry mirror this project is developed against lacks some per-platform binaries
// (rollup's and turbo's for other OSes), so `npm install` here silently leaves them out of
// package-lock.json — and `npm ci` then refuses the lock everywhere. This adds an entry for each
// missing optional platform package, with its os/cpu/libc, so that `npm ci` accepts the lock and
// skips (never fetches) packages for other platforms. Run it after any `npm install` that
// rewrites the lock: `node scripts/complete-lockfile.mjs`.
import { readFileSync, writeFileSync } from "node:fs"

const lockUrl = new URL("../package-lock.json", import.meta.url)
const lock = JSON.parse(readFileSync(lockUrl, "utf8"))
const packages = lock.packages

const cpus = { "arm-eabi": "arm", "arm-gnueabihf": "arm", "arm-musleabihf": "arm", "64": "x64", ia32: "ia32" }
const platform = (name) => {
  const turbo = /^@turbo\/(darwin|linux|windows)-(64|arm64)$/.exec(name)
  if (turbo) return { os: turbo[1] === "windows" ? "win32" : turbo[1], cpu: cpus[turbo[2]] ?? turbo[2] }
  const rollup = /^@rollup\/rollup-([a-z0-9]+)-(arm-eabi|arm-gnueabihf|arm-musleabihf|[a-z0-9]+)(?:-(gnu|musl|msvc))?$/.exec(name)
  if (rollup) {
    const libc = rollup[3] === "gnu" && rollup[1] === "linux" ? "glibc" : rollup[3] === "musl" ? "musl" : undefined
    const abi = rollup[2].includes("musl") ? "musl" : rollup[2].includes("gnueabihf") ? "glibc" : libc
    return { os: rollup[1], cpu: cpus[rollup[2]] ?? rollup[2], ...(abi && rollup[1] === "linux" ? { libc: abi } : {}) }
  }
  return undefined
}

let added = 0
for (const [path, entry] of Object.entries(packages)) {
  if (!entry.optionalDependencies) continue
  const base = path === "" ? "node_modules" : `${path.slice(0, path.lastIndexOf("node_modules/") + "node_modules".length)}`
  for (const [dep, version] of Object.entries(entry.optionalDependencies)) {
    const key = `${base}/${dep}`
    if (packages[key] !== undefined || packages[`node_modules/${dep}`] !== undefined) continue
    const p = platform(dep)
    if (p === undefined) continue
    packages[`node_modules/${dep}`] = {
      version: version.replace(/^[~^]/, ""),
      cpu: [p.cpu],
      ...(entry.dev ? { dev: true } : {}),
      license: entry.license ?? "MIT",
      ...(p.libc ? { libc: [p.libc] } : {}),
      optional: true,
      os: [p.os]
    }
    added++
  }
}
const sorted = Object.fromEntries(Object.entries(packages).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a.localeCompare(b))))
lock.packages = sorted
writeFileSync(lockUrl, JSON.stringify(lock, null, 2) + "\n")
console.log(`complete-lockfile: added ${added} platform entries`)
