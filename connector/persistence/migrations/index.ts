import type { MigrationObject } from '@mikro-orm/core';
import { Migration20261125000000_foundation } from './Migration20261125000000_foundation';
import { Migration20261125010000_users } from './Migration20261125010000_users';
import { Migration20261125030000_pipeline } from './Migration20261125030000_pipeline';
import { Migration20261125031000_submit_lease } from './Migration20261125031000_submit_lease';
import { Migration20261125040000_lockdown } from './Migration20261125040000_lockdown';
import { Migration20261125180000_webhooks } from './Migration20261125180000_webhooks';
import { Migration20261125190000_statements } from './Migration20261125190000_statements';
import { Migration20261126000000_audit_append } from './Migration20261126000000_audit_append';
import { Migration20261126010000_send_lease_owner } from './Migration20261126010000_send_lease_owner';
import { Migration20261126020000_signature_chain } from './Migration20261126020000_signature_chain';
import { Migration20261126030000_incident_alerts } from './Migration20261126030000_incident_alerts';
import { Migration20261126040000_history_indexes } from './Migration20261126040000_history_indexes';
import { Migration20261126050000_audit_enrolment_index } from './Migration20261126050000_audit_enrolment_index';
import { Migration20261126060000_natural_key_across_sources } from './Migration20261126060000_natural_key_across_sources';
import { Migration20261126070000_credentials_revoked_source } from './Migration20261126070000_credentials_revoked_source';
import { Migration20261126163000_totp_last_step } from './Migration20261126163000_totp_last_step';
import { Migration20261127000000_audit_lockdown_index } from './Migration20261127000000_audit_lockdown_index';
import { Migration20261127010000_execution_mismatch_per_line } from './Migration20261127010000_execution_mismatch_per_line';
import { Migration20261127020000_incident_reminders } from './Migration20261127020000_incident_reminders';
import { Migration20261128000000_order_event_snapshot } from './Migration20261128000000_order_event_snapshot';

/**
 * Every migration, in order. Listed explicitly (not globbed) so the compiled build, ts-jest and
 * PM2 all run the same set. Later issues append theirs here.
 */
export const MIGRATIONS: MigrationObject[] = [
  { name: 'Migration20261125000000_foundation', class: Migration20261125000000_foundation },
  { name: 'Migration20261125010000_users', class: Migration20261125010000_users },
  { name: 'Migration20261125030000_pipeline', class: Migration20261125030000_pipeline },
  { name: 'Migration20261125031000_submit_lease', class: Migration20261125031000_submit_lease },
  { name: 'Migration20261125040000_lockdown', class: Migration20261125040000_lockdown },
  { name: 'Migration20261125180000_webhooks', class: Migration20261125180000_webhooks },
  { name: 'Migration20261125190000_statements', class: Migration20261125190000_statements },
  { name: 'Migration20261126000000_audit_append', class: Migration20261126000000_audit_append },
  { name: 'Migration20261126010000_send_lease_owner', class: Migration20261126010000_send_lease_owner },
  { name: 'Migration20261126020000_signature_chain', class: Migration20261126020000_signature_chain },
  { name: 'Migration20261126030000_incident_alerts', class: Migration20261126030000_incident_alerts },
  { name: 'Migration20261126040000_history_indexes', class: Migration20261126040000_history_indexes },
  { name: 'Migration20261126050000_audit_enrolment_index', class: Migration20261126050000_audit_enrolment_index },
  { name: 'Migration20261126060000_natural_key_across_sources', class: Migration20261126060000_natural_key_across_sources },
  { name: 'Migration20261126070000_credentials_revoked_source', class: Migration20261126070000_credentials_revoked_source },
  { name: 'Migration20261126163000_totp_last_step', class: Migration20261126163000_totp_last_step },
  { name: 'Migration20261127000000_audit_lockdown_index', class: Migration20261127000000_audit_lockdown_index },
  { name: 'Migration20261127010000_execution_mismatch_per_line', class: Migration20261127010000_execution_mismatch_per_line },
  { name: 'Migration20261127020000_incident_reminders', class: Migration20261127020000_incident_reminders },
  { name: 'Migration20261128000000_order_event_snapshot', class: Migration20261128000000_order_event_snapshot },
];
