#!/usr/bin/env node
// @ts-check
/**
 * The floor sshfix is measured against: for every host in a known_hosts file,
 * a bare ssh2 connection (host key checked against that file, public key
 * authentication), one command (`true` by default), close — at most `--forks`
 * hosts at once. Nothing else: no inventory, no playbook, no planning. Run as
 * its own process so that its start-up and exit count, as sshfix's do.
 *
 *   node bench/floor.mjs --known-hosts FILE --key FILE [--forks N] [--user root] [--command true]
 *     [--confirm [--after-confirm COMMAND]]
 *
 * With `--confirm`, each host whose command succeeded gets a second, new
 * connection that runs `true`: the least any tool must do to prove that a
 * change it just made still lets a new login in. With `--after-confirm`, the
 * first connection stays open meanwhile, and once the new one got in,
 * COMMAND runs over the first (a confirm-or-revert change cancels its
 * dead-man timer there: bench/lib/bounds.mjs).
 *
 * Prints one JSON line ({"hosts":N,"ok":N,"failed":[...]}); exits 1 when any host failed.
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import ssh2 from 'ssh2';

const { Client } = ssh2;

/** @typedef {{ address: string, port: number, keyType: string, keyBlob: Buffer }} Target */

/**
 * Plain `ADDRESS KEYTYPE BASE64` and `[ADDRESS]:PORT KEYTYPE BASE64` lines (what the lab writes).
 * @param {string} text
 * @returns {Target[]}
 */
function parseKnownHosts(text) {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [host = '', keyType = '', key = ''] = line.split(/\s+/);
      const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(host);
      return {
        address: bracketed?.[1] ?? host,
        port: bracketed ? Number(bracketed[2]) : 22,
        keyType,
        keyBlob: Buffer.from(key, 'base64'),
      };
    });
}

/**
 * Runs `command` over an open connection. Resolves with an error message or null.
 * @param {import('ssh2').Client} client
 * @param {string} command
 * @returns {Promise<string | null>}
 */
function execOn(client, command) {
  return new Promise((resolve) => {
    client.exec(command, (error, channel) => {
      if (error) return resolve(`exec: ${error.message}`);
      /** @type {number | null} */
      let exitCode = null;
      channel.on('exit', (/** @type {number | null} */ code) => (exitCode = code));
      // Read and dropped: what a command prints crosses the network, as a real read's would.
      channel.on('data', () => undefined);
      // The last of it says why a command failed.
      let stderr = '';
      channel.stderr.on('data', (/** @type {Buffer} */ chunk) => (stderr = (stderr + chunk).slice(-500)));
      channel.on('close', () => {
        const why = stderr.trim().split('\n').pop() ?? '';
        resolve(exitCode === 0 ? null : `${firstLine(command)} exited ${exitCode}${why ? `: ${why}` : ''}`);
      });
    });
  });
}

/** @param {string} command */
function firstLine(command) {
  const lines = command.split('\n');
  return lines.length > 1 ? `${lines[0]} ...` : command;
}

/**
 * Connects, runs `command`, closes. With `whileOpen`, once the command
 * succeeded: `whileOpen.first()` (the confirmation), then, when that
 * succeeded too, `whileOpen.command` over this same connection, still open.
 * Resolves with an error message or null.
 * @param {Target} target
 * @param {{ user: string, privateKey: Buffer, command: string, timeoutMs: number }} options
 * @param {{ first: () => Promise<string | null>, command: string } | null} [whileOpen]
 * @returns {Promise<string | null>}
 */
function touchHost(target, options, whileOpen = null) {
  return new Promise((resolve) => {
    const client = new Client();
    let settled = false;
    /** @param {string | null} outcome */
    const finish = (outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (outcome === null) client.end();
      else client.destroy();
      resolve(outcome === null ? null : `${target.address}: ${outcome}`);
    };
    /** @param {string} message */
    const finishWith = (message) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.destroy();
      resolve(message);
    };
    // The whole exchange, the time while open included: the confirmation has its own limits.
    const timeoutMs = whileOpen === null ? options.timeoutMs : options.timeoutMs * 3;
    const timer = setTimeout(() => finish(`no answer within ${timeoutMs} ms`), timeoutMs);
    client.on('error', (error) => finish(error.message));
    client.on('close', () => finish('connection closed early'));
    client.on('connect', () => client.setNoDelay(true));
    client.on('ready', async () => {
      const failure = await execOn(client, options.command);
      if (failure !== null || whileOpen === null) return finish(failure);
      const failed = await whileOpen.first();
      // Already a host's message: passed on as it is.
      if (failed !== null) return finishWith(failed);
      const after = await execOn(client, whileOpen.command);
      finish(after === null ? null : `after the confirmation: ${after}`);
    });
    client.connect({
      host: target.address,
      port: target.port,
      username: options.user,
      privateKey: options.privateKey,
      readyTimeout: options.timeoutMs,
      // The key type we know, as an OpenSSH client with this known_hosts would offer first.
      algorithms: {
        serverHostKey: /** @type {import('ssh2').ServerHostKeyAlgorithm[]} */ ([target.keyType]),
      },
      hostVerifier: (/** @type {Buffer} */ key) => key.equals(target.keyBlob),
    });
  });
}

/** sshd refuses connections while it re-executes after a reload: retried as sshfix retries them. */
const REFUSED_RETRY_DELAYS_MS = [50, 100, 200, 400, 800, 1000, 1000, 1000];

/**
 * A new connection running `true`, retried while refused.
 * @param {Target} target
 * @param {{ user: string, privateKey: Buffer, command: string, timeoutMs: number }} options
 */
async function confirm(target, options) {
  let failure = await touchHost(target, { ...options, command: 'true' });
  for (const delay of REFUSED_RETRY_DELAYS_MS) {
    if (failure === null || !failure.includes('ECONNREFUSED')) break;
    await new Promise((resolve) => setTimeout(resolve, delay));
    failure = await touchHost(target, { ...options, command: 'true' });
  }
  return failure;
}

/**
 * @template T
 * @param {readonly T[]} items
 * @param {number} limit
 * @param {(item: T) => Promise<string | null>} task
 * @returns {Promise<string[]>} the failures
 */
async function forEachLimited(items, limit, task) {
  /** @type {string[]} */
  const failures = [];
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = /** @type {T} */ (items[next++]);
      const failure = await task(item);
      if (failure !== null) failures.push(failure);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return failures;
}

async function main() {
  const { values } = parseArgs({
    options: {
      'known-hosts': { type: 'string' },
      key: { type: 'string' },
      forks: { type: 'string', default: '25' },
      user: { type: 'string', default: 'root' },
      command: { type: 'string', default: 'true' },
      timeout: { type: 'string', default: '30' },
      confirm: { type: 'boolean', default: false },
      'after-confirm': { type: 'string' },
    },
  });
  if (
    values['known-hosts'] === undefined ||
    values.key === undefined ||
    (values['after-confirm'] !== undefined && !values.confirm)
  ) {
    process.stderr.write(
      'usage: floor.mjs --known-hosts FILE --key FILE [--forks N] [--user U] [--command C] [--confirm [--after-confirm C]]\n',
    );
    return 2;
  }
  const targets = parseKnownHosts(fs.readFileSync(values['known-hosts'], 'utf8'));
  const options = {
    user: values.user,
    privateKey: fs.readFileSync(values.key),
    command: values.command,
    timeoutMs: Number(values.timeout) * 1000,
  };
  const afterConfirm = values['after-confirm'];
  const failed = await forEachLimited(targets, Math.max(1, Number(values.forks)), async (t) => {
    if (afterConfirm !== undefined)
      return touchHost(t, options, { first: () => confirm(t, options), command: afterConfirm });
    const failure = await touchHost(t, options);
    return failure !== null || !values.confirm ? failure : confirm(t, options);
  });
  process.stdout.write(
    `${JSON.stringify({ hosts: targets.length, ok: targets.length - failed.length, failed })}\n`,
  );
  return failed.length === 0 ? 0 : 1;
}

main().then(
  (code) => (process.exitCode = code),
  (error) => {
    process.stderr.write(`floor: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
