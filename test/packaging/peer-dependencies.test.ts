/**
 * `effect` is a peer of every package: a user's app that pins another Effect 3 patch gets one
 * copy of `effect`, shared with Breakwater, never a second one nested under a package (two
 * copies break `Context` tags and FiberRefs silently). Packs every package as npm would publish
 * it, installs the tarballs into a fresh app beside `effect@3.22.3` (not the 3.22.4 the repo
 * develops against), and checks the tree and that every package loads on the app's copy (and on
 * the app's copy of its other peers: `@effect/ai` for `@breakwater/effect-ai`).
 */
import { execFileSync } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, describe, expect, it } from "vitest"

const root = fileURLToPath(new URL("../..", import.meta.url))
const packages = readdirSync(join(root, "packages")).filter((p) => existsSync(join(root, "packages", p, "package.json")))
const built = packages.every((p) => existsSync(join(root, "packages", p, "dist", "index.js")))
if (!built) console.warn("peer-dependency install test skipped: packages/*/dist is missing (run `npm run build` first)")

const USER_EFFECT = "3.22.3"
const npm = process.platform === "win32" ? "npm.cmd" : "npm"

/** Every `effect/package.json` under a node_modules tree (not `@effect/*`). */
const effectCopies = (dir: string): Array<string> => {
  const found: Array<string> = []
  const walk = (modules: string) => {
    if (!existsSync(modules)) return
    for (const name of readdirSync(modules)) {
      if (name.startsWith(".")) continue
      if (name.startsWith("@")) {
        for (const sub of readdirSync(join(modules, name))) walk(join(modules, name, sub, "node_modules"))
        continue
      }
      if (name === "effect") found.push(join(modules, name, "package.json"))
      walk(join(modules, name, "node_modules"))
    }
  }
  walk(join(dir, "node_modules"))
  return found
}

describe("packed packages in a user's app", () => {
  const dir = mkdtempSync(join(tmpdir(), "breakwater-peer-"))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it.skipIf(!built)(`share the app's own effect@${USER_EFFECT}: one copy in the tree`, () => {
    const packs = join(dir, "packs")
    const app = join(dir, "app")
    mkdirSync(packs)
    mkdirSync(app)
    for (const p of packages) {
      execFileSync(npm, ["pack", "--silent", "--pack-destination", packs, "-w", `packages/${p}`], { cwd: root, stdio: "pipe" })
    }
    const tarballs = readdirSync(packs).filter((f) => f.endsWith(".tgz")).map((f) => join(packs, f))
    expect(tarballs).toHaveLength(packages.length)
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }))
    execFileSync(npm, ["install", "--no-audit", "--no-fund", "--prefer-offline", "--ignore-scripts", `effect@${USER_EFFECT}`, ...tarballs], {
      cwd: app,
      stdio: "pipe",
      timeout: 180_000
    })

    const copies = effectCopies(app)
    expect(copies.map((f) => f.slice(app.length))).toEqual(["/node_modules/effect/package.json"])
    expect(JSON.parse(readFileSync(copies[0]!, "utf8")).version).toBe(USER_EFFECT)

    // Each package loads, and every peer it names (effect; @effect/ai for effect-ai) is the
    // app's copy (one module instance).
    const manifests = packages.map((p) => JSON.parse(readFileSync(join(root, "packages", p, "package.json"), "utf8")) as {
      readonly name: string
      readonly peerDependencies?: Record<string, string>
    })
    const peers = manifests.map((m) => [m.name, Object.keys(m.peerDependencies ?? {})] as const)
    expect(peers.filter(([, names]) => !names.includes("effect")).map(([name]) => name)).toEqual([])
    const script = `
      import { createRequire } from "node:module"
      const require = createRequire(import.meta.url)
      for (const [name, peers] of ${JSON.stringify(peers)}) {
        await import(name)
        for (const peer of peers) {
          const app = require.resolve(peer)
          const seen = createRequire(require.resolve(name)).resolve(peer)
          if (seen !== app) throw new Error(name + " resolves " + peer + " to " + seen)
        }
      }
      console.log("ok")
    `
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], { cwd: app, stdio: "pipe" }).toString()
    expect(out.trim()).toBe("ok")
  }, 240_000)
})
