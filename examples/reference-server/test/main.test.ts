/**
 * `npm start` as a newcomer runs it: the built reference server with no config and no keys.
 */
import { MockUpstream } from "@breakwater/testing"
import { spawn } from "node:child_process"
import { existsSync, mkdtempSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import OpenAI from "openai"
import { describe, expect, it } from "vitest"

const main = fileURLToPath(new URL("../dist/main.js", import.meta.url))

/** Spawns the built server; `listening` resolves with its URL once `ready` holds for its stderr. */
const startServer = (env: NodeJS.ProcessEnv, ready: (stderr: string) => boolean) => {
  const spawned = spawn(process.execPath, [main], { env, stdio: ["ignore", "pipe", "pipe"] })
  let stderr = ""
  const child = Object.assign(spawned, { stderrText: () => stderr })
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
  const listening = new Promise<string>((resolve, reject) => {
    child.stderr.setEncoding("utf8")
    child.stderr.on("data", (text: string) => {
      stderr += text
      const match = /listening on (http:\/\/[^\s]+)/.exec(stderr)
      if (match !== null && ready(stderr)) resolve(match[1]!)
    })
    child.on("exit", () => reject(new Error(`exited before listening:\n${stderr}`)))
  })
  return { child, exited, listening }
}

describe.skipIf(!existsSync(main))("reference server (embedded default)", () => {
  it("starts on a local mock with no keys, serves the openai client, says how to add keys, and exits cleanly on SIGTERM", async () => {
    const env = { ...process.env, PORT: "0", BREAKWATER_LOG_LEVEL: "warning", OPENAI_API_KEY: "", ANTHROPIC_API_KEY: "", BREAKWATER_CONFIG: "" }
    const { child, exited, listening } = startServer(env, (stderr) => stderr.includes("real providers"))
    try {
      const url = await listening
      const stderr = child.stderrText()
      expect(stderr).toMatch(/embedded default/)
      expect(stderr).toMatch(/OPENAI_API_KEY/)
      expect(stderr).toMatch(/curl -s/)
      expect(stderr).toContain(`status: ${url}/status `)
      const status = await fetch(`${url}/status`)
      expect(status.status).toBe(200)
      expect(await status.text()).toContain("Breakwater status")
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

  it("BREAKWATER_STATUS_PAGE=off: no status page (404) and no banner line for it, the API served as before", async () => {
    const env = { ...process.env, PORT: "0", BREAKWATER_LOG_LEVEL: "warning", OPENAI_API_KEY: "", ANTHROPIC_API_KEY: "", BREAKWATER_CONFIG: "", BREAKWATER_STATUS_PAGE: "off" }
    const { child, exited, listening } = startServer(env, (stderr) => stderr.includes("real providers"))
    try {
      const url = await listening
      expect(child.stderrText()).not.toContain("/status")
      expect((await fetch(`${url}/status`)).status).toBe(404)
      const answer = await fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "breakwater-demo", messages: [{ role: "user", content: "Hello" }] })
      })
      expect(answer.status).toBe(200)
    } finally {
      child.kill("SIGTERM")
    }
    expect(await exited).toBe(0)
  }, 30_000)
})

describe.skipIf(!existsSync(main))("reference server (config file)", () => {
  it("PORT and HOST override the config file's server.port and server.host (issue #17)", async () => {
    const mock = await MockUpstream.start({ words: 5 })
    // The file's port is taken, and its host is one this test never listens on: only the
    // environment's PORT and HOST let the server start where the test looks for it.
    const taken = createServer()
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve))
    const takenPort = (taken.address() as { port: number }).port
    const dir = mkdtempSync(join(tmpdir(), "breakwater-port-"))
    const configPath = join(dir, "breakwater.json")
    writeFileSync(configPath, JSON.stringify({
      server: { host: "::1", port: takenPort },
      auth: { keys: [{ name: "t", key: "gw-port-test-key" }] },
      upstreams: { mock: { provider: "openai", baseUrl: mock.url, models: ["m"] } },
      routes: { m: { upstreams: ["mock"] } }
    }))
    const env = { ...process.env, PORT: "0", HOST: "127.0.0.1", BREAKWATER_LOG_LEVEL: "warning", OPENAI_API_KEY: "", ANTHROPIC_API_KEY: "", BREAKWATER_CONFIG: configPath }
    const { child, exited, listening } = startServer(env, () => true)
    try {
      const url = await listening
      const at = new URL(url)
      expect(at.hostname).toBe("127.0.0.1")
      expect(Number(at.port)).not.toBe(takenPort)
      expect(Number(at.port)).toBeGreaterThan(0)
      const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "gw-port-test-key", maxRetries: 0 })
      const answer = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "Hello" }] })
      expect(answer.choices[0]!.message.content).not.toBe("")
    } finally {
      child.kill("SIGTERM")
      await exited
      taken.close()
      await mock.close()
    }
  }, 30_000)

  it("refuses a PORT that is not a port number, saying so", async () => {
    const env = { ...process.env, PORT: "eighty", BREAKWATER_LOG_LEVEL: "warning", OPENAI_API_KEY: "", ANTHROPIC_API_KEY: "", BREAKWATER_CONFIG: "" }
    const { child, exited, listening } = startServer(env, () => true)
    listening.catch(() => {})
    expect(await exited).toBe(1)
    expect(child.stderrText()).toMatch(/PORT must be a port number/)
  }, 30_000)
})
