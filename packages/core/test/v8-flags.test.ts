import { describe, expect, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import * as V8Flags from "../src/V8Flags.js"

const noCommandLine = { execArgv: [], nodeOptions: undefined }

describe("V8Flags.toApply", () => {
  it("sets the gateway's flags when the command line says nothing of them", () => {
    expect(V8Flags.toApply(V8Flags.gateway, noCommandLine)).toEqual(["--no-allocation-site-pretenuring"])
  })

  it("leaves a flag the command line sets, in either polarity and either spelling", () => {
    const flags = ["--no-allocation-site-pretenuring"]
    expect(V8Flags.toApply(flags, { execArgv: ["--allocation-site-pretenuring"], nodeOptions: undefined })).toEqual([])
    expect(V8Flags.toApply(flags, { execArgv: [], nodeOptions: "--max-old-space-size=512 --allocation_site_pretenuring" })).toEqual([])
    expect(V8Flags.toApply(flags, { execArgv: ["--no-allocation-site-pretenuring"], nodeOptions: undefined })).toEqual([])
  })

  it("is not fooled by other flags that share a prefix", () => {
    expect(V8Flags.toApply(["--max-semi-space-size=32"], { execArgv: ["--max-semi-space-size-growth=2"], nodeOptions: "" }))
      .toEqual(["--max-semi-space-size=32"])
  })
})

/**
 * A hot allocation site whose objects all survive: V8 pretenures such a site (its objects are
 * then born in the old generation) unless pretenuring is off. The child prints whether the
 * site's last object was still born young.
 */
const probe = (apply: boolean): boolean => {
  const core = new URL("../dist/V8Flags.js", import.meta.url).href
  const script = `
    ${apply ? `const V8Flags = await import(${JSON.stringify(core)}); V8Flags.apply();` : ""}
    const make = (i) => ({ i, next: null, list: [i] })
    const keep = []
    for (let round = 0; round < 40; round++) for (let i = 0; i < 50000; i++) keep.push(make(i))
    process.stdout.write(String(%InYoungGeneration(make(1))))
  `
  const out = execFileSync(process.execPath, ["--allow-natives-syntax", "--input-type=module", "-e", script], {
    cwd: fileURLToPath(new URL("..", import.meta.url)),
    env: { ...process.env, NODE_OPTIONS: "" },
    encoding: "utf8"
  })
  return out === "true"
}

describe("V8Flags.apply", () => {
  it("stops V8 from pretenuring a hot site whose objects survive (the control shows it does otherwise)", () => {
    expect(probe(false)).toBe(false)
    expect(probe(true)).toBe(true)
  }, 60_000)
})
