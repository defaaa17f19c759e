import { describe, expect, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { createServer, type IncomingHttpHeaders } from "node:http"
import type { AddressInfo } from "node:net"
import { UpstreamHttp } from "../src/index.js"

/** An upstream that answers each request with the headers it got. */
const echo = Effect.acquireRelease(
  Effect.async<{ readonly url: string; readonly close: () => void }>((resume) => {
    const server = createServer((req, res) => {
      req.resume()
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(req.headers))
    })
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resume(Effect.succeed({ url: `http://127.0.0.1:${port}`, close: () => server.close() }))
    })
  }),
  (s) => Effect.sync(() => s.close())
)

describe("UpstreamHttp request headers", () => {
  it.scoped("sends each request's own headers, secrets revealed, however many header objects take turns", () =>
    Effect.gen(function*() {
      const upstream = yield* echo
      const http = yield* UpstreamHttp.make({ name: "echo", baseUrl: upstream.url })
      // More header objects than the transport remembers, each sent several times, in turns.
      const sets = Array.from({ length: 6 }, (_, i) => ({
        "x-set": String(i),
        authorization: Redacted.make(`Bearer secret-${i}`),
        "content-type": "application/json"
      }))
      for (let round = 0; round < 3; round++) {
        for (const [i, headers] of sets.entries()) {
          const got = (yield* http.json({ path: "/", headers, body: "{}" }, () => ({}))) as IncomingHttpHeaders
          expect(got["x-set"]).toBe(String(i))
          expect(got.authorization).toBe(`Bearer secret-${i}`)
        }
      }
      // A new object with the same names is its own.
      const got = (yield* http.json({ path: "/", headers: { "x-set": "new" }, body: "{}" }, () => ({}))) as IncomingHttpHeaders
      expect(got["x-set"]).toBe("new")
      expect(got.authorization).toBeUndefined()
    }))
})
