/**
 * What `file` and `template` share: the arguments that place a file on a host
 * (dest, mode, owner, group, validate), their checks, the plan that brings a
 * file to a wanted content and attributes (or removes it), and the validate
 * hook that runs the user's command on a staged copy before the target is
 * replaced.
 *
 * Content is written by the executor's atomic writer (temp file, fsync,
 * rename; an existing file keeps its owner and mode). Wanted attributes that
 * differ are set by `chown`/`chmod` steps after the write, so a task that only
 * fixes a mode shows a command and no diff.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileContent, shellCommand, shellQuote } from '../transport/shell.js';
import { assertNoControlChars } from '../formats/control_chars.js';
import type { CommandStep, FileChange, FileState, PlanEffects, ResourcePlan } from '../plan/types.js';
import type { ArgumentProblem, HostCheck, HostView } from './types.js';
import type { ExecResult } from '../transport/types.js';

/** The arguments that say where a file goes and how it must look on disk. */
export interface FileTargetArgs {
  dest: string;
  /** "0644"; a YAML number is accepted when its digits read as an octal mode (see parseMode). */
  mode?: string | number;
  owner?: string;
  group?: string;
  /** A shell command containing `%s`, run on a staged copy of the new content. */
  validate?: string;
}

/** JSON Schema properties of FileTargetArgs, for the resources' own schemas. */
export const FILE_TARGET_SCHEMA_PROPERTIES: Record<string, unknown> = {
  dest: { type: 'string', minLength: 1 },
  mode: { type: ['string', 'number'] },
  owner: { type: 'string', minLength: 1 },
  group: { type: 'string', minLength: 1 },
  validate: { type: 'string', minLength: 1 },
};

/** Mode, owner and group a file should end with; undefined means "whatever it has". */
export interface WantedAttributes {
  mode?: string;
  owner?: string;
  group?: string;
}

/** Attributes of a file the plan creates, where the task does not give them (as the executor's writer does). */
const NEW_FILE_DEFAULTS = { mode: '0644', owner: 'root', group: 'root' } as const;

// ---------------------------------------------------------------------------
// Pure argument handling

export type ParsedMode = { ok: true; mode: string; warning?: string } | { ok: false; message: string };

const OCTAL_MODE = /^[0-7]{3,4}$/;

/**
 * Normalises a mode to four octal digits ("644" → "0644"). YAML 1.2 reads an
 * unquoted `0644` as the decimal number 644: a number whose digits read as an
 * octal mode is taken as written (with a warning to quote it); any other
 * number (e.g. 420, which is what `0o644` becomes) is refused, since guessing
 * would set the wrong permissions.
 */
export function parseMode(value: string | number): ParsedMode {
  if (typeof value === 'number') {
    const digits = Number.isInteger(value) && value >= 0 ? String(value) : '';
    if (OCTAL_MODE.test(digits)) {
      const mode = digits.padStart(4, '0');
      return {
        ok: true,
        mode,
        warning: `mode ${digits} is a YAML number; it was read as "${mode}" — quote it (mode: "${mode}") to say so`,
      };
    }
    return {
      ok: false,
      message: `mode ${value} is a number, not an octal mode: YAML reads 0644 unquoted as the decimal 644 and 0o644 as 420; write the mode quoted, e.g. mode: "0644"`,
    };
  }
  if (OCTAL_MODE.test(value)) return { ok: true, mode: value.padStart(4, '0') };
  return {
    ok: false,
    message: `mode ${JSON.stringify(value)} is not an octal mode: write three or four octal digits, e.g. "0644" (symbolic modes are not supported)`,
  };
}

/** POSIX portable user/group names (plus the `$` Samba machine accounts end with). */
const ACCOUNT_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?$/;

function checkAccountName(value: string, what: 'owner' | 'group'): string | undefined {
  if (/^\d+$/.test(value))
    return `${what} ${value} is a numeric id: give the ${what === 'owner' ? 'user' : 'group'} name (the host reports names, so an id would never compare equal)`;
  if (!ACCOUNT_NAME.test(value)) return `${what} ${JSON.stringify(value)} is not a valid ${what} name`;
  return undefined;
}

/** Problems with a path argument: absolute, one line, not a directory. */
export function checkPath(value: string, what: string, mustBeAbsolute: boolean): string | undefined {
  try {
    assertNoControlChars(value, what);
  } catch (error) {
    return (error as Error).message;
  }
  if (mustBeAbsolute && !value.startsWith('/'))
    return `${what} must be an absolute path, got ${JSON.stringify(value)}`;
  if (value.endsWith('/'))
    return `${what} names a directory (${JSON.stringify(value)}): give the file's path`;
  return undefined;
}

/** Problems with a validate command: it must contain %s, written bare (sshfix quotes the path). */
export function checkValidateCommand(command: string): string | undefined {
  if (!command.replaceAll('%%', '').includes('%s'))
    return `validate must contain %s, which stands for the staged copy of the new content (e.g. "/usr/sbin/sshd -t -f %s")`;
  if (command.includes('"%s"'))
    return `write %s without double quotes in validate: sshfix quotes the staged path itself, and "'…'" would put the quotes into the path`;
  return undefined;
}

/** Checks shared by `file` and `template`; pointers are JSON pointers of the task's arguments. */
export function checkFileTargetArgs(args: FileTargetArgs): ArgumentProblem[] {
  const problems: ArgumentProblem[] = [];
  const add = (pointer: string, message: string | undefined) => {
    if (message !== undefined) problems.push({ pointer, message });
  };
  add('/dest', checkPath(args.dest, 'dest', true));
  if (args.mode !== undefined) {
    const mode = parseMode(args.mode);
    if (!mode.ok) add('/mode', mode.message);
  }
  if (args.owner !== undefined) add('/owner', checkAccountName(args.owner, 'owner'));
  if (args.group !== undefined) add('/group', checkAccountName(args.group, 'group'));
  if (args.validate !== undefined) add('/validate', checkValidateCommand(args.validate));
  return problems;
}

/** The wanted attributes, and a warning for a mode given as a YAML number. Call after checkFileTargetArgs. */
export function wantedAttributes(args: FileTargetArgs): { wanted: WantedAttributes; warnings: string[] } {
  const wanted: WantedAttributes = {};
  const warnings: string[] = [];
  if (args.mode !== undefined) {
    const mode = parseMode(args.mode);
    if (!mode.ok) throw new TypeError(mode.message);
    wanted.mode = mode.mode;
    if (mode.warning) warnings.push(mode.warning);
  }
  if (args.owner !== undefined) wanted.owner = args.owner;
  if (args.group !== undefined) wanted.group = args.group;
  return { wanted, warnings };
}

/**
 * The validate command with every `%s` replaced by the quoted staged path and
 * `%%` by `%` (as Python's `%` formatting does in Ansible). The rest of the
 * command is the user's shell text, run as written.
 */
export function substituteValidate(command: string, stagedPath: string): string {
  const quoted = shellQuote(stagedPath);
  return command.replace(/%%|%s/g, (token) => (token === '%s' ? quoted : '%'));
}

/** Where the validate hook stages the new content: beside dest, hidden, never matching `*.conf`-style globs. */
export function stagedPathFor(dest: string, suffix: string): string {
  return path.posix.join(path.posix.dirname(dest), `.${path.posix.basename(dest)}.sshfix-validate-${suffix}`);
}

// ---------------------------------------------------------------------------
// Attribute comparison (pure)

/**
 * What changing `dest` does beyond the file: sshd reads /etc/ssh (also host
 * keys and moduli, which it loads on reload), fail2ban /etc/fail2ban; a
 * rollback must make each re-read what it restored.
 */
export function fileEffects(dest: string): { effects?: PlanEffects } {
  const effects: PlanEffects = {
    ...(dest.startsWith('/etc/ssh/') ? { sshd: true } : {}),
    ...(dest.startsWith('/etc/fail2ban/') ? { fail2ban: true } : {}),
  };
  return Object.keys(effects).length > 0 ? { effects } : {};
}

/** Mode as stat's `%a` prints it, normalised like parseMode ("644" → "0644"). */
function normaliseMode(mode: string | undefined): string | undefined {
  return mode === undefined ? undefined : mode.padStart(4, '0');
}

/** chown/chgrp/chmod steps that bring `current` to `wanted`, with one message each. */
export function attributeSteps(
  dest: string,
  current: WantedAttributes,
  wanted: WantedAttributes,
): { commands: CommandStep[]; messages: string[] } {
  const commands: CommandStep[] = [];
  const messages: string[] = [];
  const ownerDiffers = wanted.owner !== undefined && wanted.owner !== current.owner;
  const groupDiffers = wanted.group !== undefined && wanted.group !== current.group;
  // chown before chmod: changing the owner clears setuid/setgid bits the mode may ask for.
  if (ownerDiffers || groupDiffers) {
    const from = `${current.owner ?? '?'}:${current.group ?? '?'}`;
    const to = `${ownerDiffers ? wanted.owner : current.owner}:${groupDiffers ? wanted.group : current.group}`;
    messages.push(`${dest} owner ${from} → ${to}`);
    if (ownerDiffers) {
      const spec = groupDiffers ? `${wanted.owner}:${wanted.group}` : wanted.owner!;
      commands.push(shellCommand(['chown', '--', spec, dest]));
    } else {
      commands.push(shellCommand(['chgrp', '--', wanted.group!, dest]));
    }
  }
  const currentMode = normaliseMode(current.mode);
  if (wanted.mode !== undefined && wanted.mode !== currentMode) {
    messages.push(`${dest} mode ${currentMode ?? '?'} → ${wanted.mode}`);
    commands.push(shellCommand(['chmod', '--', wanted.mode, dest]));
  }
  return { commands, messages };
}

/** "1 line", "12 lines": how many lines a text has (a last line without a newline counts). */
function lineCount(text: string): string {
  const n = text === '' ? 0 : text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
  return `${n} line${n === 1 ? '' : 's'}`;
}

// ---------------------------------------------------------------------------
// Planning (reads through HostView only)

/** What validate() needs, carried in the plan. */
export interface StagedValidation {
  dest: string;
  command: string;
  content: string;
  mode: string;
  owner: string;
  group: string;
}

export interface WantedFile {
  dest: string;
  /** The whole new content; null keeps whatever the file holds (attributes only). */
  content: string | null;
  wanted: WantedAttributes;
  validate?: string;
  /** Where the content comes from, for messages ("rendered from /srv/pb/templates/x.hbs"). */
  source?: string;
  warnings?: string[];
}

async function readOne(dest: string, host: HostView): Promise<FileState> {
  const files = await host.readFiles([dest]);
  return files.get(dest) ?? { path: dest, exists: false, content: '' };
}

/** Plans `dest` to hold `content` with the wanted attributes; `none` when it already does. */
export async function planFilePresent(
  file: WantedFile,
  host: HostView,
): Promise<ResourcePlan<StagedValidation>> {
  const current = await readOne(file.dest, host);
  const warnings = [...(file.warnings ?? [])];
  const from = file.source ? ` (${file.source})` : '';

  if (!current.exists) {
    if (file.content === null)
      throw new Error(`${file.dest} does not exist, and the task gives no content to create it with`);
    const attributes = {
      mode: file.wanted.mode ?? NEW_FILE_DEFAULTS.mode,
      owner: file.wanted.owner ?? NEW_FILE_DEFAULTS.owner,
      group: file.wanted.group ?? NEW_FILE_DEFAULTS.group,
    };
    const change: FileChange = {
      path: file.dest,
      before: null,
      beforeSha256: null,
      after: file.content,
      ...attributes,
    };
    return {
      action: 'change',
      messages: [
        `${file.dest} does not exist → created${from}: ${lineCount(file.content)}, mode ${attributes.mode}, owner ${attributes.owner}:${attributes.group}`,
      ],
      warnings,
      fileChanges: [change],
      commands: [],
      ...fileEffects(file.dest),
      ...validationData(file, change),
    };
  }

  const currentAttributes = { mode: normaliseMode(current.mode), owner: current.owner, group: current.group };
  const contentChanges = file.content !== null && file.content !== current.content;
  if (contentChanges && current.symlinkTarget !== undefined) {
    // An atomic rename onto dest would replace the link, and its target would keep the old content.
    throw new Error(
      `${file.dest} is a symbolic link to ${current.symlinkTarget}: set dest to ${current.symlinkTarget} to change that file`,
    );
  }
  const steps = attributeSteps(file.dest, currentAttributes, file.wanted);
  const messages: string[] = [];
  const fileChanges: FileChange[] = [];
  let data: { data?: StagedValidation } = {};
  if (contentChanges) {
    // The writer keeps the old owner and mode; recording the final ones lets later tasks plan on them.
    const change: FileChange = {
      path: file.dest,
      before: current.content,
      beforeSha256: current.sha256 ?? null,
      after: file.content!,
      mode: file.wanted.mode ?? currentAttributes.mode,
      owner: file.wanted.owner ?? current.owner,
      group: file.wanted.group ?? current.group,
    };
    fileChanges.push(change);
    messages.push(`${file.dest} content differs → replaced${from}`);
    data = validationData(file, change);
  }
  messages.push(...steps.messages);
  if (fileChanges.length === 0 && steps.commands.length === 0) {
    return {
      action: 'none',
      messages: [
        `${file.dest} is up to date${from}: mode ${currentAttributes.mode ?? '?'}, owner ${current.owner ?? '?'}:${current.group ?? '?'}`,
      ],
      warnings,
      fileChanges: [],
      commands: [],
    };
  }
  return {
    action: 'change',
    messages,
    warnings,
    fileChanges,
    commands: steps.commands,
    ...fileEffects(file.dest),
    ...data,
  };
}

function validationData(file: WantedFile, change: FileChange): { data?: StagedValidation } {
  if (file.validate === undefined) return {};
  return {
    data: {
      dest: file.dest,
      command: file.validate,
      content: change.after,
      mode: change.mode ?? NEW_FILE_DEFAULTS.mode,
      owner: change.owner ?? NEW_FILE_DEFAULTS.owner,
      group: change.group ?? NEW_FILE_DEFAULTS.group,
    },
  };
}

/** Plans the removal of `dest`: `rm -f`, with the old content shown as a diff to nothing. */
export async function planFileAbsent(dest: string, host: HostView): Promise<ResourcePlan<StagedValidation>> {
  const current = await readOne(dest, host);
  if (!current.exists) {
    return { action: 'none', messages: [`${dest} is absent`], warnings: [], fileChanges: [], commands: [] };
  }
  return {
    action: 'change',
    messages: [`${dest} exists (${lineCount(current.content)}) → removed`],
    warnings: [],
    fileChanges: [],
    commands: [shellCommand(['rm', '-f', '--', dest])],
    stateDiffs: [{ label: dest, before: current.content, after: '' }],
    ...fileEffects(dest),
  };
}

// ---------------------------------------------------------------------------
// The validate hook

/** First words of the line the staging script prints when the staged copy cannot be made. */
const CANNOT_STAGE = 'sshfix: cannot stage';

/**
 * The script that stages `content` beside dest (created exclusively, with
 * the file's final mode and owner), runs the user's command on it with stdin
 * closed, and removes the copy whatever happens.
 */
export function buildValidateScript(validation: StagedValidation, stagedPath: string): string {
  const staged = shellQuote(stagedPath);
  const cannotStage = `{ echo ${shellQuote(`${CANNOT_STAGE} the new content beside ${validation.dest}`)} >&2; exit 70; }`;
  return [
    'umask 077',
    `trap ${shellQuote(`rm -f -- ${staged}`)} EXIT`,
    `trap 'exit 129' HUP INT TERM`,
    // noclobber: never write through a file or link someone else put at the staged name.
    'set -C',
    `{ ${fileContent(validation.content, 'SSHFIX_VALIDATE_EOF')}} > ${staged} || ${cannotStage}`,
    'set +C',
    `chown -- ${shellQuote(`${validation.owner}:${validation.group}`)} ${staged} && chmod -- ${shellQuote(validation.mode)} ${staged} || ${cannotStage}`,
    // The user's command reads nothing of this script: its stdin is /dev/null.
    `( ${substituteValidate(validation.command, stagedPath)}\n) </dev/null`,
    '',
  ].join('\n');
}

/**
 * The `validate` hook of `file` and `template`: runs the user's command on a
 * staged copy in dest's directory (so relative paths in it resolve as they
 * will); a non-zero exit fails the task before the target is touched.
 */
export function validateStagedFile(plan: ResourcePlan<StagedValidation>): HostCheck[] {
  const validation = plan.data;
  if (validation === undefined) return [];
  const stagedPath = stagedPathFor(validation.dest, randomBytes(6).toString('hex'));
  const failure = (result: ExecResult): string | undefined => {
    if (result.exitCode === 0) return undefined;
    // The tool names the staged file; the operator knows it as dest's new content.
    const output = (result.stderr.trim() || result.stdout.trim()).split(stagedPath).join(validation.dest);
    const tail = output.split('\n').slice(-10).join('\n');
    if (output.includes(CANNOT_STAGE)) return output.replace(/^sshfix: /m, '');
    return `validate rejected the new content of ${validation.dest} (exit ${result.exitCode ?? 'signal'}): ${tail || 'no output'}`;
  };
  return [{ script: buildValidateScript(validation, stagedPath), failure }];
}
