// The browser scripts' side of their conversation with the Go test that
// runs them: the lines it writes to their standard input, one at a time.
import { createInterface } from "node:readline";

export const lines = createInterface({ input: process.stdin });
const queue = [];
const waiting = [];
lines.on("line", (l) => (waiting.length ? waiting.shift()(l) : queue.push(l)));
lines.on("close", () => waiting.forEach((w) => w(null)));

// nextLine is the next line the test wrote, or null once it closed its end.
export function nextLine() {
  return queue.length ? Promise.resolve(queue.shift()) : new Promise((r) => waiting.push(r));
}
