import { createHash, timingSafeEqual } from "node:crypto"
import * as Redacted from "effect/Redacted"
import type { Gateway } from "@breakwater/gateway"
type ClientKey = Gateway.ClientKey

const digest = (value: string) => createHash("sha256").update(value).digest()

/** Looks client keys up by their SHA-256 digest, compared in constant time. */
export interface Authenticator {
  readonly enabled: boolean
  /** The matching key, or undefined. */
  readonly check: (authorization: string | undefined) => ClientKey | undefined
}

export const make = (keys: ReadonlyArray<ClientKey>): Authenticator => {
  const table = keys.map((k) => ({ key: k, digest: digest(Redacted.value(k.key)) }))
  return {
    enabled: table.length > 0,
    check: (authorization) => {
      if (authorization === undefined) return undefined
      const match = /^Bearer\s+(.+)$/i.exec(authorization.trim())
      if (match === null) return undefined
      const candidate = digest(match[1]!)
      let found: ClientKey | undefined
      // Compare against every key (no early exit), so timing says nothing about which matched.
      for (const entry of table) if (timingSafeEqual(entry.digest, candidate)) found = entry.key
      return found
    }
  }
}
