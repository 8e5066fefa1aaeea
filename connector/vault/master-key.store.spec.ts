import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addMasterKey, loadOrCreateMasterKey, pruneMasterKeys } from './master-key.store';

/** The file system as the key store sees it, with a disk that can be made full for the next write. */
const mockDisk = { fullForWrites: 0, synced: [] as number[] };
jest.mock('node:fs', () => {
  const actual = jest.requireActual<typeof import('node:fs')>('node:fs');
  return {
    ...actual,
    writeSync: (...args: Parameters<typeof actual.writeSync>) => {
      if (mockDisk.fullForWrites > 0) {
        mockDisk.fullForWrites -= 1;
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      }
      return (actual.writeSync as (...a: unknown[]) => number)(...args);
    },
    fsyncSync: (fd: number) => {
      mockDisk.synced.push(fd);
      actual.fsyncSync(fd);
    },
  };
});

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'master-key-'));
  mockDisk.fullForWrites = 0;
  mockDisk.synced = [];
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('master key file on a disk that fills up or loses power', () => {
  test('a disk full while the first key is written leaves no empty key file behind: once there is space, the next try makes the key', () => {
    const path = join(dir, 'master.key');
    mockDisk.fullForWrites = 1;
    expect(() => loadOrCreateMasterKey(path)).toThrow(/ENOSPC/);
    // Not an empty master.key that every later start refuses as "holds no key", nor a temp file.
    expect(existsSync(path)).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
    expect(loadOrCreateMasterKey(path).current.key).toHaveLength(32);
  });

  test('a disk full during a rotation leaves the key file as it was', () => {
    const path = join(dir, 'master.key');
    const before = loadOrCreateMasterKey(path);
    mockDisk.fullForWrites = 1;
    expect(() => addMasterKey(path)).toThrow(/ENOSPC/);
    expect(readdirSync(dir)).toEqual(['master.key']);
    expect(loadOrCreateMasterKey(path).current.id).toBe(before.current.id);
  });

  test('the key file is on disk (fsync of the file and of its folder) before a secret can be sealed with it: when it is made, and at each rotation', () => {
    const path = join(dir, 'master.key');
    const syncs: number[] = [];
    const step = (work: () => unknown) => {
      const from = mockDisk.synced.length;
      work();
      syncs.push(mockDisk.synced.length - from);
    };
    step(() => loadOrCreateMasterKey(path));
    step(() => addMasterKey(path));
    step(() => pruneMasterKeys(path));
    expect(syncs.map((n) => n >= 2)).toEqual([true, true, true]);
    expect(readdirSync(dir)).toEqual(['master.key']);
  });
});
