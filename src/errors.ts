/**
 * The message of anything thrown. Duck-typed: errors from node: modules may
 * come from another realm (test runners with VM modules), where
 * `instanceof Error` fails.
 */
export function errorMessage(error: unknown): string {
  if (
    typeof error === 'object' &&
    error !== null &&
    'message' in error &&
    typeof error.message === 'string'
  ) {
    return error.message;
  }
  return String(error);
}
