/**
 * Host blocks in a fixed order while a run streams: hosts finish in any
 * order, but each block is printed as soon as every host before it (in
 * inventory order) has been printed, so the output reads the same on every
 * run and a host is found where the inventory has it.
 */
export interface InOrder<T> {
  /** `host` finished with `item`: prints it, and any later ones it was holding back, when its turn has come. */
  done(host: string, item: T): void;
  /** Prints what is still held back, in order (hosts that never finished are skipped). */
  flush(): void;
}

export function inOrder<T>(hosts: readonly string[], print: (item: T) => void): InOrder<T> {
  const position = new Map(hosts.map((host, index) => [host, index]));
  const held = new Map<number, T>();
  let next = 0;
  const release = () => {
    while (held.has(next)) {
      const item = held.get(next) as T;
      held.delete(next);
      next++;
      print(item);
    }
  };
  return {
    done(host, item) {
      const index = position.get(host);
      // A host outside the order is shown at once rather than lost.
      if (index === undefined || index < next) return print(item);
      held.set(index, item);
      release();
    },
    flush() {
      for (const index of [...held.keys()].sort((a, b) => a - b)) print(held.get(index) as T);
      held.clear();
      next = hosts.length;
    },
  };
}
