import { configJsonSchema, loadConfigFile } from '../config/load.js';
import { type Command, UsageError } from './command.js';

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

export const configCommand: Command = {
  name: 'config',
  summary: 'Check a sluice.yaml, or print its JSON Schema.',
  details: [
    'Subcommands:',
    '  check [file]  Validate a config file (default: sluice.yaml), with its ${VAR} references',
    '                read from the environment. Prints every problem with a hint and exits 1,',
    '                or a summary of providers and routes.',
    '  schema        Print the JSON Schema of sluice.yaml, for editors: save it and start the',
    '                file with `# yaml-language-server: $schema=./sluice.schema.json`.',
    '',
    'Examples:',
    '  sluice config check examples/sluice.yaml',
    '  sluice config schema > sluice.schema.json',
    '',
    'See docs/configuration.md for every field.',
  ].join('\n'),
  options: {},
  async run(_values, positionals) {
    const [subcommand, ...rest] = positionals;
    if (subcommand === 'check') {
      if (rest.length > 1) throw new UsageError(`check takes one file, got ${rest.length}`);
      const file = rest[0] ?? 'sluice.yaml';
      // An invalid file throws ConfigError: main prints its problems and exits 1.
      const config = await loadConfigFile(file);
      const routes = Object.keys(config.routes);
      const names = routes.length > 0 ? ` (${routes.join(', ')})` : '';
      process.stdout.write(
        `${file} is valid: ${count(Object.keys(config.providers).length, 'provider')}, ${count(routes.length, 'route')}${names}\n`,
      );
      return;
    }
    if (subcommand === 'schema') {
      if (rest.length > 0) throw new UsageError(`schema takes no arguments, got "${rest.join(' ')}"`);
      process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
      return;
    }
    throw new UsageError(
      subcommand === undefined ? 'name a subcommand: check or schema' : `unknown subcommand "${subcommand}"`,
    );
  },
};
