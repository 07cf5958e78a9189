/**
 * `sshd_config: {settings: {...}, path?}` — converge global sshd directives
 * across the whole configuration tree (main file, Include drop-ins), editing
 * the occurrence that actually wins. Before anything goes live the complete
 * staged tree is checked with `sshd -t`; after handlers ran, `sshd -T` must
 * show every desired value.
 */
import { createHash } from 'node:crypto';
import { shellQuote, stagedFileWrite } from '../transport/shell.js';
import type { FileChange, ResourcePlan } from '../plan/types.js';
import {
  duplicateSetting,
  planSshdSettings,
  settingLines,
  settingNeeds,
  stageTreeForValidation,
  parseSshdT,
  unmatchedConnectionSpec,
  effectiveMatches,
  type SettingValue,
} from '../formats/sshd_effective.js';
import {
  canonicalKeyword,
  describeNeed,
  keywordInfo,
  suggestKeyword,
  withIpv4MappedEntries,
  type ReleaseNeed,
} from '../formats/sshd_keywords.js';
import { formatVersion, parseOpenSshVersion, versionAtLeast } from '../formats/openssh_version.js';
import { assertNoControlChars } from '../formats/control_chars.js';
import { errorMessage } from '../errors.js';
import type { ArgumentProblem, HostCheck, HostView, ResourceKind } from './types.js';
import type { ExecResult } from '../transport/types.js';
import { DEFAULT_SSHD_CONFIG, readSshdTree } from './sshd_tree.js';
import { probeSshdLoad, sshdReloadPending } from './sshd_loaded.js';
import { sshdLockoutGuard, type StagedSshdTree } from './sshd_guard.js';

export interface SshdConfigArgs {
  settings?: Record<string, SettingValue>;
  /** Keywords whose every occurrence is commented out (also unknown ones that keep sshd from starting). */
  remove?: string[];
  /** Main configuration file; /etc/ssh/sshd_config unless given. */
  path?: string;
}

/** What validate(), verify() and the lockout guard need, carried inside the plan. */
export interface SshdPlanData extends StagedSshdTree {
  /** The settings as the playbook gave them (effectiveMatches knows their sshd -T forms). */
  desired: Record<string, SettingValue>;
}

/**
 * Why this host's sshd must not get the settings: each one its release does
 * not know ("sshd 9.2 does not know PerSourcePenaltyExemptList (OpenSSH ≥
 * 9.8)"), or, when the release cannot be told (not OpenSSH, sshd -V
 * failed), every one that needs some release. Empty when all may be written.
 */
function settingsUnknownToSshd(needs: readonly ReleaseNeed[], sshd: string, versionOutput: string): string[] {
  if (needs.length === 0) return [];
  const version = parseOpenSshVersion(versionOutput);
  if (version === undefined) {
    const printed = versionOutput.trim().split('\n')[0] ?? '';
    return [
      `cannot tell which OpenSSH release ${sshd} is (sshd -V printed ${printed === '' ? 'nothing' : JSON.stringify(printed)}): ` +
        `not writing ${needs.map(describeNeed).join(', ')}`,
    ];
  }
  return needs
    .filter((need) => !versionAtLeast(version, need.since))
    .map((need) => `sshd ${formatVersion(version)} does not know ${describeNeed(need)}`);
}

export function renderSettingValue(value: SettingValue): string[] {
  const one = (v: string | number | boolean): string =>
    typeof v === 'boolean' ? (v ? 'yes' : 'no') : String(v);
  return Array.isArray(value) ? value.map(one) : [one(value)];
}

/**
 * The settings as they are written: a PerSourcePenaltyExemptList also names
 * its IPv4 networks in IPv4-mapped form, which sshd needs to exempt IPv4
 * clients on a listener bound to [::] (ssh.socket); see withIpv4MappedEntries.
 */
export function settingsAsWritten(settings: Record<string, SettingValue>): Record<string, SettingValue> {
  return Object.fromEntries(
    Object.entries(settings).map(([keyword, value]) =>
      canonicalKeyword(keyword) === 'PerSourcePenaltyExemptList' && typeof value === 'string'
        ? [keyword, withIpv4MappedEntries(value)]
        : [keyword, value],
    ),
  );
}

async function planSshdConfig(args: SshdConfigArgs, host: HostView): Promise<ResourcePlan<SshdPlanData>> {
  const mainPath = args.path ?? DEFAULT_SSHD_CONFIG;
  const settings = settingsAsWritten(args.settings ?? {});
  const needs = Object.entries(settings).flatMap(([keyword, value]) => settingNeeds(keyword, value) ?? []);
  const loaded = probeSshdLoad(host, mainPath);
  // The host facts' own sshd -V answers: no sshd starts again for this task.
  const [release, tree] = await Promise.all([host.sshdRelease(), readSshdTree(host, mainPath)]);
  const sshdPath = release?.sshd ?? '';
  // A keyword the release does not know would fail sshd -t: the whole task is skipped, and says why.
  const unknown = release ? settingsUnknownToSshd(needs, release.sshd, release.versionOutput) : [];
  if (unknown.length > 0)
    return { action: 'skip', messages: unknown, warnings: [], fileChanges: [], commands: [] };
  const { files, decisions } = planSshdSettings(tree, settings, args.remove ?? []);
  const fileChanges: FileChange[] = [];
  const throughLinks: string[] = [];
  for (const [path, after] of files) {
    const before = tree.files.get(path)?.state;
    // A symlinked sshd_config (dotfiles, configuration management) is written through the link.
    const target = before?.symlinkTarget;
    if (target !== undefined) throughLinks.push(`${path} is a symbolic link: writing its target ${target}`);
    fileChanges.push({
      path: target ?? path,
      before: before?.exists ? before.content : null,
      beforeSha256: before?.exists ? (before.sha256 ?? null) : null,
      after,
      mode: '0644',
      owner: 'root',
      group: 'root',
    });
  }
  const changed = decisions.filter((d) => d.action !== 'keep');
  const warnings = decisions.flatMap((d) => d.warnings);
  if (release === undefined) {
    return {
      action: 'skip',
      messages: ['sshd is not installed on this host'],
      warnings,
      fileChanges: [],
      commands: [],
    };
  }
  // The stage directory name depends only on the staged contents, so a plan is reproducible.
  const digest = createHash('sha256')
    .update(JSON.stringify([...files]))
    .digest('hex')
    .slice(0, 12);
  const stageRoot = `/run/sshfix/stage-${digest}`;
  const staged = stageTreeForValidation(tree, files, stageRoot);
  const data: SshdPlanData = {
    sshd: sshdPath,
    mainPath,
    stageRoot,
    stagedMain: staged.mainPath,
    staged: Object.fromEntries(staged.files),
    unmatchedSpec: unmatchedConnectionSpec(tree),
    desired: settings,
  };
  // Files that already say it are not enough: sshd must also run them (an earlier run may have been cut off).
  const reload = fileChanges.length > 0 ? undefined : await sshdReloadPending(host, loaded, tree);
  return {
    action: fileChanges.length > 0 || reload !== undefined ? 'change' : 'none',
    messages: [...changed.map((d) => d.message), ...throughLinks, ...(reload !== undefined ? [reload] : [])],
    warnings,
    fileChanges,
    commands: [],
    effects: { sshd: true },
    data,
  };
}

/** `sshd -t` on the complete staged tree: catches an error in any file, not just the edited one. */
function validateStagedTree(plan: ResourcePlan<SshdPlanData>): HostCheck[] {
  const data = plan.data;
  if (data === undefined) return [];
  const root = shellQuote(data.stageRoot);
  const script = [
    'umask 077',
    // sshd -t refuses to run without its privilege separation directory.
    '[ -d /run/sshd ] || mkdir -p /run/sshd',
    `rm -rf ${root} && mkdir -p ${root} || exit 1`,
    ...Object.entries(data.staged).map(([path, content], i) =>
      stagedFileWrite(path, content, `SSHFIX_STAGE_${i}`),
    ),
    `${shellQuote(data.sshd)} -t -f ${shellQuote(data.stagedMain)}; rc=$?`,
    `rm -rf ${root}`,
    'exit $rc',
  ].join('\n');
  const failure = (result: ExecResult): string | undefined => {
    if (result.exitCode === 0) return undefined;
    const message = result.stderr.split(data.stageRoot).join('').trim() || `exit code ${result.exitCode}`;
    return `sshd -t rejected the new configuration: ${message}`;
  };
  return [{ script, failure }];
}

/**
 * After reload: the effective configuration must show every desired value,
 * for connections that match no Match block (`sshd -T -C`: plain `sshd -T`
 * refuses a tree with `Match LocalPort`).
 */
function verifyEffective(plan: ResourcePlan<SshdPlanData>): HostCheck[] {
  const data = plan.data;
  if (data === undefined) return [];
  const failure = (result: ExecResult): string | undefined => {
    if (result.exitCode !== 0) return `sshd -T failed: ${result.stderr.trim()}`;
    const effective = parseSshdT(result.stdout);
    const wrong = Object.entries(data.desired).filter(([k, v]) => !effectiveMatches(k, v, effective));
    if (wrong.length === 0) return undefined;
    const detail = wrong
      .map(
        ([k, v]) =>
          `${k}: wanted ${renderSettingValue(v).join(' ')}, sshd -T shows ${(effective.get(k.toLowerCase()) ?? ['(nothing)']).join(' ')}`,
      )
      .join('; ');
    return `effective configuration differs: ${detail}`;
  };
  return [
    {
      script: `[ -d /run/sshd ] || mkdir -p /run/sshd; ${shellQuote(data.sshd)} -T -f ${shellQuote(data.mainPath)} -C ${shellQuote(data.unmatchedSpec)}`,
      failure,
    },
  ];
}

/**
 * Everything about the settings that needs no host is an input error,
 * reported with its position before any host is touched: unknown keywords,
 * one keyword spelled twice (sshd reads keywords case-insensitively),
 * multi-line values, values sshd_config cannot quote, and values sshd would
 * reject for the keyword's type (`MaxAuthTries: ten`, `MaxStartups: 100:30:10`).
 */
function checkSettings(args: SshdConfigArgs): ArgumentProblem[] {
  const problems: ArgumentProblem[] = [];
  const seen = new Map<string, string>();
  for (const [keyword, value] of Object.entries(args.settings ?? {})) {
    const pointer = `/settings/${keyword.replace(/~/g, '~0').replace(/\//g, '~1')}`;
    const info = keywordInfo(keyword);
    if (info === undefined) {
      const suggestion = suggestKeyword(keyword);
      problems.push({
        pointer,
        message: `unknown sshd_config keyword '${keyword}'${suggestion ? ` (did you mean '${suggestion}'?)` : ''}`,
      });
      continue;
    }
    const earlier = seen.get(info.name);
    if (earlier !== undefined) problems.push({ pointer, message: duplicateSetting(keyword, earlier, info) });
    seen.set(info.name, keyword);
    try {
      for (const text of renderSettingValue(value)) assertNoControlChars(text, `value of ${keyword}`);
    } catch {
      problems.push({ pointer, message: `value of ${keyword} contains a newline or control character` });
      continue;
    }
    try {
      settingLines(keyword, value);
    } catch (error) {
      problems.push({ pointer, message: errorMessage(error) });
    }
  }
  return problems;
}

export const sshdConfigResource: ResourceKind<SshdConfigArgs, SshdPlanData> = {
  name: 'sshd_config',
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    anyOf: [{ required: ['settings'] }, { required: ['remove'] }],
    properties: {
      remove: {
        type: 'array',
        minItems: 1,
        items: { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9]*$' },
      },
      path: { type: 'string', pattern: '^/' },
      settings: {
        type: 'object',
        minProperties: 1,
        additionalProperties: {
          anyOf: [
            { type: 'string' },
            { type: 'number' },
            { type: 'boolean' },
            { type: 'array', minItems: 1, items: { type: ['string', 'number'] } },
          ],
        },
      },
    },
  },
  checkArgs: checkSettings,
  plan: planSshdConfig,
  validate: validateStagedTree,
  verify: verifyEffective,
  lockoutGuard: (plan, login) => (plan.data === undefined ? undefined : sshdLockoutGuard(plan.data, login)),
};
