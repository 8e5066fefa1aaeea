import { isUuid } from './uuid';

/**
 * The cursor of a list read newest first in keyset pages (`GET /api/v1/orders`, `GET
 * /api/v1/incidents`): the moment and id of the last row of the page, opaque to the client
 * (base64url of `<ISO time>|<uuid>`). The next page holds the rows strictly before that pair.
 */
export interface PageCursor {
  at: Date;
  id: string;
}

export function encodePageCursor(cursor: PageCursor): string {
  return Buffer.from(`${cursor.at.toISOString()}|${cursor.id}`).toString('base64url');
}

/** The cursor a client sent back, or null when it is not one of ours (a 400 for the caller). */
export function decodePageCursor(text: string): PageCursor | null {
  const parts = Buffer.from(text, 'base64url').toString('utf8').split('|');
  if (parts.length !== 2 || Number.isNaN(Date.parse(parts[0])) || !isUuid(parts[1])) return null;
  return { at: new Date(parts[0]), id: parts[1] };
}
