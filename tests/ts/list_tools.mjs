// Spawn an MCP server command over stdio with the TypeScript MCP SDK (the client library
// Claude Desktop uses), list its tools and call dial_policy.
//
//     node tests/ts/list_tools.mjs COMMAND [ARGS...]
//
// COMMAND runs in this process's working directory with its environment, as a client spawns
// an installed server (tests/unit/test_wheel.py: `callagent-mcp` from a wheel installed into a
// fresh virtual environment). Prints ONE JSON line to stdout; exits non-zero on any exception
// or after 30 s. The server's stderr (its logs) passes through to this process's stderr.

import process from 'node:process';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const TOTAL_TIMEOUT_MS = 30_000;
const REQUEST_TIMEOUT_MS = 20_000;

const [command, ...args] = process.argv.slice(2);
if (!command) {
  console.error('usage: node tests/ts/list_tools.mjs COMMAND [ARGS...]');
  process.exit(2);
}

const transport = new StdioClientTransport({ command, args, env: process.env, cwd: process.cwd(), stderr: 'inherit' });
const client = new Client({ name: 'callagent-wheel-test', version: '0.0.0' });
const opts = { timeout: REQUEST_TIMEOUT_MS };
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The server's pid, to make sure it is gone before this process exits (see mcp_client.mjs).
let serverPid = null;
const startTransport = transport.start.bind(transport);
transport.start = async () => {
  await startTransport();
  serverPid = transport.pid;
};

function serverAlive() {
  if (!serverPid) return false;
  try {
    process.kill(serverPid, 0);
    return true;
  } catch {
    return false;
  }
}

async function stopServer() {
  try {
    await Promise.race([client.close(), sleep(3000)]);
  } catch {
    // the transport may already be gone
  }
  for (let i = 0; i < 50 && serverAlive(); i++) await sleep(100); // stdin is closed: it exits
  for (const signal of ['SIGTERM', 'SIGKILL']) {
    if (!serverAlive()) return;
    console.error(`list_tools.mjs: the server (pid ${serverPid}) did not exit; sending ${signal}`);
    process.kill(serverPid, signal);
    for (let i = 0; i < 20 && serverAlive(); i++) await sleep(100);
  }
}

let finishing = false;
async function finish(code) {
  if (finishing) return;
  finishing = true;
  clearTimeout(timer);
  await stopServer();
  process.exit(code);
}

const timer = setTimeout(() => {
  console.error(`list_tools.mjs: timed out after ${TOTAL_TIMEOUT_MS / 1000} s`);
  void finish(124);
}, TOTAL_TIMEOUT_MS);

async function main() {
  const started = Date.now();
  await client.connect(transport, opts);
  const connectMs = Date.now() - started;
  const { tools } = await client.listTools({}, opts);
  // Validated by the SDK against dial_policy's output schema.
  const policy = await client.callTool({ name: 'dial_policy', arguments: {} }, undefined, opts);
  const summary = {
    server: client.getServerVersion() ?? null,
    connectMs,
    toolNames: tools.map((t) => t.name),
    dialPolicy: {
      isError: policy.isError === true,
      text: (policy.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('\n'),
      structuredContent: policy.structuredContent ?? null,
    },
  };
  await new Promise((resolve) => process.stdout.write(JSON.stringify(summary) + '\n', resolve));
}

try {
  await main();
  await finish(0);
} catch (err) {
  console.error('list_tools.mjs failed:', err?.stack ?? err);
  await finish(1);
}
