import { parseArgs } from 'node:util';

export interface OptionSpec {
  type: 'string' | 'boolean';
  description: string;
  short?: string;
  /** Shown in help, e.g. "N" or "file". */
  value?: string;
  default?: string;
}

export interface Command {
  name: string;
  summary: string;
  /** Longer help text shown under the usage line. */
  details?: string;
  options: Record<string, OptionSpec>;
  run(values: Record<string, string | boolean | undefined>, positionals: string[]): Promise<void>;
}

/** A mistake on the command line: printed with the command's usage, exit code 2. */
export class UsageError extends Error {}

const helpOption: OptionSpec = { type: 'boolean', short: 'h', description: 'Show this help.' };

export function commandHelp(command: Command): string {
  const options = { ...command.options, help: helpOption };
  const rows = Object.entries(options).map(([name, spec]) => {
    const flag = `${spec.short ? `-${spec.short}, ` : '    '}--${name}${spec.type === 'string' ? ` <${spec.value ?? 'value'}>` : ''}`;
    const suffix = spec.default !== undefined ? ` (default: ${spec.default})` : '';
    return [flag, spec.description + suffix] as const;
  });
  const width = Math.max(...rows.map(([flag]) => flag.length));
  const lines = [`Usage: sluice ${command.name} [options]`, '', command.summary];
  if (command.details) lines.push('', command.details);
  lines.push('', 'Options:', ...rows.map(([flag, text]) => `  ${flag.padEnd(width)}  ${text}`));
  return `${lines.join('\n')}\n`;
}

/** Parses argv for `command`; throws UsageError with a precise message on unknown or malformed flags. */
export function parseCommandArgs(
  command: Command,
  argv: string[],
): { help: boolean; values: Record<string, string | boolean | undefined>; positionals: string[] } {
  const options = Object.fromEntries(
    Object.entries({ ...command.options, help: helpOption }).map(([name, spec]) => [
      name,
      {
        type: spec.type,
        ...(spec.short && { short: spec.short }),
        ...(spec.default !== undefined && { default: spec.default }),
      },
    ]),
  );
  try {
    const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    return {
      help: values.help === true,
      values: values as Record<string, string | boolean | undefined>,
      positionals,
    };
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** Reads an integer flag, with its range, or throws a UsageError naming the flag. */
export function intOption(
  values: Record<string, string | boolean | undefined>,
  name: string,
  range: { min: number; max: number },
): number | undefined {
  const raw = values[name];
  if (raw === undefined || typeof raw === 'boolean') return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < range.min || value > range.max) {
    throw new UsageError(`--${name} must be an integer from ${range.min} to ${range.max}, got "${raw}"`);
  }
  return value;
}
