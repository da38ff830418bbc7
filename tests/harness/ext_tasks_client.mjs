// The MCP Inspector 2.12's own Tasks client, driven from Node: `@modelcontextprotocol/ext-tasks`
// (the version the Inspector 2.12.0 pins and installs) on the `@modelcontextprotocol/client` SDK
// Client it builds on, wired up the way the Inspector's InspectorClient wires it
// (`attachTaskSession`): `createTaskSessionFromClient` with a `rawDispatch` request coordinator
// below the SDK (ext-tasks requires one for a 2026-07-28 Tasks server, because the SDK's wire
// codecs reject task traffic), `v2RequestFraming` from the negotiated session, and an
// `onInputRequest` handler from `createApplicationInputHandler`. Every request on the wire is built
// by ext-tasks or the SDK; this script only carries frames (`RawWire`, the Inspector's
// RawWireChannel reduced to what stdio needs: the Inspector does not export its own).
//
// Usage: node ext_tasks_client.mjs <node_modules dir> <config JSON>
//   config: {command, args, env, cwd, stderrPath, approveArguments, cancelArguments}
// Prints one JSON object on stdout (see `main`); exits 0 unless the script itself broke.

import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [nodeModules, rawConfig] = process.argv.slice(2);
const config = JSON.parse(rawConfig);
const load = (path) => import(pathToFileURL(join(nodeModules, "@modelcontextprotocol", path)).href);

const { Client } = await load("client/dist/index.mjs");
const { StdioClientTransport } = await load("client/dist/stdio.mjs");
const ext = await load("ext-tasks/dist/client/index.js");
const { TASKS_EXTENSION_ID_V2 } = await load("ext-tasks/dist/core/v2/index.js");

const MODERN = "2026-07-28";
const RAW_ID_PREFIX = "ext-tasks-raw-";
const TIMEOUT_MS = 60_000;

/** Which requests went out on the raw channel, in order (method and taskId): the evidence that
 * ext-tasks itself polled, updated and cancelled. */
const wire = [];

/** Sends ext-tasks' JSON-RPC requests on the transport and hands their responses back before the
 * SDK sees them (string ids the SDK never issues). */
class RawWire {
  pending = new Map();
  counter = 0;
  transport = undefined;

  dispatch = async (request, options = {}) => {
    if (this.transport === undefined) throw new ext.DispatchError("not connected", true);
    const id = `${RAW_ID_PREFIX}${(this.counter += 1)}`;
    const message = { jsonrpc: "2.0", id, method: request.method, ...(request.params === undefined ? {} : { params: request.params }) };
    wire.push({ method: request.method, taskId: request.params?.taskId, params: request.method === "tasks/update" ? request.params : undefined });
    const timeoutMs = options.context?.requestTimeoutMs ?? TIMEOUT_MS;
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ext.DispatchError(`raw ${request.method} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      const onAbort = () => {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(options.signal.reason ?? new Error("aborted"));
      };
      if (options.signal?.aborted) return onAbort();
      options.signal?.addEventListener("abort", onAbort, { once: true });
      this.pending.set(id, (response) => {
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
        resolve(response);
      });
      this.transport.send(message).catch((error) => {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(error);
      });
    });
  };

  /** True when `message` answers one of ours (then it is consumed here). */
  consume(message) {
    if (typeof message?.id !== "string" || !message.id.startsWith(RAW_ID_PREFIX)) return false;
    const settle = this.pending.get(message.id);
    this.pending.delete(message.id);
    if (settle !== undefined) {
      settle("error" in message ? { kind: "error", error: message.error } : { kind: "result", result: message.result });
    }
    return true;
  }

  /** The transport, with responses to raw requests taken out of the SDK's message stream. */
  wrap(transport) {
    this.transport = transport;
    const consume = (message) => this.consume(message);
    return new Proxy(transport, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
      set(target, prop, value) {
        if (prop === "onmessage" && typeof value === "function") {
          target.onmessage = (message, extra) => {
            if (!consume(message)) value(message, extra);
          };
          return true;
        }
        return Reflect.set(target, prop, value, target);
      },
    });
  }
}

function view(task) {
  return task === undefined
    ? null
    : { taskId: task.taskId, status: task.status, statusMessage: task.statusMessage ?? null, pollIntervalMs: task.suggestedPollIntervalMs ?? null, retentionMs: task.retentionMs };
}

function outcomeJson(outcome) {
  const base = { status: outcome.status, task: view(outcome.task) };
  if (outcome.status === "completed") return { ...base, result: outcome.result };
  if (outcome.status === "failed") return { ...base, error: { message: outcome.error.message, code: outcome.error.code ?? null, data: outcome.error.data ?? null } };
  return base;
}

async function main() {
  const rawWire = new RawWire();
  const base = new StdioClientTransport({
    command: config.command,
    args: config.args,
    env: config.env,
    cwd: config.cwd,
    stderr: "pipe",
  });
  base.stderr?.on("data", (chunk) => appendFileSync(config.stderrPath, chunk));
  const transport = rawWire.wrap(base);

  // What the Inspector declares on `--protocol-era modern`: form elicitation, and the extension.
  const clientInfo = { name: "codex-mcp-ext-tasks-test", version: "0.0.0" };
  const clientCapabilities = { elicitation: { form: {} }, extensions: { [TASKS_EXTENSION_ID_V2]: {} } };
  const client = new Client(clientInfo, {
    capabilities: clientCapabilities,
    versionNegotiation: { mode: { pin: MODERN } },
    inputRequired: { autoFulfill: false },
  });
  await client.connect(transport);

  const elicitations = [];
  const backgroundErrors = [];
  const session = ext.createTaskSessionFromClient(client, {
    endpointId: await ext.createTaskSessionEndpointId("codex-mcp-test", { command: config.command, args: config.args }),
    maxInputRounds: 10,
    rawDispatch: rawWire.dispatch,
    v2RequestFraming: { protocolVersion: client.getNegotiatedProtocolVersion(), clientInfo, clientCapabilities },
    tools: { currentTool: () => undefined },
    onInputRequest: ext.createApplicationInputHandler({
      elicitation: async (request, context) => {
        elicitations.push({ params: request.params, scope: context.scope, delivery: context.delivery, taskId: context.taskId ?? null, inputId: context.inputId ?? null });
        return { action: "accept", content: { decision: "accept" } };
      },
      sampling: async () => {
        throw new Error("no sampling in this test");
      },
      roots: async () => ({ roots: [] }),
    }),
    onError: (error) => void backgroundErrors.push(String(error?.stack ?? error)),
  });

  const out = {
    protocolVersion: client.getNegotiatedProtocolVersion(),
    protocolEra: client.getProtocolEra(),
    serverTasksExtension: client.getServerCapabilities()?.extensions?.[TASKS_EXTENSION_ID_V2] ?? null,
    capabilities: session.capabilities,
  };
  try {
    // 1. An approval: ext-tasks polls tasks/get, hands the input request to our handler, sends
    // its answer with tasks/update and polls on to the result.
    const approve = await session.callTool("codex", config.approveArguments, { task: { preference: "prefer" } });
    const approveEvents = [];
    const settled = await approve.settle({ onEvent: (event) => void approveEvents.push(event.type === "task" ? view(event.task).status : `outcome:${event.outcome.status}`) });
    out.approve = {
      kind: approve.kind,
      taskId: approve.handle?.taskId ?? null,
      events: approveEvents,
      elicitations,
      outcome: outcomeJson(settled.outcome),
    };

    // 2. A cancel: the handle, then tasks/cancel, then the task as tasks/get sees it.
    const slow = await session.callTool("codex", config.cancelArguments, { task: { preference: "prefer" } });
    out.cancel = { kind: slow.kind, taskId: slow.handle?.taskId ?? null };
    if (slow.kind === "task") {
      const controller = session.task(slow.handle.taskId);
      out.cancel.before = view(await controller.snapshot());
      await session.cancelTask(slow.handle.taskId);
      const slowSettled = await slow.settle();
      out.cancel.outcome = outcomeJson(slowSettled.outcome);
      // Cooperative: tasks/get until the server reports the interrupted turn (bounded).
      let after = await controller.snapshot();
      for (let i = 0; i < 40 && !["completed", "failed", "cancelled"].includes(after.status); i += 1) {
        await new Promise((done) => setTimeout(done, after.suggestedPollIntervalMs ?? 500));
        after = await controller.snapshot();
      }
      out.cancel.after = view(after);
    }
  } catch (error) {
    out.error = { stack: String(error?.stack ?? ""), name: error?.name ?? null, message: String(error?.message ?? error), code: error?.code ?? null, data: error?.data ?? null, cause: error?.cause ? String(error.cause?.message ?? error.cause) : null };
  } finally {
    out.wire = wire;
    out.backgroundErrors = backgroundErrors;
    await session.close().catch(() => {});
    await client.close().catch(() => {});
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

await main();
