import { describeInput, ValidationError } from '../../shared/errors.ts';

/** Rotating more often than this would mostly break sessions (logins, downloads) and churn NDP. */
export const MIN_ROTATION_SECONDS = 5 * 60;
export const MAX_ROTATION_SECONDS = 30 * 24 * 3600;

const UNITS: Record<string, number> = { m: 60, h: 3600, d: 86400 };

/** "30m", "1h", "1d" → seconds; "off" → null. ValidationError naming `field` otherwise. */
export function parseSchedule(text: unknown, field = 'every'): number | null {
  const expected = 'expected "off" or a period such as 30m, 1h or 1d (at least 5 minutes, at most 30 days)';
  if (typeof text !== 'string') throw new ValidationError(field, `${expected}, got ${describeInput(text)}`);
  const t = text.trim().toLowerCase();
  if (t === 'off') return null;
  const m = /^([1-9][0-9]{0,5})([mhd])$/.exec(t);
  if (!m) throw new ValidationError(field, `${expected}, got ${describeInput(text)}`);
  const seconds = Number(m[1]) * UNITS[m[2]!]!;
  if (seconds < MIN_ROTATION_SECONDS) throw new ValidationError(field, `${text} is too often: rotate at most every 5 minutes (5m)`);
  if (seconds > MAX_ROTATION_SECONDS) throw new ValidationError(field, `${text} is too long: at most 30 days (30d)`);
  return seconds;
}

/** The shortest text parseSchedule reads back to the same value. */
export function formatSchedule(seconds: number | null): string {
  if (seconds === null) return 'off';
  for (const unit of ['d', 'h', 'm']) {
    const size = UNITS[unit]!;
    if (seconds % size === 0) return `${seconds / size}${unit}`;
  }
  return `${Math.ceil(seconds / 60)}m`;
}
