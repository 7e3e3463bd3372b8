export interface Spread {
  min: number;
  median: number;
  max: number;
}

export function spread(values: readonly number[]): Spread | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { min: s[0]!, median, max: s[s.length - 1]! };
}

export const round = (n: number, digits = 2): number => Number(n.toFixed(digits));

/** "1.84 s" from milliseconds. */
export const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

/** "0.41 × target" */
export const ofTarget = (value: number, target: number): string => `${(value / target).toFixed(2)} × target`;

/** "48.2 MiB" from kB as /proc reports them (units of 1024 bytes). */
export const mib = (kb: number): string => `${(kb / 1024).toFixed(1)} MiB`;

/** Least-squares slope of y over x; 0 with fewer than two distinct x. */
export function slope(points: readonly { x: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((a, p) => a + p.x, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}
