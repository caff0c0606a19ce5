// Drive callagent's MCP server over stdio with the TypeScript MCP SDK, the client library
// Claude Desktop uses.
//
//     node tests/ts/mcp_client.mjs PYTHON [KNOWN_CALL_ID]
//
// Spawns `PYTHON server.py` (cwd = the repo root, env = this process's environment), lists the
// tools and resource templates, calls list_calls, get_call with an unknown id and
// make_phone_call with an invalid number (refused before anything is dialed) and, given
// KNOWN_CALL_ID (a call already in the store), get_call, wait_for_call and end_call on it and
// reads calls://KNOWN_CALL_ID. The SDK checks every structuredContent against the tool's
// outputSchema (ajv), so a schema the server publishes but does not honour fails here.
//
// Prints ONE JSON line to stdout summarising what it saw. Exits non-zero on any exception or
// after 30 s. The server's stderr (its logs) passes through to this process's stderr.

import { fileURLToPath } from 'node:url';
import path from 'node:path';
import process from 'node:process';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const TOTAL_TIMEOUT_MS = 30_000;
const REQUEST_TIMEOUT_MS = 20_000;
const UNKNOWN_CALL_ID = 'no-such-call-0000';
const INVALID_NUMBER = '12';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');

const python = process.argv[2];
const knownCallId = process.argv[3] || null;
if (!python) {
  console.error('usage: node tests/ts/mcp_client.mjs PYTHON [KNOWN_CALL_ID]');
  process.exit(2);
}

const transport = new StdioClientTransport({
  command: python,
  args: [path.join(repoRoot, 'server.py')],
  env: process.env,
  cwd: repoRoot,
  stderr: 'inherit',
});

// Record the protocol version the server answers `initialize` with (the SDK keeps it private
// on stdio). The Client installs its handler through this setter when it connects.
let negotiatedProtocolVersion = null;
let handler;
Object.defineProperty(transport, 'onmessage', {
  configurable: true,
  get: () => handler,
  set: (fn) => {
    handler = fn && ((message, extra) => {
      if (negotiatedProtocolVersion === null && message?.result?.protocolVersion) {
        negotiatedProtocolVersion = message.result.protocolVersion;
      }
      return fn(message, extra);
    });
  },
});

const client = new Client({ name: 'callagent-ts-test', version: '0.0.0' });
const opts = { timeout: REQUEST_TIMEOUT_MS };

function textOf(result) {
  return (result.content ?? [])
    .filter((c) => c.type === 'text')
    .map((c) => c.text)
    .join('\n');
}

function toolCallSummary(result) {
  return {
    isError: result.isError === true,
    text: textOf(result),
    structuredContent: result.structuredContent ?? null,
  };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The server's pid, to make sure it is gone before this process exits: the SDK's close() ends
// the server's stdin and escalates to SIGTERM/SIGKILL on timers that process.exit would cut short.
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
    console.error(`mcp_client.mjs: the server (pid ${serverPid}) did not exit; sending ${signal}`);
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
  console.error(`mcp_client.mjs: timed out after ${TOTAL_TIMEOUT_MS / 1000} s`);
  void finish(124);
}, TOTAL_TIMEOUT_MS);

async function main() {
  const started = Date.now();
  await client.connect(transport, opts);
  const connectMs = Date.now() - started;

  const { tools } = await client.listTools({}, opts);
  const { resourceTemplates } = await client.listResourceTemplates({}, opts);

  // Validated by the SDK against list_calls' outputSchema.
  const listCalls = await client.callTool({ name: 'list_calls', arguments: { limit: 5 } }, undefined, opts);
  const getUnknown = await client.callTool(
    { name: 'get_call', arguments: { call_id: UNKNOWN_CALL_ID } },
    undefined,
    opts,
  );
  // Refused while validating the number: nothing is dialed and LiveKit is never contacted.
  const makeInvalid = await client.callTool(
    { name: 'make_phone_call', arguments: { phone_number: INVALID_NUMBER } },
    undefined,
    opts,
  );

  const known = {};
  if (knownCallId) {
    known.call_id = knownCallId;
    known.get_call = toolCallSummary(
      await client.callTool({ name: 'get_call', arguments: { call_id: knownCallId } }, undefined, opts),
    );
    known.wait_for_call = toolCallSummary(
      await client.callTool(
        { name: 'wait_for_call', arguments: { call_id: knownCallId, timeout_s: 1 } },
        undefined,
        opts,
      ),
    );
    known.end_call = toolCallSummary(
      await client.callTool({ name: 'end_call', arguments: { call_id: knownCallId } }, undefined, opts),
    );
    const read = await client.readResource({ uri: `calls://${knownCallId}` }, opts);
    known.resource = read.contents.map((c) => ({
      uri: c.uri,
      mimeType: c.mimeType ?? null,
      text: c.text ?? null,
    }));
  }

  const summary = {
    sdk: '@modelcontextprotocol/sdk',
    protocolVersion: negotiatedProtocolVersion,
    server: client.getServerVersion() ?? null,
    capabilities: client.getServerCapabilities() ?? null,
    hasInstructions: Boolean(client.getInstructions()),
    connectMs,
    toolNames: tools.map((t) => t.name),
    tools: Object.fromEntries(
      tools.map((t) => [
        t.name,
        {
          title: t.title ?? null,
          annotations: t.annotations ?? null,
          hasDescription: Boolean(t.description),
          inputRequired: t.inputSchema?.required ?? [],
          inputProperties: Object.keys(t.inputSchema?.properties ?? {}),
          hasOutputSchema: Boolean(t.outputSchema),
        },
      ]),
    ),
    resourceTemplates: resourceTemplates.map((r) => ({
      uriTemplate: r.uriTemplate,
      name: r.name,
      title: r.title ?? null,
      mimeType: r.mimeType ?? null,
    })),
    getCallUnknown: {
      callId: UNKNOWN_CALL_ID,
      isError: getUnknown.isError === true,
      errorText: textOf(getUnknown),
    },
    listCalls: toolCallSummary(listCalls),
    makePhoneCallInvalid: { phoneNumber: INVALID_NUMBER, ...toolCallSummary(makeInvalid) },
    known: knownCallId ? known : null,
  };
  await new Promise((resolve) => process.stdout.write(JSON.stringify(summary) + '\n', resolve));
}

try {
  await main();
  await finish(0);
} catch (err) {
  console.error('mcp_client.mjs failed:', err?.stack ?? err);
  await finish(1);
}
