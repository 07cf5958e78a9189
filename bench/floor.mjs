#!/usr/bin/env node
// @ts-check
/**
 * The floor sshfix is measured against: for every host in a known_hosts file,
 * a bare ssh2 connection (host key checked against that file, public key
 * authentication), one command (`true` by default), close — at most `--forks`
 * hosts at once. Nothing else: no inventory, no playbook, no planning. Run as
 * its own process so that its start-up and exit count, as sshfix's do.
 *
 *   node bench/floor.mjs --known-hosts FILE --key FILE [--forks N] [--user root] [--command true] [--confirm]
 *
 * With `--confirm`, each host whose command succeeded gets a second, new
 * connection that runs `true`: the least any tool must do to prove that a
 * change it just made still lets a new login in.
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
 * Connects, runs `command`, closes. Resolves with an error message or null.
 * @param {Target} target
 * @param {{ user: string, privateKey: Buffer, command: string, timeoutMs: number }} options
 * @returns {Promise<string | null>}
 */
function touchHost(target, options) {
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
    const timer = setTimeout(() => finish(`no answer within ${options.timeoutMs} ms`), options.timeoutMs);
    client.on('error', (error) => finish(error.message));
    client.on('close', () => finish('connection closed early'));
    client.on('connect', () => client.setNoDelay(true));
    client.on('ready', () => {
      client.exec(options.command, (error, channel) => {
        if (error) return finish(`exec: ${error.message}`);
        /** @type {number | null} */
        let exitCode = null;
        channel.on('exit', (/** @type {number | null} */ code) => (exitCode = code));
        channel.on('data', () => undefined);
        channel.stderr.on('data', () => undefined);
        channel.on('close', () => finish(exitCode === 0 ? null : `${options.command} exited ${exitCode}`));
      });
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
    },
  });
  if (values['known-hosts'] === undefined || values.key === undefined) {
    process.stderr.write(
      'usage: floor.mjs --known-hosts FILE --key FILE [--forks N] [--user U] [--command C] [--confirm]\n',
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
  const failed = await forEachLimited(targets, Math.max(1, Number(values.forks)), async (t) => {
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
