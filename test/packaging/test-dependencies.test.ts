/**
 * Every package declares what its own tests import. The vitest alias resolves `@breakwater/*` to
 * the sources and npm hoists the root's tools, so an undeclared import works in this repo and
 * breaks where the package is tested on its own (and turbo does not build what a test needs
 * first). Scans the imports of every `.ts` file under `packages/<name>/test/` and checks each package they name
 * (workspace or npm; not Node's builtins, not the package itself) is in the package's
 * `dependencies` or `devDependencies`. Declared this way, the workspace graph must stay acyclic
 * (turbo refuses a cycle): a test that needs a package built on this one (the testing package's
 * README example over the OpenAI adapter, a gateway served by the HTTP host) lives in the root
 * `test/` instead.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { builtinModules } from "node:module"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"

const root = fileURLToPath(new URL("../..", import.meta.url))
const packages = readdirSync(join(root, "packages")).filter((p) => existsSync(join(root, "packages", p, "package.json")))
const builtins = new Set(builtinModules)

/** The `.ts` files under `dir`, recursively. */
const sources = (dir: string): Array<string> =>
  !existsSync(dir) ? [] : readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith(".ts") ? [join(dir, entry.name)] : []
  )

// `import … from "x"`, `export … from "x"`, `import "x"`, `import("x")`, `vi.mock("x")`.
const specifiers = /(?:(?<=[\s}*])from|(?<![\w$."'])import\s*\(?|\bvi\.mock\()\s*["']([^"']+)["']/g

/** The package a bare specifier names (`effect/Effect` → `effect`, `@effect/vitest` → itself); undefined for a relative path or a builtin. */
const packageOf = (specifier: string): string | undefined => {
  if (specifier.startsWith(".") || specifier.startsWith("/") || specifier.startsWith("node:")) return undefined
  const parts = specifier.split("/")
  const name = specifier.startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0]!
  return builtins.has(name) ? undefined : name
}

/** Each package the test files of `dir` import, with the first file that imports it. */
const importsOf = (dir: string): Map<string, string> => {
  const found = new Map<string, string>()
  for (const file of sources(join(dir, "test"))) {
    for (const match of readFileSync(file, "utf8").matchAll(specifiers)) {
      const name = packageOf(match[1]!)
      if (name !== undefined && !found.has(name)) found.set(name, file.slice(root.length))
    }
  }
  return found
}

const manifests = new Map<string, { readonly name: string; readonly dependencies?: Record<string, string>; readonly devDependencies?: Record<string, string> }>(
  packages.map((dir) => [dir, JSON.parse(readFileSync(join(root, "packages", dir, "package.json"), "utf8"))])
)

/** A cycle among the workspace packages through `dependencies` and `devDependencies`, if any. */
const cycle = (): Array<string> | undefined => {
  const edges = new Map([...manifests.values()].map((m) => [m.name, Object.keys({ ...m.dependencies, ...m.devDependencies })]))
  const done = new Set<string>()
  const path: Array<string> = []
  const visit = (name: string): Array<string> | undefined => {
    const at = path.indexOf(name)
    if (at >= 0) return [...path.slice(at), name]
    if (done.has(name) || !edges.has(name)) return undefined
    path.push(name)
    for (const next of edges.get(name)!) {
      const found = visit(next)
      if (found !== undefined) return found
    }
    path.pop()
    done.add(name)
    return undefined
  }
  for (const name of edges.keys()) {
    const found = visit(name)
    if (found !== undefined) return found
  }
  return undefined
}

describe("test dependencies", () => {
  it("reads bare specifiers as package names", () => {
    expect(["effect/Effect", "@effect/vitest", "@breakwater/core", "node:http", "http", "./support/gateway.js", "openai/resources"].map(packageOf))
      .toEqual(["effect", "@effect/vitest", "@breakwater/core", undefined, undefined, undefined, "openai"])
  })

  it.each(packages)("packages/%s declares every package its tests import", (dir) => {
    const manifest = manifests.get(dir)!
    const declared = new Set([manifest.name, ...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.devDependencies ?? {})])
    const undeclared = [...importsOf(join(root, "packages", dir))].filter(([name]) => !declared.has(name)).map(([name, file]) => `${name} (${file})`)
    expect(undeclared, `add them to packages/${dir}/package.json devDependencies`).toEqual([])
  })

  it("leaves no cycle among the workspace packages", () => {
    expect(cycle(), "move the test that needs the later package to the root test/").toBeUndefined()
  })
})
