// Types of bounds.mjs for the TypeScript tests (test/unit/bench/bounds.test.ts).
export declare const READ_PATHS: readonly string[];
export declare const MANAGED_PATHS: readonly string[];
export declare const GUARD_DIR: string;
export declare const RULESET_COMMAND: string;
export declare function readCommand(options?: {
  readPaths?: readonly string[];
  rulesetCommand?: string;
}): string;
export declare function guardedChangeCommand(options: {
  reload: string;
  guardDir?: string;
  readPaths?: readonly string[];
  managedPaths?: readonly string[];
  rulesetCommand?: string;
  firewallRule?: string | null;
  timerSeconds?: number;
}): string;
export declare function disarmCommand(options?: { guardDir?: string }): string;
