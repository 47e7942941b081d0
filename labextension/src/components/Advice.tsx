/**
 * The install guard's advice in a notebook output, with a "Request this" button that files
 * exactly the stopped packages (or supports the open request for them) and shows its status.
 */
import * as React from 'react';

import { ApiError } from '../api';
import { requestSummary, shellQuote } from '../format';
import type { IAdvice, IInstallRequest } from '../models';
import type { EnvShareModel } from '../state';
import { Busy, ErrorNotice, FieldError, submitOnEnter } from './common';

type Phase =
  | { readonly kind: 'idle' }
  | { readonly kind: 'asking' }
  | { readonly kind: 'sending' }
  | {
      readonly kind: 'filed';
      readonly request: IInstallRequest;
      readonly created: boolean;
    };

let adviceIds = 0;

/** The advice, and the request it can file. */
export function Advice(props: {
  advice: IAdvice;
  model: EnvShareModel;
  onOpenForm: (env: string) => void;
}): React.ReactElement {
  const { advice, model } = props;
  const [phase, setPhase] = React.useState<Phase>({ kind: 'idle' });
  const [reason, setReason] = React.useState('');
  const [error, setError] = React.useState<unknown>(null);
  const [reasonError, setReasonError] = React.useState('');
  const [checking, setChecking] = React.useState(false);
  const [id] = React.useState(
    () => `jp-envshare-advice-${String(++adviceIds)}`
  );
  const reasonRef = React.useRef<HTMLInputElement>(null);
  const requestButton = React.useRef<HTMLButtonElement>(null);
  const warned = advice.mode === 'warn';
  const what = advice.packages.join(', ') || 'these packages';

  React.useEffect(() => {
    if (phase.kind === 'asking') {
      reasonRef.current?.focus();
    }
  }, [phase.kind]);

  const submit = async (): Promise<void> => {
    if (!reason.trim()) {
      setReasonError('Say what you need it for: admins decide on it.');
      reasonRef.current?.focus();
      return;
    }
    setReasonError('');
    setError(null);
    setPhase({ kind: 'sending' });
    try {
      const filed = await model.createRequest({
        env: advice.env,
        specs: advice.specs,
        reason: reason.trim()
      });
      setPhase({
        kind: 'filed',
        request: filed.request,
        created: filed.created
      });
    } catch (reason) {
      if (reason instanceof ApiError && reason.fieldErrors.reason) {
        setReasonError(reason.fieldErrors.reason);
      }
      setError(reason);
      setPhase({ kind: 'asking' });
    }
  };

  const checkStatus = async (
    request: IInstallRequest,
    created: boolean
  ): Promise<void> => {
    setChecking(true);
    setError(null);
    try {
      setPhase({
        kind: 'filed',
        request: await model.client.getRequest(request.id),
        created
      });
    } catch (reason) {
      setError(reason);
    } finally {
      setChecking(false);
    }
  };

  return (
    <div
      className="jp-envshare-Advice"
      role="note"
      aria-label={`Install ${warned ? 'warning' : 'stopped'}: ${advice.env} is a shared, read-only environment`}
      data-env={advice.env}
    >
      <p className="jp-envshare-Advice-title">
        <span className="jp-envshare-Advice-glyph" aria-hidden="true">
          ⚠
        </span>
        <strong>{advice.env || 'This environment'}</strong> is a shared,
        read-only environment
      </p>
      <p>
        {advice.command ? (
          <code className="jp-envshare-Command">{advice.command}</code>
        ) : (
          'The command'
        )}{' '}
        {warned
          ? 'runs anyway: the guard only warns here, and the change affects everyone.'
          : 'was stopped; nothing was changed.'}
        {advice.reason && (
          <span className="jp-envshare-Muted"> ({advice.reason})</span>
        )}
      </p>
      <dl className="jp-envshare-Facts jp-envshare-Advice-facts">
        <dt>Packages</dt>
        <dd>
          {advice.specs.length ? (
            advice.specs.map(spec => (
              <code key={spec} className="jp-envshare-Spec">
                {spec}
              </code>
            ))
          ) : (
            <span className="jp-envshare-Muted">
              none could be read from the command
            </span>
          )}
        </dd>
        {advice.contact && (
          <>
            <dt>Managed by</dt>
            <dd>{advice.contact}</dd>
          </>
        )}
      </dl>

      {phase.kind === 'idle' &&
        (advice.specs.length > 0 ? (
          <div className="jp-envshare-Actions">
            <button
              ref={requestButton}
              type="button"
              className="jp-envshare-Button jp-mod-accept"
              aria-label={`Request ${what} in ${advice.env}`}
              onClick={() => {
                setPhase({ kind: 'asking' });
              }}
            >
              Request this
            </button>
            <span className="jp-envshare-Muted">
              asks the admins to add {what} to {advice.env} for everyone
            </span>
          </div>
        ) : (
          <div className="jp-envshare-Actions">
            <button
              type="button"
              className="jp-envshare-Button"
              onClick={() => {
                props.onOpenForm(advice.env);
              }}
            >
              Open the request form
            </button>
          </div>
        ))}

      {(phase.kind === 'asking' || phase.kind === 'sending') && (
        <form
          className="jp-envshare-Advice-form"
          aria-label={`Request ${what} in ${advice.env}`}
          noValidate
          onSubmit={event => {
            event.preventDefault();
            void submit();
          }}
          onKeyDown={event => {
            if (event.key === 'Escape') {
              setPhase({ kind: 'idle' });
              setError(null);
              window.requestAnimationFrame(() =>
                requestButton.current?.focus()
              );
            }
          }}
        >
          <label className="jp-envshare-Label" htmlFor={`${id}-reason`}>
            Why do you need {what}?
          </label>
          <div className="jp-envshare-Advice-row">
            <input
              ref={reasonRef}
              id={`${id}-reason`}
              type="text"
              className="jp-envshare-Input"
              maxLength={4000}
              placeholder="e.g. reading Parquet files for the survey analysis"
              aria-invalid={reasonError ? true : undefined}
              aria-describedby={reasonError ? `${id}-reason-error` : undefined}
              disabled={phase.kind === 'sending'}
              value={reason}
              onChange={e => {
                setReason(e.target.value);
              }}
              onKeyDown={submitOnEnter}
            />
            <button
              type="submit"
              className="jp-envshare-Button jp-mod-accept"
              disabled={phase.kind === 'sending'}
            >
              Submit request
            </button>
            <button
              type="button"
              className="jp-envshare-Button"
              disabled={phase.kind === 'sending'}
              onClick={() => {
                setPhase({ kind: 'idle' });
                setError(null);
              }}
            >
              Cancel
            </button>
          </div>
          <FieldError id={`${id}-reason-error`} message={reasonError} />
          {phase.kind === 'sending' && <Busy label="Submitting…" />}
        </form>
      )}

      <div role="status" aria-live="polite" className="jp-envshare-Outcome">
        {phase.kind === 'filed' && (
          <p className="jp-envshare-Success jp-envshare-Advice-status">
            {phase.created ? 'Requested ' : 'Added your support to '}
            {requestSummary(phase.request)}
            {phase.request.adminComment
              ? ` (“${phase.request.adminComment}”)`
              : ''}{' '}
            <button
              type="button"
              className="jp-envshare-LinkButton"
              disabled={checking}
              onClick={() => {
                void checkStatus(phase.request, phase.created);
              }}
            >
              {checking ? 'Checking…' : 'Check status'}
            </button>
          </p>
        )}
      </div>
      <ErrorNotice error={error} what="submitting the request" />

      <details className="jp-envshare-Advice-now">
        <summary>Need it right now?</summary>
        <p>Make a personal environment and a kernel for it:</p>
        <pre className="jp-envshare-Diff">
          {`conda create -p ~/envs/mine python ipykernel ${advice.specs.map(shellQuote).join(' ')}\n~/envs/mine/bin/python -m ipykernel install --user --name mine`}
        </pre>
      </details>
    </div>
  );
}
