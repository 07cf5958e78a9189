import { inOrder } from '../../../src/cli/host_order.js';

test('each host is printed once every host before it has been, whatever order they finish in', () => {
  const printed: string[] = [];
  const order = inOrder<string>(['a', 'b', 'c', 'd'], (item) => printed.push(item));
  order.done('c', 'C');
  order.done('b', 'B');
  expect(printed).toEqual([]);
  order.done('a', 'A');
  expect(printed).toEqual(['A', 'B', 'C']);
  order.done('elsewhere', 'E'); // not in the order: shown at once
  order.done('d', 'D');
  expect(printed).toEqual(['A', 'B', 'C', 'E', 'D']);
});

test('flush prints what is held back, in order, skipping hosts that never finished', () => {
  const printed: string[] = [];
  const order = inOrder<string>(['a', 'b', 'c', 'd'], (item) => printed.push(item));
  order.done('d', 'D');
  order.done('b', 'B');
  order.flush();
  expect(printed).toEqual(['B', 'D']);
  order.done('a', 'A'); // after the end: still shown
  expect(printed).toEqual(['B', 'D', 'A']);
});
