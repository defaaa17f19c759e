import { MockUpstream } from "@breakwater/testing"
import { expect, it } from "vitest"

it("keeps only the most recent maxRequests requests (a long-running mock does not grow)", async () => {
  const mock = await MockUpstream.start({ maxRequests: 3 })
  try {
    for (let i = 0; i < 5; i++) {
      await (await fetch(`${mock.url}/chat/completions`, { method: "POST", body: JSON.stringify({ model: "m", messages: [{ role: "user", content: `q${i}` }] }) })).text()
    }
    expect(mock.requests.map((r) => r.body.messages[0].content)).toEqual(["q2", "q3", "q4"])
    expect(mock.received).toBe(5)
  } finally {
    await mock.stop()
  }
})
