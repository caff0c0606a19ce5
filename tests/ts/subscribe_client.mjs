// Place a call and follow it by subscription, with the TypeScript MCP SDK over stdio:
//
//     node tests/ts/subscribe_client.mjs PYTHON NUMBER
//
// Spawns `PYTHON server.py` (cwd = the repo root, env = this process's environment), calls
// make_phone_call(NUMBER), subscribes to calls://{call_id} (resources/subscribe) and, at every
// notifications/resources/updated for it, reads the resource again. Stops once the call's status
// is terminal (read from the resource, never polled with wait_for_call) and prints ONE JSON line:
// the protocol version, the call id, and each status read after a notification, in order.
// Exits non-zero on any exception or after 120 s.

import { fileURLToPath } from 'node:url';
import path from 'node:path';
import process from 'node:process';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';

const TOTAL_TIMEOUT_MS = 120_000;
const opts = { timeout: 60_000 };
const TERMINAL = new Set([
  'completed', 'voicemail', 'no_answer', 'busy', 'declined', 'transferred', 'failed', 'canceled', 'denied', 'expired',
]);

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');
const [python, number] = process.argv.slice(2);
if (!python || !number) {
  console.error('usage: node tests/ts/subscribe_client.mjs PYTHON NUMBER');
  process.exit(2);
}

const transport = new StdioClientTransport({
  command: python,
  args: [path.join(repoRoot, 'server.py')],
  env: process.env,
  cwd: repoRoot,
  stderr: 'inherit',
});
const client = new Client({ name: 'callagent-ts-subscriber', version: '0.0.0' });

const timer = setTimeout(() => {
  console.error('subscribe_client.mjs: timed out');
  process.exit(124);
}, TOTAL_TIMEOUT_MS);

async function main() {
  await client.connect(transport, opts);
  const placed = await client.callTool(
    { name: 'make_phone_call', arguments: { phone_number: number } }, undefined, opts,
  );
  if (placed.isError) throw new Error(`make_phone_call failed: ${JSON.stringify(placed.content)}`);
  const callId = placed.structuredContent.call_id;
  const uri = `calls://${callId}`;
  const seen = [];
  const notifications = [];
  let done;
  const finished = new Promise((resolve) => { done = resolve; });
  let reading = Promise.resolve();
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (note) => {
    if (note.params.uri !== uri) return;
    notifications.push(Date.now());
    // One read at a time, in order: each shows the status after that change.
    reading = reading.then(async () => {
      const read = await client.readResource({ uri }, opts);
      const status = JSON.parse(read.contents[0].text).status;
      seen.push(status);
      if (TERMINAL.has(status)) done();
    });
  });
  await client.subscribeResource({ uri }, opts);
  const first = JSON.parse((await client.readResource({ uri }, opts)).contents[0].text).status;
  if (TERMINAL.has(first)) done();
  await finished;
  const out = {
    callId,
    placedStatus: placed.structuredContent.status,
    firstRead: first,
    statuses: seen,
    notifications: notifications.length,
    capabilities: client.getServerCapabilities()?.resources ?? null,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
  clearTimeout(timer);
  await client.close();
  process.exit(0);
}

main().catch((err) => {
  console.error(`subscribe_client.mjs: ${err?.stack || err}`);
  process.exit(1);
});
