import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../app/app-context';
import { sessionOf } from '../users/session.authenticator';
import { accountsVisibleTo, decideSign } from '../users/authority';
import { PaymentOrder } from '../persistence/entities';
import { completeSigning, prepareSigning, signAs } from '../../queue/order-signing';
import { SignerAgentError } from '../../signer-agent/agent/signer-agent.client';
import { ConnectorError } from '../shared/errors';
import { ApiError } from './api-errors';
import { isUuid } from '../shared/uuid';

/**
 * A person signs an order with their EDS: `POST /api/v1/orders/:id/sign` with a
 * session; the user's key must be unlocked in the signer agent (`POST /api/v1/me/key/unlock`).
 * The level comes from the user's right on the payer account; one person gives one signature.
 */
export function orderSigningRoutes(app: FastifyInstance, context: AppContext): void {
  app.post('/api/v1/orders/:id/sign', async (request) => {
    const session = sessionOf(request);
    if (!session) throw new ApiError(403, 'SESSION_REQUIRED', 'a person signs with their own session, not with an API key');
    const { id } = request.params as { id: string };
    if (!isUuid(id)) throw new ApiError(404, 'NOT_FOUND', 'no such order');
    // An order of an account the person has no right on does not exist for them: asked before
    // anything is loaded for signing, which moves a validated order on and freezes its document, and
    // before its state is told.
    const order = await context.orm.em.fork().findOne(PaymentOrder, { id }, { fields: ['payerIban'] });
    const visible = accountsVisibleTo(session.user, session.rights);
    if (!order || (visible !== 'all' && !visible.includes(order.payerIban))) throw new ApiError(404, 'NOT_FOUND', 'no such order');
    // One who sees the account but may sign nothing on it (a viewer, an operator, an information-only
    // right, a right without a signature level) is refused here too, before the order is moved on and
    // its document frozen. The amount is judged by the signing itself (OVER_LIMIT), on the order as frozen.
    const may = decideSign({ user: session.user, rights: session.rights }, order.payerIban, 0, context.clock);
    if (!may.allowed) throw new ApiError(403, may.reason as string, `this signature cannot be given: ${may.reason}`);
    const state = await prepareSigning(context, id);
    if (!state) throw new ApiError(409, 'NOT_AWAITING_SIGNATURES', 'the order is not waiting for signatures');
    let attempt;
    try {
      attempt = await signAs(context, state, session.user, { mandate: false });
    } catch (err) {
      if (err instanceof SignerAgentError) throw new ApiError(err.code === 'KEY_LOCKED' || err.code === 'NOT_ENROLLED' ? 409 : 422, err.code, err.message);
      // Issue 16, R-29: no signature under lockdown; told like the key unlock's 423, not as an internal error.
      if (err instanceof ConnectorError && err.code === 'LOCKED_DOWN') throw new ApiError(423, 'LOCKED_DOWN', `${err.message} (connector lockdown status)`);
      throw err;
    }
    // SIGNATURES_CHANGED: other signatures kept landing first; the person may simply sign again.
    // NOT_AWAITING_SIGNATURES: the order moved on while the signature was made (nothing was recorded).
    if ('refused' in attempt) {
      const conflict = attempt.refused === 'SIGNATURES_CHANGED' || attempt.refused === 'NOT_AWAITING_SIGNATURES';
      throw new ApiError(conflict ? 409 : 403, attempt.refused, `this signature cannot be given: ${attempt.refused}`);
    }
    const complete = await completeSigning(context, state);
    return { id, signed: attempt.signed, missing: state.missing, state: complete ? 'signed' : 'awaiting_signatures' };
  });
}
