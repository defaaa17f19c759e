import { describe, expect, it } from "@effect/vitest"
import type * as http from "node:http"
import { PassThrough } from "node:stream"
import { read } from "../src/internal/body.js"

/** A request body arriving in parts, as a socket delivers it. */
const request = (parts: ReadonlyArray<string>, headers: http.IncomingHttpHeaders = {}) => {
  const req = Object.assign(new PassThrough(), { headers }) as unknown as http.IncomingMessage & PassThrough
  for (const part of parts) req.write(part)
  req.end()
  return req
}

describe("host-http body", () => {
  it("reads the whole body, then lets go of its parts: the request outlives the read (a held stream)", async () => {
    const req = request(["{\"model\":", "\"m\"}"])
    const body = await new Promise<Buffer>((resolve, reject) =>
      read(req, 1024, (result) => (result._tag === "Ok" ? resolve(result.bytes) : reject(new Error(result._tag)))))
    expect(body.toString("utf8")).toBe("{\"model\":\"m\"}")
    // No listener still holds the buffered parts once the body is handed on.
    expect(req.listenerCount("data")).toBe(0)
  })

  it("stops at the limit and says so", async () => {
    const req = request(["x".repeat(600), "y".repeat(600)])
    const tag = await new Promise<string>((resolve) => read(req, 1000, (result) => resolve(result._tag)))
    expect(tag).toBe("TooLarge")
  })
})
