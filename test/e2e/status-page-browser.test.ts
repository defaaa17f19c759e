/**
 * The status page in a real headless browser (Debian's `chromium`, driven by `playwright-core`):
 * it loads without console errors, shows the routes and upstreams, and shows a breaker opening
 * within seconds of the failures that open it. With `UPDATE_SCREENSHOTS=1` it also drives a
 * while of chaotic traffic and writes `docs/status-page.png`.
 */
import { ConfigLoader, GatewayBuilder } from "@breakwater/gateway"
import { HttpHost } from "@breakwater/host-http"
import { MockUpstream } from "@breakwater/testing"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { chromium } from "playwright-core"

const { Fault } = MockUpstream
const executablePath = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium"
const screenshots = process.env["UPDATE_SCREENSHOTS"] === "1"
const screenshotPath = fileURLToPath(new URL("../../docs/status-page.png", import.meta.url))

const chaosFaults: ReadonlyArray<MockUpstream.Behavior> = [
  { fault: Fault.Status({ status: 503 }) },
  { fault: Fault.Status({ status: 529 }) },
  { fault: Fault.Cut({ afterChunks: 5 }) },
  { fault: Fault.ErrorEvent({ afterChunks: 8 }) },
  { fault: Fault.ResetBeforeHeaders() }
]

const chat = (url: string, model: string, stream: boolean) =>
  Effect.promise(() =>
    fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model, stream, messages: [{ role: "user", content: "Tell me about breakwaters" }] })
    }).then((r) => r.text().then(() => r.status))
  )

describe("status page in a headless browser", () => {
  it.scopedLive("loads cleanly, shows routes and upstreams, and shows a breaker opening", () =>
    Effect.gen(function*() {
      if (!existsSync(executablePath)) {
        throw new Error(`no browser at ${executablePath}: install Debian's chromium (apt-get install -y chromium; .ci/run does) or set CHROMIUM_PATH`)
      }
      const primary = yield* MockUpstream.scoped({ words: 30, chunkDelayMs: 2 })
      const backup = yield* MockUpstream.scoped({ words: 30, chunkDelayMs: 2 })
      const gateway = yield* GatewayBuilder.make(yield* ConfigLoader.fromObject({
        upstreams: {
          "mock-openai": { provider: "openai", baseUrl: primary.url, models: ["breakwater-demo", "gpt-4o-mini"] },
          "mock-anthropic": { provider: "anthropic", baseUrl: backup.origin, models: { "breakwater-demo": "claude-mock", "gpt-4o-mini": "claude-mock" } }
        },
        routes: {
          "breakwater-demo": { upstreams: ["mock-openai", "mock-anthropic"] },
          "gpt-4o-mini": { upstreams: ["mock-openai", "mock-anthropic"] }
        },
        defaults: {
          retry: { baseDelay: "5 millis", maxDelay: "40 millis" },
          breaker: screenshots
            ? { minimumCalls: 8, window: { kind: "count", size: 16 }, openDuration: "3 seconds" }
            : { minimumCalls: 3, window: { kind: "count", size: 4 }, openDuration: "1 minute" }
        }
      }, {}))
      const { url } = yield* HttpHost.serve(gateway, { log: () => {}, port: 0 })

      const browser = yield* Effect.acquireRelease(
        Effect.promise(() => chromium.launch({ executablePath, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] })),
        (b) => Effect.promise(() => b.close())
      )
      const page = yield* Effect.promise(() => browser.newPage({ viewport: { width: 1440, height: 1100 }, deviceScaleFactor: 1 }))
      const problems: Array<string> = []
      page.on("console", (m) => {
        if (m.type() === "error") problems.push(`console: ${m.text()}`)
      })
      page.on("pageerror", (e) => problems.push(`page error: ${e.message}`))

      yield* Effect.promise(() => page.goto(`${url}/status`))
      // The first snapshot: both routes with their targets, both upstreams closed.
      yield* Effect.promise(() => page.waitForSelector(`[data-upstream="mock-openai"][data-circuit="closed"]`, { timeout: 10_000 }))
      yield* Effect.promise(() => page.waitForSelector(`[data-upstream="mock-anthropic"][data-circuit="closed"]`))
      yield* Effect.promise(() => page.waitForSelector(`[data-route="breakwater-demo"]`))
      yield* Effect.promise(() => page.waitForSelector(`[data-route="gpt-4o-mini"]`))
      expect(yield* Effect.promise(() => page.locator(`[data-route="breakwater-demo"]`).innerText())).toMatch(/mock-openai[\s\S]*mock-anthropic/)

      // The primary fails every call for one model: its breaker opens, the backup serves.
      primary.setDefault({ fault: Fault.Status({ status: 500 }) })
      for (let i = 0; i < 3; i++) expect(yield* chat(url, "breakwater-demo", false)).toBe(200)
      const opened = Date.now()
      yield* Effect.promise(() => page.waitForSelector(`[data-upstream="mock-openai"] .pill[data-circuit="open"]`, { timeout: 5_000 }))
      expect(Date.now() - opened).toBeLessThan(5_000)
      yield* Effect.promise(() => page.waitForSelector(`[data-transition="mock-openai@breakwater-demo"]`))
      // The recent requests show the attempt trail: the failed attempts and the fallback.
      yield* Effect.promise(() => page.waitForFunction(() => document.querySelectorAll("#requests tr[data-request]").length >= 3))
      const trail = yield* Effect.promise(() => page.locator("#requests").innerText())
      expect(trail).toMatch(/mock-openai #1 ✗ UpstreamUnavailable|mock-openai #1 ✗/)
      expect(trail).toMatch(/fell back mock-openai@breakwater-demo → mock-anthropic/)

      if (screenshots) {
        // Chaos in phases, streams and calls mixed, paced like a few busy clients: flaky, then
        // down (its breakers open, the router skips it), then flaky again while they recover,
        // then down again for the picture.
        const phase = (ms: number, set: () => void) =>
          Effect.gen(function*() {
            set()
            const until = Date.now() + ms
            yield* Effect.forEach([0, 1, 2, 3, 4, 5], (n) =>
              Effect.gen(function*() {
                let i = n
                while (Date.now() < until) {
                  i++
                  yield* chat(url, i % 3 === 0 ? "gpt-4o-mini" : "breakwater-demo", i % 4 !== 0)
                  yield* Effect.sleep("80 millis")
                }
              }), { concurrency: "unbounded", discard: true })
          })
        const flaky = () => {
          primary.setDefault({})
          primary.chaos({ rate: 0.25, behaviors: chaosFaults, seed: 7 })
        }
        yield* phase(15_000, flaky)
        yield* phase(8_000, () => primary.setDefault({ fault: Fault.Status({ status: 503 }) }))
        yield* phase(12_000, flaky)
        yield* phase(5_000, () => primary.setDefault({ fault: Fault.Status({ status: 503 }) }))
        yield* Effect.promise(() => page.waitForSelector(`[data-upstream="mock-openai"] .pill[data-circuit="open"]`, { timeout: 5_000 }))
        yield* Effect.promise(() => page.screenshot({ path: screenshotPath }))
      }
      expect(problems).toEqual([])
    }), screenshots ? 120_000 : 30_000)
})
