/** A reconnecting client's view of a journaled stream: a chat request, its SSE events and their ids. */

/** A text of `n` words (one content chunk each), some of them multi-byte. */
export const textOf = (n: number) => Array.from({ length: n }, (_, i) => (i === 0 ? "" : " ") + ["tides", "café", "日本語", "🙂", "rise"][i % 5] + i).join("")

export const chat = { model: "gpt-test", messages: [{ role: "user", content: "tell me about tides" }], stream: true }

export const post = (url: string, headers: Record<string, string> = {}, signal?: AbortSignal) =>
  fetch(`${url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(chat), ...(signal ? { signal } : {}) })

/** The events of an SSE text: complete frames (up to a blank line) that carry an id. */
export const eventsOf = (text: string) => text.split(/(?<=\n\n)/).filter((f) => f.endsWith("\n\n") && /^id: /m.test(f))
export const idOf = (frame: string) => /^id: (.*)$/m.exec(frame)![1]!
export const dataOf = (frame: string) => /^data: (.*)$/m.exec(frame)![1]!
export const contentOf = (frames: ReadonlyArray<string>) =>
  frames.map(dataOf).filter((d) => d !== "[DONE]").map((d) => JSON.parse(d).choices?.[0]?.delta?.content ?? "").join("")

/** Reads a response until `n` complete events arrived, then drops the connection. */
export const readThenDrop = async (res: Response, controller: AbortController, n: number) => {
  const reader = res.body!.getReader()
  const decoder = new TextDecoder()
  let text = ""
  while (eventsOf(text).length < n) {
    const { done, value } = await reader.read()
    if (done) break
    text += decoder.decode(value, { stream: true })
  }
  controller.abort()
  return text
}

/** A fetch whose first streamed response is cut after `bytes`, as a dropped connection would. */
export const cuttingAfter = (bytes: number) => {
  let calls = 0
  const cutting: typeof fetch = async (input, init) => {
    const res = await fetch(input, init)
    if (calls++ > 0 || res.body === null) return res
    const reader = res.body.getReader()
    let seen = 0
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { done, value } = await reader.read()
        if (done) return controller.close()
        seen += value.byteLength
        if (seen > bytes) {
          controller.enqueue(value.subarray(0, Math.max(0, value.byteLength - (seen - bytes))))
          void reader.cancel()
          return controller.error(new TypeError("network error"))
        }
        controller.enqueue(value)
      }
    })
    return new Response(body, { status: res.status, headers: res.headers })
  }
  return { fetch: cutting, calls: () => calls }
}
