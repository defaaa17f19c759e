import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Redacted } from "effect"
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { UpstreamHttp } from "../src/index.js"

/** A loopback upstream with `handle` as its request handler. */
const upstream = (handle: (req: IncomingMessage, res: ServerResponse) => void) =>
  Effect.acquireRelease(
    Effect.async<{ readonly url: string; readonly close: () => void }>((resume) => {
      const server = createServer(handle)
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo
        resume(Effect.succeed({ url: `http://127.0.0.1:${port}`, close: () => server.close() }))
      })
    }),
    (s) => Effect.sync(() => {
      s.close()
    })
  )

/** An upstream that answers each request with the headers it got. */
const echo = upstream((req, res) => {
  req.resume()
  res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(req.headers))
})

describe("UpstreamHttp", () => {
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

describe("UpstreamHttp interruption", () => {
  it.scopedLive("interrupting a JSON call closes its upstream request, whose answer never came", () =>
    Effect.gen(function*() {
      const arrived = yield* Deferred.make<void>()
      const closed = yield* Deferred.make<void>()
      // Holds every request without answering; says when one arrives and when its client left.
      const held = yield* upstream((req) => {
        req.resume()
        req.socket.once("close", () => Deferred.unsafeDone(closed, Effect.void))
        Deferred.unsafeDone(arrived, Effect.void)
      })
      const http = yield* UpstreamHttp.make({ name: "held", baseUrl: held.url })
      const call = yield* Effect.fork(http.json({ path: "/", headers: { "content-type": "application/json" }, body: "{}" }, () => ({})))
      yield* Deferred.await(arrived)
      yield* Fiber.interrupt(call)
      // Bounded: a connection left open fails the test instead of hanging it.
      const done = yield* Deferred.await(closed).pipe(Effect.timeout("5 seconds"), Effect.either)
      expect(done._tag).toBe("Right")
    }))
})
