import fc from 'fast-check';
import { didYouMean, editDistance, suggest } from '../../../src/config/suggest.js';

describe('editDistance', () => {
  it('counts inserts, deletes, substitutions and adjacent swaps as one edit each', () => {
    expect(editDistance('tasks', 'tasks')).toBe(0);
    expect(editDistance('tsks', 'tasks')).toBe(1);
    expect(editDistance('taskss', 'tasks')).toBe(1);
    expect(editDistance('tasts', 'tasks')).toBe(1);
    expect(editDistance('tsaks', 'tasks')).toBe(1);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('kitten', 'sitting')).toBe(3);
  });

  it('is symmetric and zero only for equal strings', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 12 }), fc.string({ maxLength: 12 }), (a, b) => {
        const distance = editDistance(a, b);
        return distance === editDistance(b, a) && (distance === 0) === (a === b);
      }),
    );
  });
});

describe('suggest', () => {
  const playKeys = ['name', 'hosts', 'vars', 'become', 'tasks', 'handlers'];

  it('finds the nearest candidate, ignoring case', () => {
    expect(suggest('tsks', playKeys)).toBe('tasks');
    expect(suggest('Hosts', playKeys)).toBe('hosts');
    expect(suggest('handler', playKeys)).toBe('handlers');
    expect(suggest('admin_net', ['admin_network', 'ssh_port'])).toBe('admin_network');
  });

  it('suggests nothing when no candidate is close', () => {
    expect(suggest('become_user', playKeys)).toBeUndefined();
    expect(suggest('x', playKeys)).toBeUndefined();
    expect(suggest('tasks', [])).toBeUndefined();
  });

  it('prefers the closest, then the first listed', () => {
    expect(suggest('stat', ['start', 'state'])).toBe('start');
    expect(suggest('sate', ['state', 'site', 'sat'])).toBe('state');
  });

  it('formats the hint', () => {
    expect(didYouMean('tsks', playKeys)).toBe(" (did you mean 'tasks'?)");
    expect(didYouMean('zzzzzz', playKeys)).toBe('');
  });
});
