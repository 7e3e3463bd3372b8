/**
 * Runs the tasks given to it one at a time, in the order given; a task that
 * fails rejects its own promise and does not hold up the next. For adapters
 * whose set() must not interleave the commands of two calls.
 */
export function createSerialQueue(): <T>(task: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return (task) => {
    const next = tail.then(task);
    tail = next.catch(() => {});
    return next;
  };
}
