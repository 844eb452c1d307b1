// The worker's entry (wrangler.toml `main`): the bundle worker-build makes
// (./index.js, beside this file in build/), with one guard around the Queue
// consumer. scripts/build.sh copies this file into build/.
//
// Why: after a Rust panic the wasm instance is reset (workers-rs panic
// recovery). A consumer invocation that was awaiting an object at that
// moment then never settles. On Cloudflare an invocation has a wall-clock
// limit, after which its messages are retried; under `wrangler dev` nothing
// ends it, and the local Queue waits for it forever, delivering nothing
// more. So an invocation that has not settled after CONSUMER_STALL_MS
// (default 60 s; a batch normally takes well under a second) is failed:
// the Queue retries its messages, and each board's dedupe keeps the retry
// exact (an apply is one transaction, so a slow invocation still running
// cannot count an event twice).
import Podium from './index.js';

export * from './index.js';

const STALL_MS = 60_000;

export default class PodiumEntry extends Podium {
  queue(batch) {
    const ms = Number(this.env?.CONSUMER_STALL_MS) || STALL_MS;
    let timer;
    const stalled = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the consumer did not settle within ${ms} ms: its messages are retried`)), ms);
    });
    return Promise.race([super.queue(batch), stalled]).finally(() => clearTimeout(timer));
  }
}
