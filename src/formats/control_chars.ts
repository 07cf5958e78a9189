/**
 * Values written into line-oriented files (sshd_config, hosts.allow,
 * jail.local) must stay on one line: a newline in a directive value would
 * smuggle in a second directive. Throws when `value` contains a C0 control
 * character (TAB, CR and LF included) or DEL; `what` names the value.
 */
export function assertNoControlChars(value: string, what: string): void {
  for (let offset = 0; offset < value.length; offset++) {
    const code = value.charCodeAt(offset);
    if (code < 0x20 || code === 0x7f) {
      const codePoint = code.toString(16).toUpperCase().padStart(4, '0');
      throw new TypeError(
        `${what} contains a control character (U+${codePoint}) at offset ${offset}: ${JSON.stringify(value)}`,
      );
    }
  }
}
