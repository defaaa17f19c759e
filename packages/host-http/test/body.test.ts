import { describe, expect, it } from "@effect/vitest"
import type * as http from "node:http"
import { PassThrough } from "node:stream"
import * as v8 from "node:v8"
import * as vm from "node:vm"
import { read } from "../src/internal/body.js"

/** A request body arriving in parts, as a socket delivers it. */
const request = (parts: ReadonlyArray<string>, headers: http.IncomingHttpHeaders = {}) => {
  const req = Object.assign(new PassThrough(), { headers }) as unknown as http.IncomingMessage & PassThrough
  for (const part of parts) req.write(part)
  req.end()
  return req
}

v8.setFlagsFromString("--expose-gc")
const collectGarbage = vm.runInNewContext("gc") as () => void

describe("host-http body", () => {
  it("reads the whole body", async () => {
    const req = request(["{\"model\":", "\"m\"}"])
    const body = await new Promise<Buffer>((resolve, reject) =>
      read(req, 1024, (result) => (result._tag === "Ok" ? resolve(result.bytes) : reject(new Error(result._tag)))))
    expect(body.toString("utf8")).toBe("{\"model\":\"m\"}")
  })

  it("lets go of the buffered parts once the body is handed on: the request outlives the read (a held stream)", async () => {
    const req = request(["{\"model\":", "\"m\"}"])
    // What the socket delivered, watched without being held.
    const parts: Array<WeakRef<Buffer>> = []
    req.on("data", (part: Buffer) => parts.push(new WeakRef(part)))
    const body = await new Promise<Buffer>((resolve, reject) =>
      read(req, 1024, (result) => (result._tag === "Ok" ? resolve(result.bytes) : reject(new Error(result._tag)))))
    expect(parts).toHaveLength(2)
    // A WeakRef's target is kept until the current job ends.
    await new Promise((resolve) => setImmediate(resolve))
    collectGarbage()
    expect(parts.map((part) => part.deref())).toEqual([undefined, undefined])
    expect(body.toString("utf8")).toBe("{\"model\":\"m\"}")
  })

  it("stops at the limit and says so", async () => {
    const req = request(["x".repeat(600), "y".repeat(600)])
    const tag = await new Promise<string>((resolve) => read(req, 1000, (result) => resolve(result._tag)))
    expect(tag).toBe("TooLarge")
  })
})
