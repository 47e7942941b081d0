/**
 * One request for an addition to a shared environment, and what a user can do with it.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import * as React from 'react';

import { adminComment, demandText, otherSupporters, people } from '../format';
import type { IInstallRequest, RequestAction } from '../models';
import type { EnvShareModel } from '../state';
import { ErrorNotice, RequestStatusBadge, When } from './common';

/** A request: specs, environment, status, demand, reasons and the admin's comment. */
export function RequestCard(props: {
  request: IInstallRequest;
  showEnv?: boolean;
  children?: React.ReactNode;
}): React.ReactElement {
  const { request } = props;
  const comment = adminComment(request);
  const others = otherSupporters(request);
  const titleId = `jp-envshare-request-${String(request.id)}-title`;
  return (
    <article
      className="jp-envshare-RequestCard"
      aria-labelledby={titleId}
      // Focusable by script only: where the focus goes when the button used is gone.
      tabIndex={-1}
      data-request-id={request.id}
      data-status={request.status}
    >
      <div className="jp-envshare-RequestCard-top">
        <h4 id={titleId} className="jp-envshare-RequestCard-title">
          <span className="jp-envshare-RequestCard-id">
            #{String(request.id)}
          </span>{' '}
          {request.specs.map(spec => (
            <code key={spec} className="jp-envshare-Spec">
              {spec}
            </code>
          ))}
        </h4>
        <RequestStatusBadge status={request.status} />
      </div>
      <div className="jp-envshare-RequestCard-meta">
        {props.showEnv !== false && (
          <>
            <span>
              in <strong>{request.env}</strong>
            </span>
            <span aria-hidden="true"> · </span>
          </>
        )}
        <span className="jp-envshare-Demand">{demandText(request)}</span>
        {request.attempts > 0 && (
          <>
            <span aria-hidden="true"> · </span>
            <span>
              {request.attempts === 1
                ? '1 blocked install'
                : `${String(request.attempts)} blocked installs`}
            </span>
          </>
        )}
      </div>
      <blockquote className="jp-envshare-Reason">
        <span className="jp-envshare-Reason-text">{request.reason}</span>
        <footer>
          — {request.requester}, <When iso={request.createdAt} />
        </footer>
      </blockquote>
      {others.length > 0 && (
        <details className="jp-envshare-Supporters">
          <summary>
            {others.length === 1
              ? '1 supporter'
              : `${String(others.length)} supporters`}
            : {others.map(s => s.user).join(', ')}
          </summary>
          <ul>
            {others.map(s => (
              <li key={s.user}>
                <strong>{s.user}</strong>
                {s.reason ? `: ${s.reason}` : ''} <When iso={s.createdAt} />
              </li>
            ))}
          </ul>
        </details>
      )}
      {comment && (
        <p className="jp-envshare-AdminComment">
          <span className="jp-envshare-AdminComment-label">
            {comment.actor
              ? `Comment from ${comment.actor}:`
              : 'Admin comment:'}
          </span>{' '}
          {comment.text}
        </p>
      )}
      {props.children}
    </article>
  );
}

/** "+1 / I need this too", or a note that the user already needs it. */
export function SupportAction(props: {
  model: EnvShareModel;
  request: IInstallRequest;
  onChanged?: (request: IInstallRequest) => void;
}): React.ReactElement | null {
  const { model, request } = props;
  const me = model.whoami.value?.name ?? '';
  const [busy, setBusy] = React.useState(false);
  const [error, setError] = React.useState<unknown>(null);
  if (request.status !== 'open') {
    return null;
  }
  if (me !== '' && people(request).includes(me)) {
    return (
      <p className="jp-envshare-Note">
        {request.requester === me
          ? 'You asked for this.'
          : 'You support this request.'}
      </p>
    );
  }
  const support = async (): Promise<void> => {
    setBusy(true);
    setError(null);
    try {
      // Not `onChanged?.(await ...)`: an optional call skips evaluating its arguments.
      const updated = await model.act(request.id, 'support');
      props.onChanged?.(updated);
    } catch (reason) {
      setError(reason);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="jp-envshare-Actions">
      <button
        type="button"
        className="jp-envshare-Button jp-mod-accept"
        disabled={busy}
        aria-label={`+1: I need ${request.specs.join(', ')} in ${request.env} too`}
        onClick={() => {
          void support();
        }}
      >
        +1 / I need this too
      </button>
      <ErrorNotice error={error} what="adding your support" />
    </div>
  );
}

/** Withdraw one's own open request, once confirmed: it cannot be undone. */
export function WithdrawAction(props: {
  model: EnvShareModel;
  request: IInstallRequest;
}): React.ReactElement | null {
  const { model, request } = props;
  const [busy, setBusy] = React.useState(false);
  const [error, setError] = React.useState<unknown>(null);
  const buttonRef = React.useRef<HTMLButtonElement>(null);
  const asking = React.useRef(false);
  if (
    request.status !== 'open' ||
    request.requester !== model.whoami.value?.name
  ) {
    return null;
  }
  const withdraw = async (): Promise<void> => {
    if (asking.current) {
      return;
    }
    asking.current = true;
    setError(null);
    try {
      // Ask about the request as it is now: others may have +1'd it since the list loaded.
      const current = await model.client.getRequest(request.id);
      if (current.status !== 'open') {
        await model.refresh();
        return;
      }
      // The button stays enabled until confirmed, so the dialog gives the focus back to it.
      if (!(await confirmWithdraw(current))) {
        return;
      }
      setBusy(true);
      await model.act(request.id, 'withdraw' satisfies RequestAction);
      // The button goes with the open status: leave the focus on the card, not the page.
      const focused = document.activeElement;
      if (
        focused === null ||
        focused === document.body ||
        focused === buttonRef.current
      ) {
        buttonRef.current?.closest<HTMLElement>('article')?.focus();
      }
    } catch (reason) {
      setError(reason);
    } finally {
      asking.current = false;
      setBusy(false);
    }
  };
  return (
    <div className="jp-envshare-Actions">
      <button
        ref={buttonRef}
        type="button"
        className="jp-envshare-Button"
        disabled={busy}
        aria-label={`Withdraw request #${String(request.id)}`}
        onClick={() => {
          void withdraw();
        }}
      >
        {busy ? 'Withdraw…' : 'Withdraw'}
      </button>
      <ErrorNotice error={error} what="withdrawing the request" />
    </div>
  );
}

/**
 * Whether the requester confirms withdrawing `request`; "Keep it" is the default, so Enter
 * or Escape in the dialog withdraws nothing.
 */
async function confirmWithdraw(request: IInstallRequest): Promise<boolean> {
  const others = otherSupporters(request).map(s => s.user);
  const names = others.length <= 3 ? ` (${others.join(', ')})` : '';
  const supported =
    others.length === 0
      ? ''
      : others.length === 1
        ? ` 1 other person supports it${names}: it will be withdrawn for them too.`
        : ` ${String(others.length)} other people support it${names}: it will be withdrawn for them too.`;
  const result = await showDialog({
    title: `Withdraw request #${String(request.id)}?`,
    // A string body is set as text (never HTML) and also names the dialog for screen readers.
    body:
      `${request.specs.join(', ')} in ${request.env} will no longer be asked for. ` +
      `This cannot be undone.${supported}`,
    buttons: [
      Dialog.cancelButton({ label: 'Keep it' }),
      Dialog.warnButton({ label: 'Withdraw' })
    ],
    defaultButton: 0
  });
  return result.button.accept;
}
