import { randomUUID } from 'node:crypto';
import { isUuid } from '../../connector/shared/uuid';

/** Every id taken from outside (URL, CLI argument) is asked this before it reaches PostgreSQL's uuid type. */
describe('isUuid', () => {
  it.each([randomUUID(), randomUUID().toUpperCase(), '00000000-0000-4000-8000-000000000000'])('takes %s', (id) => {
    expect(isUuid(id)).toBe(true);
  });

  it.each([
    ['36 dashes', '-'.repeat(36)],
    ['dashes in the wrong places', 'aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaa-'],
    ['no dashes, padded to 36', `${'a'.repeat(32)}----`],
    ['a letter that is no hex digit', 'g0000000-0000-4000-8000-000000000000'],
    ['a trailing line break', '00000000-0000-4000-8000-000000000000\n'],
    ['empty', ''],
  ])('refuses %s', (_what, id) => {
    expect(isUuid(id)).toBe(false);
  });
});
