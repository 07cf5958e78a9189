#!/usr/bin/env node
// @ts-check
/**
 * `sshfix` (dist/cli/main.js) with every ssh2 handshake and exec timed, for
 * finding where a run's time goes without touching src/. The ssh2 Client
 * prototype is wrapped before the CLI loads, so the transport is exactly the
 * one a normal run uses; the extra work is a few clock reads per script.
 *
 *   SSHFIX_BENCH_TRACE=trace.json node bench/sshfix_traced.mjs apply PLAYBOOK -i INVENTORY ...
 *
 * The trace file holds, per connection: the address, when the TCP connect
 * started, when authentication finished, and per script (stdin of the
 * exec'd shell) when the channel open was asked for, when it opened, when it
 * closed, its exit code, bytes in and out, and a short label.
 */
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import ssh2 from 'ssh2';

/**
 * @typedef {{ label: string, requestedMs: number, openedMs: number | null, closedMs: number | null,
 *   exitCode: number | null, stdinBytes: number, stdoutBytes: number }} ScriptTrace
 * @typedef {{ address: string, connectMs: number, readyMs: number | null, closedMs: number | null,
 *   scripts: ScriptTrace[] }} ConnectionTrace
 */

const traceFile = process.env.SSHFIX_BENCH_TRACE;
/** @type {ConnectionTrace[]} */
const connections = [];
/** @type {WeakMap<object, ConnectionTrace>} */
const traceOf = new WeakMap();
const now = () => Math.round(performance.now() * 10) / 10;

/**
 * What a script is, from its text: the marker lines sshfix's scripts carry.
 * @param {string} script
 */
function labelScript(script) {
  if (script.includes("'@@sshfix ")) return labelReadBatch(script);
  if (script.includes('firewall-check-')) return 'firewall: validate rules file';
  if (script.includes('sshfix-fail2ban.')) return 'fail2ban: validate (fail2ban-client -t)';
  if (/sshd -t\b|\/sshd' '-t'|sshd\S* -t /.test(script)) return 'sshd: validate (sshd -t)';
  if (script.includes('sshfix-restore-ran') || script.includes('restore.sh')) return 'transaction';
  if (/base64 -d/.test(script)) return 'write files';
  if (/kill -HUP|reload/.test(script)) return 'reload';
  if (/iptables|nft |ufw |firewall-cmd/.test(script)) return 'firewall command';
  const first = script
    .split('\n')
    .map((line) => line.trim())
    .find((line) => line !== '' && !line.startsWith('#') && !/^(set -|umask|PATH=|LC_ALL)/.test(line));
  return (first ?? '(empty)').slice(0, 60);
}

/**
 * A planning read batch (src/executor/remote_read.ts): how many files, globs and probes, and what the probes run.
 * @param {string} script
 */
function labelReadBatch(script) {
  const count = (/** @type {string} */ kind) =>
    (script.match(new RegExp(`'@@sshfix \\d+ ${kind}[ \\\\]`, 'g')) ?? []).length;
  const probes = [
    ['sshd -T', /sshd\S*'? -T\b/],
    ['find sshd', /for p in \/usr\/sbin\/sshd/],
    ['firewall facts', /iptables-save|nft list ruleset/],
    ['fail2ban status', /fail2ban\.sock/],
    ['fail2ban-client', /fail2ban-client\S*'? (banned|status)/],
    ['service detection', /systemctl|init\.d/],
  ]
    .filter(([, pattern]) => /** @type {RegExp} */ (pattern).test(script))
    .map(([name]) => name);
  const probeList = probes.length > 0 ? ` [${probes.join(', ')}]` : '';
  return `read: ${count('file')} files, ${count('glob')} globs, ${count('probe')} probes${probeList}`;
}

const ClientPrototype = ssh2.Client.prototype;
const originalConnect = ClientPrototype.connect;
const originalExec = ClientPrototype.exec;

/** @this {import('ssh2').Client} @param {import('ssh2').ConnectConfig} config */
ClientPrototype.connect = function tracedConnect(config) {
  /** @type {ConnectionTrace} */
  const trace = {
    address: String(config.host ?? '?'),
    connectMs: now(),
    readyMs: null,
    closedMs: null,
    scripts: [],
  };
  connections.push(trace);
  traceOf.set(this, trace);
  this.once('ready', () => (trace.readyMs = now()));
  this.once('close', () => (trace.closedMs = now()));
  return originalConnect.call(this, config);
};

/**
 * Wraps exec(command, [options,] callback): the script arrives on the channel's stdin.
 * @this {import('ssh2').Client}
 * @param {...unknown} args
 */
ClientPrototype.exec = function tracedExec(...args) {
  const trace = traceOf.get(this);
  const callbackIndex = args.findIndex((a) => typeof a === 'function');
  if (trace === undefined || callbackIndex === -1) {
    return /** @type {Function} */ (originalExec).apply(this, args);
  }
  /** @type {ScriptTrace} */
  const script = {
    label: '',
    requestedMs: now(),
    openedMs: null,
    closedMs: null,
    exitCode: null,
    stdinBytes: 0,
    stdoutBytes: 0,
  };
  trace.scripts.push(script);
  const callback = /** @type {(error: Error | undefined, channel: import('ssh2').ClientChannel) => void} */ (
    args[callbackIndex]
  );
  args[callbackIndex] = (
    /** @type {Error | undefined} */ error,
    /** @type {import('ssh2').ClientChannel} */ channel,
  ) => {
    if (error) {
      script.label = `(open refused: ${error.message})`;
      script.closedMs = now();
    } else {
      script.openedMs = now();
      let stdin = '';
      const originalWrite = channel.write.bind(channel);
      const originalEnd = channel.end.bind(channel);
      /** @param {unknown} chunk */
      const note = (chunk) => {
        if (typeof chunk === 'string' || Buffer.isBuffer(chunk)) {
          const text = chunk.toString();
          script.stdinBytes += Buffer.byteLength(text);
          if (stdin.length < 64 * 1024) stdin += text;
          script.label = labelScript(stdin);
        }
      };
      channel.write = /** @type {typeof channel.write} */ (
        (/** @type {unknown} */ chunk, /** @type {any[]} */ ...rest) => {
          note(chunk);
          return originalWrite(/** @type {any} */ (chunk), ...rest);
        }
      );
      channel.end = /** @type {typeof channel.end} */ (
        (/** @type {unknown} */ chunk, /** @type {any[]} */ ...rest) => {
          if (chunk !== undefined && typeof chunk !== 'function') note(chunk);
          return originalEnd(/** @type {any} */ (chunk), ...rest);
        }
      );
      channel.on('data', (/** @type {Buffer} */ data) => (script.stdoutBytes += data.length));
      channel.on('exit', (/** @type {number | null} */ code) => (script.exitCode = code));
      channel.on('close', () => (script.closedMs = now()));
    }
    callback(error, channel);
  };
  return /** @type {Function} */ (originalExec).apply(this, args);
};

process.on('exit', () => {
  if (traceFile !== undefined) fs.writeFileSync(traceFile, JSON.stringify({ connections }));
});

const { main } = await import('../dist/cli/main.js');
process.exitCode = await main(process.argv.slice(2));
