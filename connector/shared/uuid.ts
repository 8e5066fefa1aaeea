/**
 * A UUID as PostgreSQL's `uuid` type reads it and as the connector writes its ids (8-4-4-4-12 hex
 * digits). Asked before an id from outside (a URL, a CLI argument) reaches a query: the looser
 * `/^[0-9a-f-]{36}$/` let 36 dashes through, and PostgreSQL's "invalid input syntax for type uuid"
 * became a 500 INTERNAL where the caller should hear "no such order".
 */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(text: string): boolean {
  return UUID.test(text);
}
