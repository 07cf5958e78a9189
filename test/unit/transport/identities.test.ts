/** OpenSSH's default identities, offered when nothing else is configured. */
import { defaultIdentityFiles } from '../../../src/transport/identities.js';

describe('default identities', () => {
  it('are the ones that exist of ~/.ssh/id_rsa, id_ecdsa, id_ed25519, in ssh_config(5)’s order', () => {
    const present = new Set(['/home/u/.ssh/id_ed25519', '/home/u/.ssh/id_rsa', '/home/u/.ssh/id_dsa']);
    expect(defaultIdentityFiles('/home/u', (f) => present.has(f))).toEqual([
      '/home/u/.ssh/id_rsa',
      '/home/u/.ssh/id_ed25519',
    ]);
    expect(defaultIdentityFiles('/home/u', () => false)).toEqual([]);
  });
});
