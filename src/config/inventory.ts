/**
 * Ansible-compatible inventories: which hosts exist, which groups they belong
 * to, and which variables apply to each.
 *
 * Both formats (YAML here, INI in inventory_ini.ts) feed one InventoryBuilder,
 * so they share validation, host ranges, the implicit `all`/`ungrouped` groups
 * and variable precedence. Errors are collected per file and thrown together as
 * one ConfigError whose diagnostics name file:line:column.
 *
 * Variable precedence (Ansible's, simplified): a host's variables are its
 * groups' variables merged from the shallowest group to the deepest, then the
 * host's own variables on top. Depth is the longest path from `all` (depth 0;
 * top-level groups and `ungrouped` are 1, their children 2, ...). Groups at the
 * same depth are ordered by `ansible_group_priority` (default 1) and then by
 * name, the later one winning. Merging replaces whole values (Ansible's default
 * `hash_behaviour=replace`): a dict set in a child group replaces the parent's.
 *
 * YAML is read as YAML 1.2 (the `yaml` package's default), not Ansible's YAML
 * 1.1: `yes`/`no` stay strings and `0644` stays a decimal number. Settings that
 * are booleans (ansible_become) accept yes/no/true/false through
 * parseAnsibleBoolean, as Ansible does.
 */

import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Document, Node as YamlNode, Pair } from 'yaml';
import type { Diagnostic, SourcePosition } from './diagnostics.js';
import { ConfigError } from './diagnostics.js';
import { expandHostRange, HostRangeError, matchPattern, splitHostPort } from './host_pattern.js';
import { parseIniInventory } from './inventory_ini.js';
import { didYouMean } from './suggest.js';
import { decryptVaultValues, Vault, VAULT_YAML_TAGS } from './vault.js';

export interface InventoryHost {
  name: string;
  /** Effective variables: group variables by precedence, then the host's own (see the module comment). */
  vars: Record<string, unknown>;
  /** Every group the host belongs to, incl. ancestors and 'all', lowest precedence first ('all' first). */
  groups: string[];
  /** Where the host is first listed. */
  position?: SourcePosition;
}

export interface InventoryGroup {
  name: string;
  /** Hosts listed directly in this group, in inventory order; for 'all', every host. */
  hosts: string[];
  /** Direct child groups; for 'all', every group without another parent (incl. 'ungrouped'). */
  children: string[];
  /** The group's own variables (not inherited ones). */
  vars: Record<string, unknown>;
}

export interface Inventory {
  path: string;
  /** In file order. */
  hosts: Map<string, InventoryHost>;
  /** 'all' and 'ungrouped' first, then in order of first mention. */
  groups: Map<string, InventoryGroup>;
}

export type InventoryFormat = 'yaml' | 'ini';

export const ALL_GROUP = 'all';
export const UNGROUPED_GROUP = 'ungrouped';

/** Characters that would make a group name ambiguous in host patterns or INI section headers. */
const FORBIDDEN_GROUP_NAME_CHARS = /[\s:,!&~[\]*?=#;'"]/;
/** Host names may hold ':' (IPv6) but not pattern separators, quotes or whitespace. */
const FORBIDDEN_HOST_NAME_CHARS = /[\s,*?='"]/;

// ---------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------

/**
 * Reads an inventory file; the format comes from the extension, else from the
 * content. `vault` opens an inventory encrypted whole (then every variable's
 * value in it is a secret) and `!vault` values of a YAML inventory.
 */
export function loadInventory(path: string, vault: Vault = new Vault()): Inventory {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    // Not `instanceof Error`: errors from node:fs may come from another realm (jest's VM contexts).
    const reason =
      error !== null && typeof error === 'object' && 'message' in error
        ? String(error.message)
        : String(error);
    throw new ConfigError([{ severity: 'error', summary: `cannot read inventory ${path}: ${reason}` }]);
  }
  const opened = vault.openFile(text, path);
  const inventory = parseInventory(opened.text, path, undefined, vault);
  if (opened.encrypted) {
    for (const group of inventory.groups.values()) vault.rememberSecrets(group.vars);
    for (const host of inventory.hosts.values()) vault.rememberSecrets(host.vars);
  }
  return inventory;
}

/** Parses inventory text; `path` names the file in errors and picks the format unless `format` is given. */
export function parseInventory(
  text: string,
  path: string,
  format?: InventoryFormat,
  vault: Vault = new Vault(),
): Inventory {
  const builder = new InventoryBuilder(path);
  if ((format ?? detectInventoryFormat(text, path)) === 'yaml') parseYamlInventory(builder, text, vault);
  else parseIniInventory(builder, text);
  return builder.build();
}

/**
 * `.yml`/`.yaml`/`.json` are YAML, `.ini`/`.cfg` are INI. Without such an
 * extension: YAML when the first meaningful line is `---`, `{` or a bare key
 * (`all:`), INI otherwise (`[web]`, `web01 ansible_port=22`, `web01`).
 */
export function detectInventoryFormat(text: string, path: string): InventoryFormat {
  const extension = extname(path).toLowerCase();
  if (['.yml', '.yaml', '.json'].includes(extension)) return 'yaml';
  if (['.ini', '.cfg'].includes(extension)) return 'ini';
  const firstLine = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .find((line) => line !== '' && !line.startsWith('#') && !line.startsWith(';'));
  if (firstLine === undefined) return 'ini';
  return /^(---|\{)|^[^\s=[\]]+:(\s+(#.*)?)?$|^[^\s=[\]]+:\s+[{[]/.test(firstLine) ? 'yaml' : 'ini';
}

/** Hosts selected by an Ansible host pattern, in inventory order, without duplicates. */
export function selectHosts(inventory: Inventory, pattern: string): string[] {
  return matchPattern(inventory, pattern);
}

// ---------------------------------------------------------------------------
// The builder shared by both formats
// ---------------------------------------------------------------------------

interface GroupDraft {
  name: string;
  hosts: string[];
  children: string[];
  parents: string[];
  vars: Record<string, unknown>;
  position?: SourcePosition;
}

interface HostDraft {
  name: string;
  vars: Record<string, unknown>;
  directGroups: string[];
  position: SourcePosition;
}

/**
 * Accumulates groups, hosts and variables from a parser, then resolves the
 * implicit groups and variable precedence. Parsers report problems through
 * `error` and carry on, so one run shows every mistake in the file.
 */
export class InventoryBuilder {
  private readonly groups = new Map<string, GroupDraft>();
  private readonly hosts = new Map<string, HostDraft>();
  private readonly diagnostics: Diagnostic[] = [];

  constructor(readonly path: string) {
    this.groups.set(ALL_GROUP, emptyGroup(ALL_GROUP));
    this.groups.set(UNGROUPED_GROUP, { ...emptyGroup(UNGROUPED_GROUP), parents: [ALL_GROUP] });
    this.groupDraft(ALL_GROUP).children.push(UNGROUPED_GROUP);
  }

  at(line: number, column: number): SourcePosition {
    return { file: this.path, line, column };
  }

  error(summary: string, position: SourcePosition, detail?: string): void {
    this.diagnostics.push({ severity: 'error', summary, position, ...(detail ? { detail } : {}) });
  }

  groupNames(): string[] {
    return [...this.groups.keys()];
  }

  /** Creates the group unless it exists; returns false (after reporting) when the name is invalid. */
  declareGroup(name: string, position: SourcePosition): boolean {
    if (name === '' || FORBIDDEN_GROUP_NAME_CHARS.test(name)) {
      this.error(
        `invalid group name '${name}'`,
        position,
        `group names may not be empty or contain whitespace or any of : , ! & ~ [ ] * ? = # ; ' "`,
      );
      return false;
    }
    if (!this.groups.has(name)) this.groups.set(name, { ...emptyGroup(name), position });
    return true;
  }

  /** Adds every host a (possibly ranged) name stands for to `group`, merging `vars` into each. */
  addHosts(group: string, hostName: string, vars: Record<string, unknown>, position: SourcePosition): void {
    // Checked before expansion: a range only adds letters and digits, and one report per name is enough.
    if (FORBIDDEN_HOST_NAME_CHARS.test(hostName) || /^[!&~]/.test(hostName)) {
      this.error(
        `invalid host name '${hostName}'`,
        position,
        `host names may not contain whitespace or any of , * ? = ' ", or start with ! & ~`,
      );
      return;
    }
    let names: string[];
    try {
      names = expandHostRange(hostName);
    } catch (error) {
      if (!(error instanceof HostRangeError)) throw error;
      this.error(error.message, { ...position, column: position.column + error.offset });
      return;
    }
    for (const name of names) this.addHost(group, name, vars, position);
  }

  private addHost(
    group: string,
    name: string,
    vars: Record<string, unknown>,
    position: SourcePosition,
  ): void {
    let host = this.hosts.get(name);
    if (!host) {
      host = { name, vars: {}, directGroups: [], position };
      this.hosts.set(name, host);
    }
    Object.assign(host.vars, vars);
    if (!host.directGroups.includes(group)) host.directGroups.push(group);
    const draft = this.groupDraft(group);
    if (!draft.hosts.includes(name)) draft.hosts.push(name);
  }

  mergeGroupVars(group: string, vars: Record<string, unknown>): void {
    Object.assign(this.groupDraft(group).vars, vars);
  }

  /** Makes `child` a child of `parent` (both must be declared); reports loops at `position`. */
  addChild(parent: string, child: string, position: SourcePosition): void {
    if (child === ALL_GROUP) {
      this.error(
        `group 'all' cannot be a child of '${parent}'`,
        position,
        `every group is already under 'all'`,
      );
      return;
    }
    const loop = this.pathBetween(child, parent);
    if (loop) {
      this.error(
        `making '${child}' a child of '${parent}' creates a loop: ${[...loop, child].join(' -> ')}`,
        position,
      );
      return;
    }
    const parentDraft = this.groupDraft(parent);
    const childDraft = this.groupDraft(child);
    if (!parentDraft.children.includes(child)) parentDraft.children.push(child);
    if (!childDraft.parents.includes(parent)) childDraft.parents.push(parent);
  }

  /** Resolves implicit membership and precedence; throws every collected error at once. */
  build(): Inventory {
    this.attachOrphanGroupsToAll();
    this.reconcileUngrouped();
    this.checkGroupPriorities();
    if (this.diagnostics.length > 0) throw new ConfigError(this.sortedDiagnostics());

    const depths = new Map<string, number>();
    const depthOf = (name: string): number => {
      const known = depths.get(name);
      if (known !== undefined) return known;
      const parents = this.groupDraft(name).parents;
      const depth = parents.length === 0 ? 0 : 1 + Math.max(...parents.map(depthOf));
      depths.set(name, depth);
      return depth;
    };
    const precedence = (a: string, b: string): number =>
      depthOf(a) - depthOf(b) ||
      groupPriority(this.groupDraft(a).vars) - groupPriority(this.groupDraft(b).vars) ||
      (a < b ? -1 : a > b ? 1 : 0);

    const hosts = new Map<string, InventoryHost>();
    for (const draft of this.hosts.values()) {
      const groups = [...this.ancestorsOf(draft.directGroups)].sort(precedence);
      const vars: Record<string, unknown> = {};
      for (const group of groups) Object.assign(vars, this.groupDraft(group).vars);
      Object.assign(vars, draft.vars);
      hosts.set(draft.name, { name: draft.name, vars, groups, position: draft.position });
    }
    const inventoryOrder = [...hosts.keys()];
    const groups = new Map<string, InventoryGroup>();
    for (const draft of this.groups.values()) {
      groups.set(draft.name, {
        name: draft.name,
        hosts:
          draft.name === ALL_GROUP ? inventoryOrder : inventoryOrder.filter((h) => draft.hosts.includes(h)),
        children: [...draft.children],
        vars: { ...draft.vars },
      });
    }
    return { path: this.path, hosts, groups };
  }

  private groupDraft(name: string): GroupDraft {
    let draft = this.groups.get(name);
    if (!draft) {
      draft = emptyGroup(name);
      this.groups.set(name, draft);
    }
    return draft;
  }

  /** The chain from `from` down to `to` through children, or undefined when `to` is not below `from`. */
  private pathBetween(from: string, to: string, seen = new Set<string>()): string[] | undefined {
    if (from === to) return [from];
    if (seen.has(from)) return undefined;
    seen.add(from);
    for (const child of this.groups.get(from)?.children ?? []) {
      const rest = this.pathBetween(child, to, seen);
      if (rest) return [from, ...rest];
    }
    return undefined;
  }

  private ancestorsOf(groups: string[]): Set<string> {
    const found = new Set<string>();
    const visit = (name: string): void => {
      if (found.has(name)) return;
      found.add(name);
      for (const parent of this.groupDraft(name).parents) visit(parent);
    };
    groups.forEach(visit);
    return found.add(ALL_GROUP);
  }

  private attachOrphanGroupsToAll(): void {
    const all = this.groupDraft(ALL_GROUP);
    for (const draft of this.groups.values()) {
      if (draft.name === ALL_GROUP || draft.parents.length > 0) continue;
      draft.parents.push(ALL_GROUP);
      all.children.push(draft.name);
    }
  }

  /** Like Ansible: a host in no group but 'all' is in 'ungrouped'; a host in a real group is not. */
  private reconcileUngrouped(): void {
    const ungrouped = this.groupDraft(UNGROUPED_GROUP);
    for (const host of this.hosts.values()) {
      const realGroups = host.directGroups.filter((g) => g !== ALL_GROUP && g !== UNGROUPED_GROUP);
      if (realGroups.length > 0) {
        host.directGroups = host.directGroups.filter((g) => g !== UNGROUPED_GROUP);
        ungrouped.hosts = ungrouped.hosts.filter((name) => name !== host.name);
      } else if (!host.directGroups.includes(UNGROUPED_GROUP)) {
        host.directGroups.push(UNGROUPED_GROUP);
        ungrouped.hosts.push(host.name);
      }
    }
  }

  private checkGroupPriorities(): void {
    for (const draft of this.groups.values()) {
      const value = draft.vars.ansible_group_priority;
      if (value !== undefined && Number.isNaN(groupPriority(draft.vars))) {
        this.error(
          `group '${draft.name}': ansible_group_priority must be an integer, not ${JSON.stringify(value)}`,
          draft.position ?? this.at(1, 1),
        );
      }
    }
  }

  private sortedDiagnostics(): Diagnostic[] {
    return [...this.diagnostics].sort(
      (a, b) =>
        (a.position?.line ?? 0) - (b.position?.line ?? 0) ||
        (a.position?.column ?? 0) - (b.position?.column ?? 0),
    );
  }
}

function emptyGroup(name: string): GroupDraft {
  return { name, hosts: [], children: [], parents: [], vars: {} };
}

/** Ansible's ansible_group_priority: orders groups of equal depth; NaN when not an integer. */
function groupPriority(vars: Record<string, unknown>): number {
  const value = vars.ansible_group_priority;
  if (value === undefined) return 1;
  const number = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : NaN;
  return Number.isInteger(number) ? number : NaN;
}

// ---------------------------------------------------------------------------
// YAML
// ---------------------------------------------------------------------------

const GROUP_KEYS = ['hosts', 'vars', 'children'];

/**
 * Ansible's YAML inventory: top-level groups (usually just `all`), each with
 * hosts, vars and children. `!vault` values are decrypted with `vault` first.
 */
export function parseYamlInventory(
  builder: InventoryBuilder,
  text: string,
  vault: Vault = new Vault(),
): void {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter,
    prettyErrors: false,
    merge: true,
    customTags: VAULT_YAML_TAGS,
  });
  const reader = new YamlInventoryReader(builder, doc, lineCounter);
  if (doc.errors.length > 0) {
    for (const error of doc.errors) {
      builder.error(
        `YAML syntax error: ${error.message}`,
        reader.positionAt(skipLineEnd(text, error.pos[0])),
      );
    }
    return;
  }
  const vaultErrors = decryptVaultValues(doc, vault, (offset) => reader.positionAt(offset));
  for (const error of vaultErrors) builder.error(error.summary, error.position ?? builder.at(1, 1));
  if (vaultErrors.length > 0) return;
  reader.readRoot(doc.contents);
}

class YamlInventoryReader {
  constructor(
    private readonly builder: InventoryBuilder,
    private readonly doc: Document,
    private readonly lineCounter: LineCounter,
  ) {}

  positionAt(offset: number): SourcePosition {
    const { line, col } = this.lineCounter.linePos(offset);
    return this.builder.at(line, col);
  }

  readRoot(root: unknown): void {
    const node = this.resolve(root);
    if (node === null || (isScalar(node) && node.value === null)) {
      this.builder.error('the inventory is empty: expected a mapping such as "all:"', this.builder.at(1, 1));
      return;
    }
    if (!isMap(node)) {
      this.builder.error(
        `the top level of a YAML inventory must be a mapping of group names (such as "all:"), not ${describe(node)}`,
        this.nodePosition(node),
      );
      return;
    }
    for (const pair of node.items) {
      const name = this.keyName(pair, 'group');
      if (name !== undefined) this.readGroup(name, pair, undefined);
    }
  }

  private readGroup(name: string, pair: Pair, parent: string | undefined): void {
    const position = this.pairPosition(pair);
    if (!this.builder.declareGroup(name, position)) return;
    if (parent !== undefined) this.builder.addChild(parent, name, position);
    const body = this.resolve(pair.value);
    if (isEmpty(body)) return;
    if (!isMap(body)) {
      this.builder.error(
        `group '${name}' must be a mapping with hosts, vars or children, not ${describe(body)}`,
        this.nodePosition(body, position),
      );
      return;
    }
    for (const entry of body.items) {
      const key = this.keyName(entry, 'key');
      if (key === undefined) continue;
      if (key === 'hosts') this.readHosts(name, entry);
      else if (key === 'vars') this.readGroupVars(name, entry);
      else if (key === 'children') this.readChildren(name, entry);
      else {
        this.builder.error(
          `unknown key '${key}' in group '${name}'${didYouMean(key, GROUP_KEYS)}`,
          this.pairPosition(entry),
          `a group may only contain hosts, vars and children; list hosts under 'hosts:'`,
        );
      }
    }
  }

  private readHosts(group: string, pair: Pair): void {
    const hosts = this.resolve(pair.value);
    if (isEmpty(hosts)) return;
    if (!isMap(hosts)) {
      const hint = isSeq(hosts) ? ` (write 'web01:' on its own line, not '- web01')` : '';
      this.builder.error(
        `'hosts' of group '${group}' must be a mapping of host names, not ${describe(hosts)}${hint}`,
        this.nodePosition(hosts, this.pairPosition(pair)),
      );
      return;
    }
    for (const entry of hosts.items) {
      const hostName = this.keyName(entry, 'host');
      if (hostName === undefined) continue;
      const position = this.pairPosition(entry);
      const vars = this.readVariables(entry.value, `host '${hostName}'`, position);
      if (vars === undefined) continue;
      const { name, port } = splitHostPort(hostName);
      this.builder.addHosts(
        group,
        name,
        port === undefined ? vars : { ansible_port: port, ...vars },
        position,
      );
    }
  }

  private readGroupVars(group: string, pair: Pair): void {
    const vars = this.readVariables(pair.value, `'vars' of group '${group}'`, this.pairPosition(pair));
    if (vars) this.builder.mergeGroupVars(group, vars);
  }

  private readChildren(parent: string, pair: Pair): void {
    const children = this.resolve(pair.value);
    if (isEmpty(children)) return;
    if (!isMap(children)) {
      this.builder.error(
        `'children' of group '${parent}' must be a mapping of group names, not ${describe(children)}`,
        this.nodePosition(children, this.pairPosition(pair)),
      );
      return;
    }
    for (const entry of children.items) {
      const name = this.keyName(entry, 'group');
      if (name !== undefined) this.readGroup(name, entry, parent);
    }
  }

  /** A mapping of variables or nothing (`web01:`); undefined after reporting anything else. */
  private readVariables(
    value: unknown,
    owner: string,
    fallback: SourcePosition,
  ): Record<string, unknown> | undefined {
    const node = this.resolve(value);
    if (isEmpty(node)) return {};
    if (!isMap(node)) {
      this.builder.error(
        `${owner} must map to a mapping of variables or to nothing, not ${describe(node)}`,
        this.nodePosition(node, fallback),
      );
      return undefined;
    }
    const vars: unknown = node.toJS(this.doc);
    return vars !== null && typeof vars === 'object' ? (vars as Record<string, unknown>) : {};
  }

  /** The key of a pair as a name; undefined after reporting a missing or structured key. */
  private keyName(pair: Pair, what: string): string | undefined {
    const key = this.resolve(pair.key);
    if (isScalar(key) && key.value !== null && key.value !== '' && typeof key.value !== 'object') {
      return String(key.value);
    }
    this.builder.error(`expected a ${what} name here`, this.pairPosition(pair));
    return undefined;
  }

  private resolve(node: unknown): unknown {
    return isAlias(node) ? node.resolve(this.doc) : node;
  }

  private pairPosition(pair: Pair): SourcePosition {
    return this.nodePosition(pair.key, this.nodePosition(pair.value));
  }

  private nodePosition(node: unknown, fallback?: SourcePosition): SourcePosition {
    const range = (node as YamlNode | null)?.range;
    if (range) return this.positionAt(range[0]);
    return fallback ?? this.builder.at(1, 1);
  }
}

/**
 * The yaml package reports some errors (a duplicate or misindented key after a
 * key without value) at the end of the previous line; the mistake is at the
 * next non-blank character.
 */
function skipLineEnd(text: string, offset: number): number {
  const restOfLine = /^[ \t]*(\r?\n|$)/.exec(text.slice(offset));
  if (!restOfLine) return offset;
  const next = text.slice(offset).search(/\S/);
  return next === -1 ? offset : offset + next;
}

function isEmpty(node: unknown): boolean {
  return node === null || node === undefined || (isScalar(node) && node.value === null);
}

function describe(node: unknown): string {
  if (isSeq(node)) return 'a list';
  if (isMap(node)) return 'a mapping';
  if (isScalar(node)) return `a ${typeof node.value} (${JSON.stringify(node.value)})`;
  return 'something else';
}

// ---------------------------------------------------------------------------
// Connection variables
// ---------------------------------------------------------------------------

export interface ConnectionVars {
  connection: 'ssh' | 'local';
  address: string;
  port: number;
  user?: string;
  privateKeyFile?: string;
  password?: string;
  become: boolean;
  becomePassword?: string;
}

/**
 * The variable names read for each setting; the first one set wins, so the
 * `ansible_` names beat their short forms.
 */
export const CONNECTION_VARIABLE_NAMES = {
  connection: ['ansible_connection', 'connection'],
  address: ['ansible_host', 'ansible_ssh_host', 'host'],
  port: ['ansible_port', 'ansible_ssh_port', 'port'],
  user: ['ansible_user', 'ansible_ssh_user', 'user'],
  privateKeyFile: [
    'ansible_ssh_private_key_file',
    'ansible_private_key_file',
    'ssh_private_key_file',
    'private_key_file',
  ],
  password: ['ansible_password', 'ansible_ssh_pass', 'ansible_ssh_password', 'password', 'ssh_pass'],
  become: ['ansible_become', 'become'],
  becomePassword: ['ansible_become_password', 'ansible_become_pass', 'become_password', 'become_pass'],
} as const;

/** Ansible's connection plugins that sshfix runs over its SSH transport. */
const CONNECTION_PLUGINS: Record<string, ConnectionVars['connection']> = {
  ssh: 'ssh',
  smart: 'ssh',
  paramiko: 'ssh',
  paramiko_ssh: 'ssh',
  local: 'local',
};

/** How to reach a host, from its effective variables; throws ConfigError naming the host for bad values. */
export function connectionVars(host: InventoryHost): ConnectionVars {
  const lookup = (
    setting: keyof typeof CONNECTION_VARIABLE_NAMES,
  ): { name: string; value: unknown } | undefined => {
    for (const name of CONNECTION_VARIABLE_NAMES[setting]) {
      const value = host.vars[name];
      if (value !== undefined && value !== null) return { name, value };
    }
    return undefined;
  };
  const invalid = (name: string, value: unknown, expected: string): ConfigError =>
    new ConfigError([
      {
        severity: 'error',
        summary: `host '${host.name}': ${name} ${JSON.stringify(value)} is not ${expected}`,
        ...(host.position ? { position: host.position } : {}),
      },
    ]);
  const text = (setting: keyof typeof CONNECTION_VARIABLE_NAMES): string | undefined => {
    const found = lookup(setting);
    if (!found) return undefined;
    if (typeof found.value === 'number' && Number.isFinite(found.value)) return String(found.value);
    if (typeof found.value !== 'string' || found.value === '') {
      throw invalid(found.name, found.value, 'a non-empty string');
    }
    return found.value;
  };

  const connectionFound = lookup('connection');
  let connection: ConnectionVars['connection'] = 'ssh';
  if (connectionFound) {
    const plugin =
      typeof connectionFound.value === 'string' ? CONNECTION_PLUGINS[connectionFound.value] : undefined;
    if (!plugin) {
      throw invalid(
        connectionFound.name,
        connectionFound.value,
        `a supported connection (ssh, smart, paramiko, local)`,
      );
    }
    connection = plugin;
  }

  const portFound = lookup('port');
  let port = 22;
  if (portFound) {
    const number =
      typeof portFound.value === 'number'
        ? portFound.value
        : typeof portFound.value === 'string' && /^\d+$/.test(portFound.value.trim())
          ? Number(portFound.value)
          : NaN;
    if (!Number.isInteger(number) || number < 1 || number > 65535) {
      throw invalid(portFound.name, portFound.value, 'a port number (1-65535)');
    }
    port = number;
  }

  const becomeFound = lookup('become');
  let become = false;
  if (becomeFound) {
    const parsed = parseAnsibleBoolean(becomeFound.value);
    if (parsed === undefined)
      throw invalid(becomeFound.name, becomeFound.value, 'a boolean (yes/no/true/false)');
    become = parsed;
  }

  const result: ConnectionVars = { connection, address: text('address') ?? host.name, port, become };
  const user = text('user');
  const privateKeyFile = text('privateKeyFile');
  const password = text('password');
  const becomePassword = text('becomePassword');
  if (user !== undefined) result.user = user;
  if (privateKeyFile !== undefined) result.privateKeyFile = privateKeyFile;
  if (password !== undefined) result.password = password;
  if (becomePassword !== undefined) result.becomePassword = becomePassword;
  return result;
}

const TRUE_WORDS = new Set(['y', 'yes', 'on', '1', 'true', 't']);
const FALSE_WORDS = new Set(['n', 'no', 'off', '0', 'false', 'f']);

/** Ansible's boolean(): yes/no, on/off, true/false, y/n, t/f, 1/0 (any case); undefined for anything else. */
export function parseAnsibleBoolean(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (value === 1 || value === 0) return value === 1;
  if (typeof value !== 'string') return undefined;
  const word = value.trim().toLowerCase();
  if (TRUE_WORDS.has(word)) return true;
  if (FALSE_WORDS.has(word)) return false;
  return undefined;
}
