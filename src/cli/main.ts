#!/usr/bin/env node
import { createRequire } from 'node:module';
import { budgetsCommand } from './budgets.js';
import { type Command, commandHelp, parseCommandArgs, UsageError } from './command.js';
import { configCommand } from './config.js';
import { keysCommand } from './keys.js';
import { queryCommand } from './query.js';
import { simCommand } from './sim.js';
import { orgsCommand, teamsCommand } from './tenants.js';
import { upCommand } from './up.js';

const commands: Command[] = [
  upCommand,
  simCommand,
  configCommand,
  keysCommand,
  teamsCommand,
  orgsCommand,
  budgetsCommand,
  queryCommand,
];

function mainHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'Usage: sluice <command> [options]',
    '',
    'Sluice: an AI gateway and control plane.',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `sluice <command> --help` for the options of a command.',
    '',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(mainHelp());
    return 0;
  }
  if (name === '--version' || name === '-v') {
    const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };
    process.stdout.write(`${pkg.version}\n`);
    return 0;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`sluice: unknown command "${name}"\n\n${mainHelp()}`);
    return 2;
  }
  try {
    const { help, values, positionals } = parseCommandArgs(command, rest);
    if (help) {
      process.stdout.write(commandHelp(command));
      return 0;
    }
    await command.run(values, positionals);
    return -1;
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`sluice ${command.name}: ${error.message}\n\n${commandHelp(command)}`);
      return 2;
    }
    process.stderr.write(`sluice ${command.name}: ${(error as Error).message}\n`);
    return 1;
  }
}

// -1: a long-running command is serving; it exits on a signal.
main(process.argv.slice(2)).then((code) => {
  if (code >= 0) process.exitCode = code;
});
