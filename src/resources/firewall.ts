/**
 * `firewall: {allow_ssh_from, port?, backend?, persist?, remove_blocking?}` —
 * make sure new SSH connections from the given addresses get through the
 * host's firewall: an exact allow rule placed before anything that could
 * drop or reject them (an ACCEPT after a DROP is dead), optionally removing
 * the rules that block exactly those sources on that port (never fail2ban's),
 * and persisting the result the way the backend does.
 *
 * Everything is read with one probe (plus the persistence files in the same
 * round trip); the decisions are pure code in src/formats/firewall_*.ts.
 */
import { createHash } from 'node:crypto';
import { fileContent, shellCommand, shellQuote } from '../transport/shell.js';
import type { CommandStep, FileChange, FileState, ResourcePlan } from '../plan/types.js';
import { parseCidr, type Cidr } from '../formats/firewall_cidr.js';
import {
  firewallProbeScript,
  firewallRulesetEssence,
  parseFirewallProbe,
  UFW_RULES_V4,
  UFW_RULES_V6,
  type SshdPorts,
} from '../formats/firewall_probe.js';
import {
  decideFirewall,
  FirewallPlanError,
  NFTABLES_CONF,
  RULES_V4,
  RULES_V6,
  type Backend,
  type FirewallRequest,
  type PlannedCommand,
  type PlannedFile,
  type StoredFile,
} from '../formats/firewall_decide.js';
import type { ArgumentProblem, HostCheck, HostView, ResourceKind } from './types.js';
import type { ExecResult } from '../transport/types.js';
import { readSshdPorts } from './sshd_tree.js';

export interface FirewallArgs {
  allow_ssh_from: string[];
  port?: number;
  backend?: Backend | 'auto';
  persist?: boolean;
  remove_blocking?: boolean;
}

/** What validate() and verify() need, carried inside the plan. */
interface FirewallPlanData {
  request: Omit<FirewallRequest, 'sources'> & { sources: string[] };
  /** sshd's ports as planning saw them: verify checks the same ports. */
  sshdPorts: SshdPorts;
  files: { path: string; after: string; check: string[] }[];
}

const PERSISTENCE_FILES = [RULES_V4, RULES_V6, NFTABLES_CONF];

/**
 * The script for one command: the command as shown (shellCommand), then
 * extra exit codes that mean success mapped to 0.
 */
export function commandScript(command: PlannedCommand): string {
  const line = shellCommand(command.words).script;
  if (command.alsoOk.length === 0) return line;
  const ok = command.alsoOk.map((c) => `[ "$rc" -eq ${c} ]`).join(' || ');
  return `${line}; rc=$?; if [ "$rc" -eq 0 ] || ${ok}; then exit 0; fi; exit "$rc"`;
}

function toStep(command: PlannedCommand): CommandStep {
  return { description: shellCommand(command.words).description, script: commandScript(command) };
}

function parseSources(args: FirewallArgs): Cidr[] {
  return args.allow_ssh_from.map((text) => {
    const { cidr, error } = parseCidr(text);
    if (!cidr) throw new FirewallPlanError(`allow_ssh_from: ${error}`);
    return cidr;
  });
}

function requestOf(args: FirewallArgs): FirewallRequest {
  return {
    sources: parseSources(args),
    port: args.port ?? null,
    backend: args.backend ?? 'auto',
    persist: args.persist ?? true,
    removeBlocking: args.remove_blocking ?? true,
  };
}

function toFileChange(file: PlannedFile, stored: ReadonlyMap<string, { sha256?: string }>): FileChange {
  return {
    path: file.path,
    before: file.before,
    beforeSha256: file.before === null ? null : (stored.get(file.path)?.sha256 ?? null),
    after: file.after,
    mode: '0640',
    owner: 'root',
    group: 'root',
  };
}

async function planFirewall(args: FirewallArgs, host: HostView): Promise<ResourcePlan<FirewallPlanData>> {
  const request = requestOf(args);
  // Issued in the same tick: one round trip for the probe and the files.
  const [probe, stored, ufwFiles, ports] = await Promise.all([
    host.probe(firewallProbeScript(), { description: 'firewall ruleset', essence: firewallRulesetEssence }),
    request.persist ? host.readFiles(PERSISTENCE_FILES) : Promise.resolve(new Map<string, FileState>()),
    host.readFiles([UFW_RULES_V4, UFW_RULES_V6]),
    request.port === null ? readSshdPorts(host) : Promise.resolve({ ports: [request.port] }),
  ]);
  const contentOf = (path: string): string | null => {
    const file = ufwFiles.get(path);
    return file?.exists ? file.content : null;
  };
  const facts = parseFirewallProbe(probe.stdout, ports, {
    v4: contentOf(UFW_RULES_V4),
    v6: contentOf(UFW_RULES_V6),
  });
  const files = new Map<string, StoredFile>(
    [...stored].map(([p, f]) => [p, { exists: f.exists, content: f.content }]),
  );
  const decision = decideFirewall(facts, request, files);
  if (decision.skipReason !== undefined) {
    return { action: 'skip', messages: [decision.skipReason], warnings: [], fileChanges: [], commands: [] };
  }
  const fileChanges = decision.files.map((f) => toFileChange(f, stored));
  const commands = decision.commands.map(toStep);
  const data: FirewallPlanData = {
    request: { ...request, sources: args.allow_ssh_from },
    sshdPorts: ports,
    files: decision.files.map((f) => ({ path: f.path, after: f.after, check: f.check })),
  };
  const changing = fileChanges.length > 0 || commands.length > 0;
  return {
    action: changing ? 'change' : 'none',
    messages: changing
      ? decision.messages
      : [
          `${decision.backend}: SSH from ${args.allow_ssh_from.join(', ')} is accepted before any drop/reject`,
        ],
    warnings: decision.warnings,
    fileChanges,
    commands,
    stateDiffs: decision.stateDiffs,
    // Also a change of persistence files only: a rollback puts back the live rules it may reload from them.
    effects: { firewall: true },
    data,
  };
}

/** Every persistence file must load as it will at boot: `nft -c -f`, `iptables-restore --test` on a staged copy. */
function validateFiles(plan: ResourcePlan<FirewallPlanData>): HostCheck[] {
  const data = plan.data;
  if (data === undefined) return [];
  return data.files.map((file) => {
    const digest = createHash('sha256').update(file.after).digest('hex').slice(0, 12);
    const staged = `/run/sshfix/firewall-check-${digest}`;
    const check = [...file.check.map(shellQuote), shellQuote(staged)].join(' ');
    const script = [
      'umask 077',
      `mkdir -p /run/sshfix && { ${fileContent(file.after, 'SSHFIX_FIREWALL_FILE')}} > ${shellQuote(staged)}`,
      // iptables-restore reads stdin; nft -f takes the path.
      file.check[0] === 'nft'
        ? `${check} 2>&1; rc=$?`
        : `${file.check.map(shellQuote).join(' ')} < ${shellQuote(staged)} 2>&1; rc=$?`,
      `rm -f ${shellQuote(staged)}`,
      'exit $rc',
    ].join('\n');
    const failure = (result: ExecResult): string | undefined => {
      if (result.exitCode === 0) return undefined;
      const output = (result.stdout + result.stderr).split(staged).join(file.path).trim();
      return `${file.check.join(' ')} rejects the new ${file.path}: ${output || `exit code ${result.exitCode}`}`;
    };
    return { script, failure };
  });
}

/** After apply, the runtime firewall read again must need nothing more (files excepted: already checked). */
function verifyRuntime(plan: ResourcePlan<FirewallPlanData>): HostCheck[] {
  const data = plan.data;
  if (data === undefined) return [];
  const failure = (result: ExecResult): string | undefined => {
    const facts = parseFirewallProbe(result.stdout, data.sshdPorts);
    const request: FirewallRequest = {
      ...data.request,
      sources: data.request.sources.map((s) => parseCidr(s).cidr!),
    };
    const again = decideFirewall(facts, { ...request, persist: false }, new Map());
    if (again.commands.length === 0) return undefined;
    return `the firewall still needs: ${again.commands.map((c) => shellCommand(c.words).description).join('; ')}`;
  };
  return [{ script: firewallProbeScript({ ufwRules: true }), failure }];
}

function checkArgs(args: FirewallArgs): ArgumentProblem[] {
  const problems: ArgumentProblem[] = [];
  args.allow_ssh_from.forEach((text, i) => {
    const { error } = parseCidr(text);
    if (error) problems.push({ pointer: `/allow_ssh_from/${i}`, message: error });
  });
  return problems;
}

export const firewallResource: ResourceKind<FirewallArgs, FirewallPlanData> = {
  name: 'firewall',
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['allow_ssh_from'],
    properties: {
      allow_ssh_from: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
      port: { type: 'integer', minimum: 1, maximum: 65535 },
      backend: { enum: ['auto', 'iptables', 'nftables', 'ufw', 'firewalld'], default: 'auto' },
      persist: { type: 'boolean', default: true },
      remove_blocking: { type: 'boolean', default: true },
    },
  },
  checkArgs,
  plan: planFirewall,
  validate: validateFiles,
  verify: verifyRuntime,
};
