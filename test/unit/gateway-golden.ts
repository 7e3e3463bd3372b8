import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as assert from 'uvu/assert';

/**
 * Compares text with test/unit/golden/NAME. With UPDATE_GOLDEN=1 the file is
 * (re)written instead; review the diff before keeping it.
 */
export function golden(name: string, actual: string): void {
  const url = new URL(`golden/${name}`, import.meta.url);
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(url, actual);
  if (!existsSync(url)) assert.unreachable(`golden file ${name} is missing; run with UPDATE_GOLDEN=1 to create it`);
  assert.fixture(actual, readFileSync(url, 'utf8'));
}
