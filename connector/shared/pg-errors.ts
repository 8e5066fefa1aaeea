/**
 * pg's words when the server asks for a password (SCRAM, as a stock Debian PostgreSQL does over
 * TCP) and the URL gives none: not a server that is down. Told the same by every command
 * (cli/service-error.mapper.ts) and by doctor.
 */
export const PASSWORD_NOT_GIVEN = /client password must be a string/;

export const PASSWORD_NOT_GIVEN_HINT =
  'put the password in CONNECTOR_DATABASE_URL (postgresql://user:password@host:5432/connector), or let this user in by a trust or peer line of pg_hba.conf';
