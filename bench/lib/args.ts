import { parseArgs } from 'node:util';

export interface IntOption<N extends string = string> {
  name: N;
  default: number;
  min: number;
  max: number;
  help: string;
}

/**
 * `--name N` options, each an integer within bounds (the bounds keep every
 * benchmark loop finite). Prints usage and exits on --help or bad input.
 */
export function parseIntOptions<N extends string>(usage: string, options: readonly IntOption<N>[]): Record<N, number> {
  const help = `${usage}\n\nOptions:\n${options.map((o) => `  --${o.name} N  ${o.help} (default ${o.default}, ${o.min}-${o.max})`).join('\n')}\n`;
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: process.argv.slice(2),
      strict: true,
      options: {
        help: { type: 'boolean', short: 'h' },
        ...Object.fromEntries(options.map((o) => [o.name, { type: 'string' as const }])),
      },
    }).values;
  } catch (e) {
    process.stderr.write(`${(e as Error).message.split('\n')[0]}\n\n${help}`);
    process.exit(2);
  }
  if (values['help']) {
    process.stdout.write(help);
    process.exit(0);
  }
  const out = {} as Record<N, number>;
  for (const o of options) {
    const raw = values[o.name];
    const n = typeof raw === 'string' ? Number(raw) : o.default;
    if (!Number.isInteger(n) || n < o.min || n > o.max) {
      process.stderr.write(`--${o.name}: expected an integer from ${o.min} to ${o.max}, got ${JSON.stringify(raw)}\n`);
      process.exit(2);
    }
    out[o.name] = n;
  }
  return out;
}
