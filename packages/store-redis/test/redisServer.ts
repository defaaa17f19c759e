/**
 * A real `redis-server` per test file, on a free loopback port, that a test can kill, pause and
 * restart. When `redis-server` is absent the suites skip loudly, except in CI where they fail.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import * as net from "node:net"
import { Redis } from "ioredis"

export const hasRedis = spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status === 0

if (!hasRedis) {
  const message = "[store-redis] redis-server is not installed: the Redis store tests are SKIPPED (apt-get install -y redis-server)"
  if (process.env["CI"]) throw new Error(`${message.replace("are SKIPPED", "cannot run")}; CI must install it (.ci/run does)`)
  console.warn(`\n${"!".repeat(message.length)}\n${message}\n${"!".repeat(message.length)}\n`)
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls a condition on real time (for real I/O: a server coming up, a reconnect), bounded. */
export const waitUntil = async (condition: () => boolean | Promise<boolean>, timeoutMs = 5_000, what = "condition") => {
  const until = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(20)
  }
}

export class RedisServer {
  private child: ChildProcess | undefined
  private constructor(readonly port: number) {}

  /** A free port with no server yet (`start()` it later). */
  static async reserve(): Promise<RedisServer> {
    return new RedisServer(await freePort())
  }

  static async start(): Promise<RedisServer> {
    const server = new RedisServer(await freePort())
    await server.start()
    return server
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`
  }

  async start(): Promise<void> {
    const child = spawn("redis-server", ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
      stdio: "ignore"
    })
    this.child = child
    const probe = new Redis(this.port, "127.0.0.1", { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    probe.on("error", () => {})
    try {
      await waitUntil(async () => {
        try {
          if (probe.status !== "ready") await probe.connect()
          return (await probe.ping()) === "PONG"
        } catch {
          probe.disconnect()
          return false
        }
      }, 5_000, `redis-server on port ${this.port}`)
    } finally {
      probe.disconnect()
    }
  }

  /** Kills the server at once (SIGKILL: no goodbye to clients) and waits for it to be gone. */
  async kill(): Promise<void> {
    const child = this.child
    this.child = undefined
    if (child === undefined || child.exitCode !== null) return
    const exited = new Promise((resolve) => child.once("exit", resolve))
    child.kill("SIGKILL")
    await exited
  }

  /** Freezes the server (SIGSTOP): connections stay open, commands get no answer. */
  pause(): void {
    this.child?.kill("SIGSTOP")
  }

  resume(): void {
    this.child?.kill("SIGCONT")
  }

  async restart(): Promise<void> {
    await this.kill()
    await this.start()
  }

  /** A plain client for assertions (TTL, keys). */
  client(): Redis {
    const c = new Redis(this.port, "127.0.0.1", { maxRetriesPerRequest: 1 })
    c.on("error", () => {})
    return c
  }
}

/**
 * Counts the commands a client hands to its connection (health-check PINGs aside), so a test can
 * show that calls made while Redis is known to be down never reach it: an event count, where a
 * wall-clock ceiling would flake on a loaded machine.
 */
export const countCommands = (client: Redis): { sent: number } => {
  const counter = { sent: 0 }
  const send = client.sendCommand.bind(client)
  client.sendCommand = ((...args: Parameters<Redis["sendCommand"]>) => {
    if (args[0].name !== "ping") counter.sent++
    return send(...args)
  }) as Redis["sendCommand"]
  return counter
}
