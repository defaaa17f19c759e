// `npm test` and `npm start` must work on a fresh clone even when nobody ran `npm ci` first.
import { execSync } from "node:child_process"
import { existsSync } from "node:fs"

if (!existsSync(new URL("../node_modules/.package-lock.json", import.meta.url))) {
  console.log("[breakwater] node_modules missing: running `npm ci` first")
  execSync("npm ci", { stdio: "inherit", cwd: new URL("..", import.meta.url) })
}
