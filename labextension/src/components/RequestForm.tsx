/**
 * The form to ask for packages in a shared environment. The server validates (specs are
 * MatchSpecs checked by py-rattler); its per-field messages are shown under each field.
 */
import * as React from 'react';

import { ApiError, describeError } from '../api';
import { requestSummary } from '../format';
import type { IFiledRequest } from '../models';
import type { EnvShareModel } from '../state';
import type { FieldErrors } from './common';
import { FieldError, submitOnEnter, useSignal } from './common';

const MAX_REASON = 4000;

interface ISpecRow {
  readonly key: number;
  readonly text: string;
}

/** What the last submission gave. */
type Outcome =
  | { readonly kind: 'filed'; readonly filed: IFiledRequest }
  | { readonly kind: 'failed'; readonly error: unknown };

/** The request form; `env` is controlled by the parent so other views can preselect it. */
export function RequestForm(props: {
  model: EnvShareModel;
  env: string;
  onEnvChange: (env: string) => void;
  idPrefix: string;
}): React.ReactElement {
  const { model, env, idPrefix } = props;
  useSignal(model.changed);
  const nextKey = React.useRef(1);
  const [rows, setRows] = React.useState<ISpecRow[]>([{ key: 0, text: '' }]);
  const [reason, setReason] = React.useState('');
  const [errors, setErrors] = React.useState<FieldErrors>({});
  const [busy, setBusy] = React.useState(false);
  const [outcome, setOutcome] = React.useState<Outcome | null>(null);
  const envs = model.envs.value ?? [];
  const ids = {
    env: `${idPrefix}-env`,
    envError: `${idPrefix}-env-error`,
    specsError: `${idPrefix}-specs-error`,
    reason: `${idPrefix}-reason`,
    reasonError: `${idPrefix}-reason-error`,
    reasonHint: `${idPrefix}-reason-hint`
  };

  const setRow = (key: number, text: string): void => {
    setRows(current => current.map(r => (r.key === key ? { key, text } : r)));
  };
  const addRow = (): void => {
    const key = nextKey.current++;
    setRows(current => [...current, { key, text: '' }]);
    // Focus the new input once it exists.
    window.requestAnimationFrame(() => {
      document.getElementById(`${idPrefix}-spec-${String(key)}`)?.focus();
    });
  };
  const removeRow = (key: number): void => {
    setRows(current => current.filter(r => r.key !== key));
  };

  const submit = async (): Promise<void> => {
    // Empty rows are dropped; the server's `specs[i]` refers to the i-th submitted spec.
    const submitted = rows.filter(r => r.text.trim() !== '');
    const local: Record<string, string> = {};
    if (!env) {
      local.env = 'Choose an environment.';
    }
    if (submitted.length === 0) {
      local.specs = 'Name at least one package, e.g. polars or "polars >=1.0".';
    }
    if (!reason.trim()) {
      local.reason = 'Say what you need it for: admins decide on it.';
    }
    setOutcome(null);
    if (Object.keys(local).length) {
      setErrors(local);
      return;
    }
    setErrors({});
    setBusy(true);
    try {
      const filed = await model.createRequest({
        env,
        specs: submitted.map(r => r.text.trim()),
        reason: reason.trim()
      });
      setOutcome({ kind: 'filed', filed });
      setRows([{ key: nextKey.current++, text: '' }]);
      setReason('');
    } catch (error) {
      if (error instanceof ApiError && error.kind === 'validation') {
        setErrors(rowErrors(error.fieldErrors, submitted, error.message));
      }
      setOutcome({ kind: 'failed', error });
    } finally {
      setBusy(false);
    }
  };

  return (
    <form
      className="jp-envshare-Form"
      aria-label="Request packages in a shared environment"
      noValidate
      onSubmit={event => {
        event.preventDefault();
        void submit();
      }}
    >
      <label className="jp-envshare-Label" htmlFor={ids.env}>
        Environment
      </label>
      <select
        id={ids.env}
        className="jp-envshare-Select"
        value={env}
        aria-invalid={errors.env ? true : undefined}
        aria-describedby={errors.env ? ids.envError : undefined}
        onChange={e => {
          props.onEnvChange(e.target.value);
        }}
      >
        <option value="">Choose an environment…</option>
        {envs.map(e => (
          <option key={e.name} value={e.name}>
            {e.displayName === e.name ? e.name : `${e.displayName} (${e.name})`}
          </option>
        ))}
        {env && !envs.some(e => e.name === env) && (
          <option value={env}>{env}</option>
        )}
      </select>
      <FieldError id={ids.envError} message={errors.env} />

      <fieldset className="jp-envshare-Fieldset">
        <legend className="jp-envshare-Label">Packages</legend>
        {rows.map((row, index) => {
          const inputId = `${idPrefix}-spec-${String(row.key)}`;
          const errorId = `${inputId}-error`;
          const message = errors[`row:${String(row.key)}`];
          return (
            <div key={row.key} className="jp-envshare-SpecRow">
              <input
                id={inputId}
                type="text"
                className="jp-envshare-Input"
                placeholder={index === 0 ? 'polars >=1.0' : 'another package'}
                aria-label={`Package ${String(index + 1)} (conda spec)`}
                aria-invalid={message ? true : undefined}
                aria-describedby={message ? errorId : undefined}
                autoComplete="off"
                spellCheck={false}
                value={row.text}
                onChange={e => {
                  setRow(row.key, e.target.value);
                }}
                onKeyDown={submitOnEnter}
              />
              {rows.length > 1 && (
                <button
                  type="button"
                  className="jp-envshare-IconButton"
                  aria-label={`Remove package ${String(index + 1)}`}
                  title="Remove this package"
                  onClick={() => {
                    removeRow(row.key);
                  }}
                >
                  ×
                </button>
              )}
              <FieldError id={errorId} message={message} />
            </div>
          );
        })}
        <FieldError id={ids.specsError} message={errors.specs} />
        <button
          type="button"
          className="jp-envshare-LinkButton"
          onClick={addRow}
        >
          + Add another package
        </button>
      </fieldset>

      <label className="jp-envshare-Label" htmlFor={ids.reason}>
        Why do you need it?
      </label>
      <textarea
        id={ids.reason}
        className="jp-envshare-Input jp-envshare-Textarea"
        rows={3}
        maxLength={MAX_REASON}
        placeholder="e.g. reading Parquet files for the 2025 survey"
        aria-invalid={errors.reason ? true : undefined}
        aria-describedby={[errors.reason ? ids.reasonError : '', ids.reasonHint]
          .filter(Boolean)
          .join(' ')}
        value={reason}
        onChange={e => {
          setReason(e.target.value);
        }}
        onKeyDown={submitOnEnter}
      />
      <span id={ids.reasonHint} className="jp-envshare-Hint">
        Enter submits; Shift+Enter for a new line.
      </span>
      <FieldError id={ids.reasonError} message={errors.reason} />

      <div className="jp-envshare-Actions">
        <button
          type="submit"
          className="jp-envshare-Button jp-mod-accept"
          disabled={busy}
        >
          {busy ? 'Submitting…' : 'Submit request'}
        </button>
      </div>
      <FormOutcome outcome={outcome} me={model.whoami.value?.name ?? ''} />
    </form>
  );
}

function FormOutcome(props: {
  outcome: Outcome | null;
  me: string;
}): React.ReactElement {
  const { outcome } = props;
  // The live region exists before the message so screen readers announce it.
  return (
    <div role="status" aria-live="polite" className="jp-envshare-Outcome">
      {outcome?.kind === 'filed' && (
        <p className="jp-envshare-Success">
          {outcome.filed.created
            ? `Requested ${requestSummary(outcome.filed.request)}.`
            : `${outcome.filed.request.requester === props.me ? 'You already asked for this' : `${outcome.filed.request.requester} already asked for this`}: ${requestSummary(outcome.filed.request)}.`}
        </p>
      )}
      {outcome?.kind === 'failed' && (
        <p className="jp-envshare-Error">{failureText(outcome.error)}</p>
      )}
    </div>
  );
}

/** The summary of a failed submission; field messages are shown under their fields. */
function failureText(error: unknown): string {
  if (error instanceof ApiError && Object.keys(error.fieldErrors).length > 0) {
    return 'The request was not filed: correct the highlighted fields and submit again.';
  }
  const { message, detail } = describeError(error, 'submitting the request');
  return detail ? `${message} (${detail})` : message;
}

/**
 * The server's field errors, with `specs[i]` moved to the row it came from (`row:<key>`) so
 * the message appears under the right input.
 */
function rowErrors(
  fieldErrors: FieldErrors,
  submitted: readonly ISpecRow[],
  message: string
): FieldErrors {
  const mapped: Record<string, string> = {};
  for (const [field, text] of Object.entries(fieldErrors)) {
    const match = /^specs\[(\d+)\]$/.exec(field);
    const row = match ? submitted[Number(match[1])] : undefined;
    mapped[row ? `row:${String(row.key)}` : field] = text;
  }
  if (Object.keys(mapped).length === 0 && message) {
    mapped.specs = message;
  }
  return mapped;
}
