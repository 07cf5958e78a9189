/** Picks the transport for a host: SSH, or the local machine for `connection: local`. */

import { openLocal } from './local.js';
import { connectThroughJumps } from './jump.js';
import { connectSsh } from './ssh.js';
import type { Connection, ConnectionSpec } from './types.js';

export async function openConnection(spec: ConnectionSpec): Promise<Connection> {
  switch (spec.connection) {
    case 'local':
      return openLocal(spec);
    case 'ssh':
      return spec.jump !== undefined && spec.jump.length > 0 ? connectThroughJumps(spec) : connectSsh(spec);
  }
}
