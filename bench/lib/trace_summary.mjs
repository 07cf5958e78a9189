// @ts-check
/**
 * Where a traced sshfix run's time went (see ../sshfix_traced.mjs): per host,
 * how many connections and scripts, how long the handshake took, and for the
 * k-th script of a host, what it was and how long it took (median over hosts).
 * "Controller gap" is the time between one script closing and the next being
 * asked for: work done (or waited for) in the controller, not on the host.
 */

/** @typedef {import('../sshfix_traced.mjs').ScriptTrace} ScriptTrace */

/**
 * @typedef {object} TraceFile
 * @property {{ address: string, connectMs: number, readyMs: number | null, closedMs: number | null,
 *   scripts: ScriptTrace[] }[]} connections
 */

/** @param {number[]} values */
export function median(values) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? /** @type {number} */ (sorted[mid])
    : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** @param {number[]} values */
function max(values) {
  return values.length === 0 ? null : Math.max(...values);
}

/**
 * @param {TraceFile} trace
 */
export function summariseTrace(trace) {
  /** @type {Map<string, TraceFile['connections']>} */
  const byHost = new Map();
  for (const c of trace.connections) byHost.set(c.address, [...(byHost.get(c.address) ?? []), c]);
  const hosts = [...byHost.values()];
  const firstConnect = Math.min(...trace.connections.map((c) => c.connectMs));
  const lastClose = Math.max(...trace.connections.map((c) => c.closedMs ?? c.connectMs));

  /** @type {{ label: string, durations: number[], gaps: number[] }[]} */
  const steps = [];
  const handshakes = [];
  const hostSpans = [];
  const startOffsets = [];
  for (const connections of hosts) {
    const scripts = connections.flatMap((c) => c.scripts).sort((a, b) => a.requestedMs - b.requestedMs);
    const first = connections[0];
    if (first?.readyMs != null) handshakes.push(first.readyMs - first.connectMs);
    if (first) startOffsets.push(first.connectMs - firstConnect);
    const end = Math.max(...connections.map((c) => c.closedMs ?? c.connectMs));
    if (first) hostSpans.push(end - first.connectMs);
    let previousEnd = first?.readyMs ?? null;
    scripts.forEach((s, k) => {
      const step = steps[k] ?? { label: s.label, durations: [], gaps: [] };
      steps[k] = step;
      if (!step.label.split(' | ').includes(s.label) && step.label.split(' | ').length < 3)
        step.label += ` | ${s.label}`;
      if (s.closedMs !== null) step.durations.push(s.closedMs - s.requestedMs);
      if (previousEnd !== null) step.gaps.push(s.requestedMs - previousEnd);
      previousEnd = s.closedMs;
    });
  }
  const round = (/** @type {number | null} */ v) => (v === null ? null : Math.round(v));
  return {
    hosts: hosts.length,
    /** From process start (Node's time origin) to the first TCP connect: loading modules, reading the playbook. */
    startupMs: Math.round(firstConnect),
    connectionsPerHost: { median: median(hosts.map((c) => c.length)), max: max(hosts.map((c) => c.length)) },
    scriptsPerHost: {
      median: median(hosts.map((c) => c.reduce((n, x) => n + x.scripts.length, 0))),
      max: max(hosts.map((c) => c.reduce((n, x) => n + x.scripts.length, 0))),
    },
    handshakeMs: { median: round(median(handshakes)), max: round(max(handshakes)) },
    hostSpanMs: { median: round(median(hostSpans)), max: round(max(hostSpans)) },
    /** When the last host started, after the first: the queue (forks) or the controller's start-up of connections. */
    lastHostStartMs: round(max(startOffsets)),
    sshPhaseMs: Math.round(lastClose - firstConnect),
    steps: steps.map((s, k) => ({
      step: k + 1,
      label: s.label,
      hosts: s.durations.length,
      medianMs: round(median(s.durations)),
      maxMs: round(max(s.durations)),
      medianControllerGapMs: round(median(s.gaps)),
    })),
  };
}

/**
 * @param {ReturnType<typeof summariseTrace>} summary
 * @param {number} wallS  the whole process's wall time
 */
export function renderTraceSummary(summary, wallS) {
  const lines = [
    `  hosts ${summary.hosts}; connections/host median ${summary.connectionsPerHost.median} (max ${summary.connectionsPerHost.max}); ` +
      `scripts/host median ${summary.scriptsPerHost.median} (max ${summary.scriptsPerHost.max})`,
    `  process wall ${(wallS * 1000).toFixed(0)} ms = start-up until the first connect ${summary.startupMs} ms + SSH phase ${summary.sshPhaseMs} ms + the rest (exit, output) ${Math.round(wallS * 1000 - summary.startupMs - summary.sshPhaseMs)} ms`,
    `  handshake median ${summary.handshakeMs.median} ms (max ${summary.handshakeMs.max}); host span (connect to close) median ${summary.hostSpanMs.median} ms (max ${summary.hostSpanMs.max}); last host started ${summary.lastHostStartMs} ms after the first`,
    '  step  hosts  median ms  max ms  controller gap before (median ms)  what',
    ...summary.steps.map(
      (s) =>
        `  ${String(s.step).padStart(4)}  ${String(s.hosts).padStart(5)}  ${String(s.medianMs).padStart(9)}  ${String(s.maxMs).padStart(6)}  ${String(s.medianControllerGapMs).padStart(33)}  ${s.label}`,
    ),
  ];
  return `${lines.join('\n')}\n`;
}
