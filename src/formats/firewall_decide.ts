/**
 * From probed facts and the task's arguments to what the firewall resource
 * will do: which backend (auto picks the one actually in use), the commands,
 * the persistence files and the before/after views. Pure: the resource does
 * the reading and turns this into a ResourcePlan.
 */
import type { StateDiff } from '../plan/types.js';
import type { Cidr } from './firewall_cidr.js';
import { allowancesFor, type SshAllowance } from './firewall_rules.js';
import type { FirewallFacts, IptablesVariant } from './firewall_probe.js';
import {
  applyIptablesEdit,
  iptablesCommands,
  iptablesRuleCount,
  normalizeSaveText,
  parseIptablesSave,
  planIptablesEdit,
  tableText,
  withoutFail2ban,
} from './firewall_iptables.js';
import {
  applyNftEdit,
  nftCommands,
  normalizeNftListing,
  ownRuleTables,
  parseNftRuleset,
  planNftEdit,
  tableKey,
  tablesText,
} from './firewall_nft.js';
import { parseUfwRules, planUfw } from './firewall_ufw.js';
import {
  firewalldCommands,
  parseFirewalldZones,
  planFirewalld,
  richRuleListing,
  sshZones,
} from './firewall_firewalld.js';

export type Backend = 'iptables' | 'nftables' | 'ufw' | 'firewalld';

export interface FirewallRequest {
  sources: Cidr[];
  /** Given in the task, or null for "sshd's effective ports". */
  port: number | null;
  backend: Backend | 'auto';
  persist: boolean;
  removeBlocking: boolean;
}

export interface StoredFile {
  exists: boolean;
  content: string;
}

export interface PlannedCommand {
  words: string[];
  /** Exit codes that also mean success (firewalld's ALREADY_ENABLED/NOT_ENABLED). */
  alsoOk: number[];
}

export interface PlannedFile {
  path: string;
  before: string | null;
  after: string;
  /** Command that must accept the staged file (its path appended), e.g. `nft -c -f`. */
  check: string[];
}

export interface FirewallDecision {
  backend: Backend | null;
  /** Set when there is nothing this task can act on (no firewall tool at all). */
  skipReason?: string;
  messages: string[];
  warnings: string[];
  commands: PlannedCommand[];
  files: PlannedFile[];
  stateDiffs: StateDiff[];
}

export const RULES_V4 = '/etc/iptables/rules.v4';
export const RULES_V6 = '/etc/iptables/rules.v6';
export const NFTABLES_CONF = '/etc/nftables.conf';
/** firewalld's exit codes for "already there" and "not there": success for an idempotent add/remove. */
const ALREADY_ENABLED = 11;
const NOT_ENABLED = 12;

export class FirewallPlanError extends Error {}

function ufwActive(facts: FirewallFacts): boolean {
  // `ufw status` says "inactive" exactly when its ufw-user-input chain is not loaded.
  return Object.values(facts.iptables).some((d) => /^:ufw-user-input /m.test(d.v4));
}

/** Which iptables variant holds the rules; never both (a mixed host is reported, the default variant used). */
export function chooseIptablesVariant(facts: FirewallFacts): { variant: IptablesVariant; warning?: string } {
  if (facts.iptables.plain) return { variant: 'plain' };
  const count = (v: 'legacy' | 'nft'): number => {
    const d = facts.iptables[v];
    return d
      ? iptablesRuleCount(parseIptablesSave(d.v4, 4)) + iptablesRuleCount(parseIptablesSave(d.v6, 6))
      : 0;
  };
  const [legacy, nft] = [count('legacy'), count('nft')];
  const fallback = facts.iptablesDefault ?? 'nft';
  if (legacy > 0 && nft === 0) return { variant: 'legacy' };
  if (nft > 0 && legacy === 0) return { variant: 'nft' };
  if (legacy > 0 && nft > 0)
    return {
      variant: fallback,
      warning: `both iptables-legacy (${legacy} rules) and iptables-nft (${nft} rules) hold rules; using ${fallback}, the variant plain iptables runs — the other one's rules still apply`,
    };
  return { variant: fallback };
}

/** iptables-nft's tables as nft names them ("ip filter", "ip6 filter"): not nftables rules of their own. */
export function iptablesNftTables(facts: FirewallFacts): Set<string> {
  const keys = new Set<string>();
  const dumpOf = facts.iptables.nft ?? (facts.iptablesDefault === 'nft' ? facts.iptables.plain : undefined);
  if (!dumpOf) return keys;
  for (const m of dumpOf.v4.matchAll(/^\*(\S+)$/gm)) keys.add(`ip ${m[1]}`);
  for (const m of dumpOf.v6.matchAll(/^\*(\S+)$/gm)) keys.add(`ip6 ${m[1]}`);
  return keys;
}

/** Backend `auto`: active ufw, running firewalld, nftables rules of its own, else iptables. */
export function chooseBackend(
  facts: FirewallFacts,
  requested: Backend | 'auto',
): { backend: Backend | null; reason: string } {
  const hasIptables = facts.iptablesDefault !== null;
  if (requested !== 'auto') {
    const installed: Record<Backend, boolean> = {
      iptables: hasIptables,
      nftables: facts.nftListing !== null,
      ufw: facts.ufwInstalled,
      firewalld: facts.firewalldInstalled,
    };
    if (!installed[requested])
      throw new FirewallPlanError(`backend ${requested}: it is not installed on this host`);
    if (requested === 'firewalld' && !facts.firewalld)
      throw new FirewallPlanError(
        'backend firewalld: firewalld is not running (firewall-cmd cannot change it)',
      );
    return { backend: requested, reason: `backend ${requested} (as requested)` };
  }
  if (facts.ufwInstalled && ufwActive(facts))
    return { backend: 'ufw', reason: 'backend auto → ufw (ufw is active)' };
  if (facts.firewalld)
    return { backend: 'firewalld', reason: 'backend auto → firewalld (firewalld is running)' };
  if (facts.nftListing !== null) {
    const own = ownRuleTables(parseNftRuleset(facts.nftListing), iptablesNftTables(facts));
    if (own.length > 0)
      return {
        backend: 'nftables',
        reason: `backend auto → nftables (table ${own.map(tableKey).join(', ')} holds rules)`,
      };
  }
  if (hasIptables) {
    const inactiveUfw = facts.ufwInstalled ? '; ufw is installed but inactive' : '';
    return {
      backend: 'iptables',
      reason: `backend auto → iptables (no active ufw, firewalld or nftables ruleset${inactiveUfw})`,
    };
  }
  return { backend: null, reason: 'no firewall tool on this host (no iptables, nft, ufw or firewalld)' };
}

/** Which firewall holds a host's rules, as host facts report it; `none` when no firewall holds any. */
export type BackendInUse = Backend | 'none';

/**
 * The firewall a host uses: backend auto's choice (active ufw, running
 * firewalld, nftables tables of their own), except where auto would only
 * fall back to iptables for lack of anything else: iptables is in use when
 * it holds rules (fail2ban's chains count), nftables when a table of its own
 * kind holds them (fail2ban's f2b-table), and otherwise nothing is.
 */
export function backendInUse(facts: FirewallFacts): BackendInUse {
  const auto = chooseBackend(facts, 'auto').backend;
  if (auto !== 'iptables') return auto ?? 'none';
  const iptablesRules = Object.values(facts.iptables).some(
    (d) => iptablesRuleCount(parseIptablesSave(d.v4, 4)) + iptablesRuleCount(parseIptablesSave(d.v6, 6)) > 0,
  );
  if (iptablesRules) return 'iptables';
  const iptablesTables = iptablesNftTables(facts);
  const nftRules =
    facts.nftListing !== null &&
    parseNftRuleset(facts.nftListing).tables.some(
      (t) => !iptablesTables.has(tableKey(t)) && [...t.chains.values()].some((c) => c.rules.length > 0),
    );
  return nftRules ? 'nftables' : 'none';
}

/** The ports SSH is allowed to: the task's, else every port sshd listens on. */
export function sshPorts(facts: FirewallFacts, port: number | null): number[] {
  if (port !== null) return [port];
  if (facts.sshdPorts === null)
    throw new FirewallPlanError(`cannot tell sshd's port (${facts.sshdError ?? 'unknown'}); set port:`);
  return [...new Set(facts.sshdPorts)];
}

const plain = (words: string[]): PlannedCommand => ({ words, alsoOk: [] });

function binaries(variant: IptablesVariant): Record<4 | 6, string> {
  return variant === 'plain'
    ? { 4: 'iptables', 6: 'ip6tables' }
    : { 4: `iptables-${variant}`, 6: `ip6tables-${variant}` };
}

function decideIptables(
  facts: FirewallFacts,
  allowances: SshAllowance[],
  request: FirewallRequest,
  files: ReadonlyMap<string, StoredFile>,
  out: FirewallDecision,
): void {
  const { variant, warning } = chooseIptablesVariant(facts);
  if (warning) out.warnings.push(warning);
  const dump = facts.iptables[variant] ?? { v4: '', v6: '' };
  const bins = binaries(variant);
  for (const family of [4, 6] as const) {
    const mine = allowances.filter((a) => a.source.family === family);
    if (mine.length === 0) continue;
    const text = family === 4 ? dump.v4 : dump.v6;
    const ruleset = parseIptablesSave(text, family);
    const label = `${bins[family]}`;
    const edit = planIptablesEdit(ruleset, mine, request.removeBlocking, label);
    out.messages.push(...edit.messages);
    out.commands.push(...iptablesCommands(edit, bins[family]).map(plain));
    const runtimeAfter = applyIptablesEdit(ruleset, edit);
    if (edit.insertAtTop.length > 0 || edit.remove.length > 0) {
      const before = tableText(normalizeSaveText(text), 'filter');
      const after = tableText(normalizeSaveText(runtimeAfter), 'filter');
      out.stateDiffs.push({ label: `${bins[family]}-save filter table`, before, after });
    }
    if (!request.persist) continue;
    const path = family === 4 ? RULES_V4 : RULES_V6;
    const check = [`${bins[family]}-restore`, '--test'];
    if (!facts.iptablesDir) {
      if (edit.insertAtTop.length > 0 || edit.remove.length > 0)
        out.messages.push(
          `no /etc/iptables directory (iptables-persistent): the ${label} change is not persisted`,
        );
      continue;
    }
    const stored = files.get(path);
    if (stored?.exists) {
      const fileRuleset = parseIptablesSave(stored.content, family);
      const fileEdit = planIptablesEdit(fileRuleset, mine, request.removeBlocking, path);
      if (fileEdit.insertAtTop.length > 0 || fileEdit.remove.length > 0) {
        out.messages.push(...fileEdit.messages);
        out.files.push({
          path,
          before: stored.content,
          after: applyIptablesEdit(fileRuleset, fileEdit),
          check,
        });
      }
    } else if (edit.insertAtTop.length > 0 || edit.remove.length > 0) {
      // A new rules file holds the resulting ruleset, minus fail2ban's chains (fail2ban creates them at start).
      const after = withoutFail2ban(normalizeSaveText(runtimeAfter)).replace(/^\n+/, '');
      out.messages.push(
        `${path} does not exist → written with the resulting ruleset (without fail2ban's chains)`,
      );
      out.files.push({ path, before: null, after: after.endsWith('\n') ? after : `${after}\n`, check });
    }
  }
}

function decideNftables(
  facts: FirewallFacts,
  allowances: SshAllowance[],
  request: FirewallRequest,
  files: ReadonlyMap<string, StoredFile>,
  out: FirewallDecision,
): void {
  const listing = facts.nftListing ?? '';
  const ruleset = parseNftRuleset(listing);
  const foreign = iptablesNftTables(facts);
  const edit = planNftEdit(ruleset, allowances, request.removeBlocking, foreign);
  out.messages.push(...edit.messages.map((m) => `nft ${m}`));
  out.warnings.push(...edit.warnings);
  out.commands.push(...nftCommands(edit).map(plain));
  const touched = new Set(
    [...edit.inserts.map((i) => i.at), ...edit.removals.map((r) => r.at)].map(
      (at) => `${at.family} ${at.table}`,
    ),
  );
  if (touched.size > 0) {
    const before = normalizeNftListing(tablesText(listing, touched));
    const after = normalizeNftListing(tablesText(applyNftEdit(ruleset, edit), touched));
    out.stateDiffs.push({ label: 'nft list ruleset', before, after });
  }
  if (!request.persist) return;
  const stored = files.get(NFTABLES_CONF);
  if (!stored?.exists) {
    if (touched.size > 0) out.messages.push(`no ${NFTABLES_CONF}: the nftables change is not persisted`);
    return;
  }
  const fileRuleset = parseNftRuleset(stored.content);
  const fileEdit = planNftEdit(fileRuleset, allowances, request.removeBlocking, new Set());
  if (fileEdit.inserts.length > 0 || fileEdit.removals.length > 0) {
    out.messages.push(...fileEdit.messages.map((m) => `${NFTABLES_CONF}: ${m}`));
    out.files.push({
      path: NFTABLES_CONF,
      before: stored.content,
      after: applyNftEdit(fileRuleset, fileEdit),
      check: ['nft', '-c', '-f'],
    });
  }
  for (const key of touched) {
    if (!fileRuleset.tables.some((t) => tableKey(t) === key))
      out.messages.push(
        `table ${key} is not in ${NFTABLES_CONF} (it does not survive a reboot either): its change is runtime only`,
      );
  }
}

function decideUfw(
  facts: FirewallFacts,
  allowances: SshAllowance[],
  request: FirewallRequest,
  out: FirewallDecision,
): void {
  const plan = planUfw(
    parseUfwRules(facts.ufwV4 ?? '', 4),
    parseUfwRules(facts.ufwV6 ?? '', 6),
    allowances,
    request.removeBlocking,
  );
  out.messages.push(...plan.messages);
  out.commands.push(...plan.commands.map(plain));
  if (plan.commands.length > 0)
    out.stateDiffs.push({
      label: 'ufw rules (numbered as `ufw status numbered` numbers them)',
      before: plan.before,
      after: plan.after,
    });
  if (!ufwActive(facts) && plan.commands.length > 0)
    out.messages.push(
      'ufw is inactive: its rules are updated but ufw is not enabled (sshfix never enables ufw)',
    );
}

function decideFirewalld(
  facts: FirewallFacts,
  allowances: SshAllowance[],
  request: FirewallRequest,
  out: FirewallDecision,
): void {
  const runtime = parseFirewalldZones(facts.firewalld?.runtime ?? '');
  const permanent = parseFirewalldZones(facts.firewalld?.permanent ?? '');
  const zones = sshZones(runtime, facts.firewalld?.defaultZone ?? '');
  const layer = (rules: typeof runtime, kind: 'runtime' | 'permanent', label: string): void => {
    const edit = planFirewalld(rules, zones, allowances, request.removeBlocking, kind);
    out.messages.push(...edit.messages);
    out.commands.push(
      ...firewalldCommands(edit, kind === 'permanent').map((words) => ({
        words,
        alsoOk: [ALREADY_ENABLED, NOT_ENABLED],
      })),
    );
    if (edit.zones.length > 0)
      out.stateDiffs.push({
        label,
        before: richRuleListing(rules, zones),
        after: richRuleListing(rules, zones, edit),
      });
  };
  layer(runtime, 'runtime', 'firewall-cmd --list-rich-rules (runtime)');
  // --reload would drop runtime-only rules: the permanent configuration gets the same rules.
  if (request.persist) layer(permanent, 'permanent', 'firewall-cmd --permanent --list-rich-rules');
}

export function decideFirewall(
  facts: FirewallFacts,
  request: FirewallRequest,
  files: ReadonlyMap<string, StoredFile>,
): FirewallDecision {
  const out: FirewallDecision = {
    backend: null,
    messages: [],
    warnings: [],
    commands: [],
    files: [],
    stateDiffs: [],
  };
  const chosen = chooseBackend(facts, request.backend);
  if (chosen.backend === null) return { ...out, skipReason: chosen.reason };
  out.backend = chosen.backend;
  const allowances = allowancesFor(request.sources, sshPorts(facts, request.port));
  switch (chosen.backend) {
    case 'iptables':
      decideIptables(facts, allowances, request, files, out);
      break;
    case 'nftables':
      decideNftables(facts, allowances, request, files, out);
      break;
    case 'ufw':
      decideUfw(facts, allowances, request, out);
      break;
    case 'firewalld':
      decideFirewalld(facts, allowances, request, out);
      break;
  }
  if (out.commands.length > 0 || out.files.length > 0) out.messages.unshift(chosen.reason);
  return out;
}
