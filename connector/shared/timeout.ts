/**
 * Bounds a promise in time: rejects with "<what> did not answer within <ms> ms" when it takes
 * longer (the promise itself runs on; callers use this where an answer must come, e.g. doctor's
 * 15-second promise or readiness probes). The timer never keeps the process alive.
 */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
        timer.unref();
      }),
    ]);
  } finally {
    if (timer) clearTimeout(timer);
  }
}
