export { handler, makeHandlers } from "./handler.js"
