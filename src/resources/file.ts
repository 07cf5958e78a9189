/**
 * `file: {dest, content?, state?, mode?, owner?, group?, validate?}` — a file
 * with exactly the given content (written atomically), mode and owner; or,
 * with `state: absent`, no file at all. Without `content`, an existing file
 * keeps its content and only its attributes are converged.
 */
import type { ResourcePlan } from '../plan/types.js';
import {
  FILE_TARGET_SCHEMA_PROPERTIES,
  checkFileTargetArgs,
  planFileAbsent,
  planFilePresent,
  validateStagedFile,
  wantedAttributes,
  type FileTargetArgs,
  type StagedValidation,
} from './file_common.js';
import type { ArgumentProblem, HostView, ResourceKind } from './types.js';

export interface FileArgs extends FileTargetArgs {
  content?: string;
  state?: 'present' | 'absent';
}

/** What `state: absent` cannot be combined with: it removes the file, so nothing else applies. */
const PRESENT_ONLY = ['content', 'mode', 'owner', 'group', 'validate'] as const;

function checkFileArgs(args: FileArgs): ArgumentProblem[] {
  const problems = checkFileTargetArgs(args);
  if (args.state === 'absent') {
    for (const key of PRESENT_ONLY) {
      if (args[key] !== undefined)
        problems.push({
          pointer: `/${key}`,
          message: `${key} has no meaning with state: absent, which removes the file`,
        });
    }
  }
  return problems;
}

async function planFile(args: FileArgs, host: HostView): Promise<ResourcePlan<StagedValidation>> {
  if (args.state === 'absent') return planFileAbsent(args.dest, host);
  const { wanted, warnings } = wantedAttributes(args);
  return planFilePresent(
    {
      dest: args.dest,
      content: args.content ?? null,
      wanted,
      warnings,
      ...(args.validate !== undefined ? { validate: args.validate } : {}),
    },
    host,
  );
}

export const fileResource: ResourceKind<FileArgs, StagedValidation> = {
  name: 'file',
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['dest'],
    properties: {
      ...FILE_TARGET_SCHEMA_PROPERTIES,
      content: { type: 'string' },
      state: { enum: ['present', 'absent'] },
    },
  },
  checkArgs: checkFileArgs,
  plan: planFile,
  validate: validateStagedFile,
};
