/**
 * `npm start` as a newcomer runs it: the built reference server with no config and no keys.
 */
import { spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"
import OpenAI from "openai"
import { describe, expect, it } from "vitest"

const main = fileURLToPath(new URL("../dist/main.js", import.meta.url))

describe.skipIf(!existsSync(main))("reference server (embedded default)", () => {
  it("starts on a local mock with no keys, serves the openai client, says how to add keys, and exits cleanly on SIGTERM", async () => {
    const env = { ...process.env, PORT: "0", BREAKWATER_LOG_LEVEL: "warning", OPENAI_API_KEY: "", ANTHROPIC_API_KEY: "", BREAKWATER_CONFIG: "" }
    const child = spawn(process.execPath, [main], { env, stdio: ["ignore", "pipe", "pipe"] })
    let stderr = ""
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
    try {
      const url = await new Promise<string>((resolve, reject) => {
        child.stderr.setEncoding("utf8")
        child.stderr.on("data", (text: string) => {
          stderr += text
          const match = /listening on (http:\/\/[^\s]+)/.exec(stderr)
          if (match !== null && stderr.includes("real providers")) resolve(match[1]!)
        })
        child.on("exit", () => reject(new Error(`exited before listening:\n${stderr}`)))
      })
      expect(stderr).toMatch(/embedded default/)
      expect(stderr).toMatch(/OPENAI_API_KEY/)
      expect(stderr).toMatch(/curl -s/)
      const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused", maxRetries: 0 })
      const stream = await client.chat.completions.create({ model: "breakwater-demo", messages: [{ role: "user", content: "Hello" }], stream: true })
      let text = ""
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? ""
      expect(text.split(" ").length).toBeGreaterThan(10)
      const ready = await fetch(`${url}/readyz`)
      expect(ready.status).toBe(200)
    } finally {
      child.kill("SIGTERM")
    }
    expect(await exited).toBe(0)
  }, 30_000)
})
