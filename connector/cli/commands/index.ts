import type { Command } from 'commander';
import { registerFoundationCommands } from './foundation.commands';
import { registerDoctorCommands } from './doctor.commands';
import { registerDemoCommands } from './demo.commands';
import { registerBankCommands } from './bank.commands';
import { registerErpCommands } from './erp.commands';
import { registerSignerCommands } from './signer.commands';
import { registerSignerAgentCommands } from './signer-agent.commands';
import { registerUsersCommands } from './users.commands';
import { registerLockdownCommands } from './lockdown.commands';

/**
 * Every area of the connector adds its subcommands here, one line each, so the CLI stays one
 * program (`connector`). A register function only declares commands; work happens in actions.
 */
export type RegisterCommands = (program: Command) => void;

export const commandRegistrars: RegisterCommands[] = [
  registerFoundationCommands,
  registerDoctorCommands,
  registerDemoCommands,
  registerBankCommands,
  registerErpCommands,
  registerSignerCommands,
  registerSignerAgentCommands,
  registerUsersCommands,
  registerLockdownCommands,
];
