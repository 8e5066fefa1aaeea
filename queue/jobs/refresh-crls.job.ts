import { z } from 'zod';
import { defineJob, type JobHandler } from '../job-definition';
import { crlCacheFile, isCrlUrl, refreshCrl } from '../../signer-agent/certificates/crl.refresher';
import { defaultTrustPaths, loadTrustStore } from '../../signer-agent/certificates/trust.store';

export const refreshCrlsJob = defineJob({
  name: 'crl.refresh',
  queue: 'maintenance',
  payload: z.object({}).passthrough(),
  jobId: () => 'crl-refresh',
});

/** Downloads every configured CRL URL into the cache (signer-agent/certificates/crl.refresher.ts). */
export const handleRefreshCrls: JobHandler<typeof refreshCrlsJob.payload> = async (_payload, context) => {
  const urls = context.config.signer.crl.filter(isCrlUrl);
  if (urls.length === 0) return { refreshed: 0 };
  const trust = loadTrustStore(defaultTrustPaths(context.config));
  const results = [];
  for (const url of urls) {
    const result = await refreshCrl(url, crlCacheFile(url, context.config.signer.crlCacheDir), trust, context.clock.now());
    const level = result.status === 'updated' || result.status === 'unchanged' ? (result.stale ? 'warn' : 'info') : 'error';
    context.logger[level]({ event: 'crl.refresh', ...result });
    results.push(result);
  }
  return { refreshed: results.filter((r) => r.status === 'updated').length, results };
};
