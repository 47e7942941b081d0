/**
 * Small building blocks shared by the panel's views: badges, messages, busy indicators,
 * timestamps, a copy button, and hooks for signals and loading.
 *
 * All text from the server or the user is rendered as React text children, which React
 * escapes; nothing here sets HTML.
 */
import { Clipboard } from '@jupyterlab/apputils';
import type { ISignal } from '@lumino/signaling';
import * as React from 'react';

import { describeError } from '../api';
import {
  formatDateTime,
  relativeTime,
  REQUEST_STATUS_LABELS,
  STATUS_HELP,
  STATUS_LABELS
} from '../format';
import type { EnvStatus, RequestStatus } from '../models';

/** Re-render when `signal` fires. */
export function useSignal(signal: ISignal<unknown, unknown>): void {
  const [, setCount] = React.useState(0);
  React.useEffect(() => {
    const bump = (): void => {
      setCount(c => c + 1);
    };
    signal.connect(bump);
    return () => {
      signal.disconnect(bump);
    };
  }, [signal]);
}

/** The state of something loaded asynchronously. */
export interface IAsync<T> {
  readonly value: T | null;
  readonly error: unknown;
  readonly loading: boolean;
  readonly reload: () => void;
}

/**
 * Load `load()` when `key` changes or `reload()` is called. The previous value stays shown
 * while loading again, and answers to outdated calls are dropped.
 */
export function useAsync<T>(load: () => Promise<T>, key: string): IAsync<T> {
  const [value, setValue] = React.useState<T | null>(null);
  const [error, setError] = React.useState<unknown>(null);
  const [loading, setLoading] = React.useState(true);
  const [generation, setGeneration] = React.useState(0);
  const loadRef = React.useRef(load);
  loadRef.current = load;
  React.useEffect(() => {
    let current = true;
    setLoading(true);
    loadRef.current().then(
      result => {
        if (current) {
          setValue(result);
          setError(null);
          setLoading(false);
        }
      },
      (reason: unknown) => {
        if (current) {
          setError(reason);
          setLoading(false);
        }
      }
    );
    return () => {
      current = false;
    };
  }, [key, generation]);
  const reload = React.useCallback(() => {
    setGeneration(g => g + 1);
  }, []);
  return { value, error, loading, reload };
}

const STATUS_GLYPHS: Readonly<Record<EnvStatus, string>> = {
  'in-sync': '✓',
  drifted: '≠',
  unlocked: '○',
  unavailable: '✕'
};

/** An environment status as a badge: a glyph and a word, never colour alone. */
export function StatusBadge(props: { status: EnvStatus }): React.ReactElement {
  const { status } = props;
  return (
    <span
      className={`jp-envshare-Badge jp-envshare-Badge-${status}`}
      title={STATUS_HELP[status]}
      data-status={status}
    >
      <span className="jp-envshare-Badge-glyph" aria-hidden="true">
        {STATUS_GLYPHS[status]}
      </span>
      {STATUS_LABELS[status]}
    </span>
  );
}

/** A request status as a badge. */
export function RequestStatusBadge(props: {
  status: RequestStatus;
}): React.ReactElement {
  return (
    <span
      className={`jp-envshare-Badge jp-envshare-RequestBadge-${props.status}`}
      data-status={props.status}
    >
      {REQUEST_STATUS_LABELS[props.status]}
    </span>
  );
}

/** An error a person can act on, with an optional retry. */
export function ErrorNotice(props: {
  error: unknown;
  what: string;
  onRetry?: () => void;
}): React.ReactElement | null {
  if (props.error === null || props.error === undefined) {
    return null;
  }
  const { message, detail } = describeError(props.error, props.what);
  return (
    <div className="jp-envshare-Error" role="alert">
      <span className="jp-envshare-Error-text">{message}</span>
      {detail && (
        <span className="jp-envshare-Error-detail">Server: {detail}</span>
      )}
      {props.onRetry && (
        <button
          type="button"
          className="jp-envshare-LinkButton"
          onClick={props.onRetry}
        >
          Try again
        </button>
      )}
    </div>
  );
}

/** A spinner and a label, announced politely to screen readers. */
export function Busy(props: { label: string }): React.ReactElement {
  return (
    <span className="jp-envshare-Busy" role="status" aria-live="polite">
      <span className="jp-envshare-Spinner" aria-hidden="true" />
      {props.label}
    </span>
  );
}

/** A timestamp shown relative ("3 days ago") with the exact time as a tooltip. */
export function When(props: {
  iso: string | null;
  prefix?: string;
}): React.ReactElement {
  const { iso, prefix } = props;
  if (!iso) {
    return (
      <span className="jp-envshare-When">{prefix ? `${prefix} —` : '—'}</span>
    );
  }
  return (
    <time
      className="jp-envshare-When"
      dateTime={iso}
      title={formatDateTime(iso)}
    >
      {prefix ? `${prefix} ${relativeTime(iso)}` : relativeTime(iso)}
    </time>
  );
}

/** A titled section of a view, labelled for assistive technology. */
export function Section(props: {
  id: string;
  title: string;
  count?: number | null;
  actions?: React.ReactNode;
  children: React.ReactNode;
}): React.ReactElement {
  const headingId = `${props.id}-heading`;
  return (
    <section className="jp-envshare-Section" aria-labelledby={headingId}>
      <div className="jp-envshare-Section-header">
        <h3 id={headingId} className="jp-envshare-Section-title">
          {props.title}
          {props.count !== undefined && props.count !== null && (
            <span className="jp-envshare-Count">{String(props.count)}</span>
          )}
        </h3>
        {props.actions}
      </div>
      {props.children}
    </section>
  );
}

/** A button that copies `text` and says so. */
export function CopyButton(props: {
  text: string;
  label: string;
}): React.ReactElement {
  const [copied, setCopied] = React.useState<'idle' | 'copied' | 'failed'>(
    'idle'
  );
  const copy = async (): Promise<void> => {
    try {
      await navigator.clipboard.writeText(props.text);
      setCopied('copied');
    } catch {
      // No clipboard API (insecure origin, permissions): the DOM fallback usually works.
      try {
        Clipboard.copyToSystem(props.text);
        setCopied('copied');
      } catch {
        setCopied('failed');
      }
    }
  };
  return (
    <span className="jp-envshare-Copy">
      <button
        type="button"
        className="jp-envshare-Button"
        aria-label={props.label}
        onClick={() => {
          void copy();
        }}
      >
        Copy
      </button>
      <span role="status" className="jp-envshare-Copy-status">
        {copied === 'copied'
          ? 'Copied'
          : copied === 'failed'
            ? 'Select the text to copy it'
            : ''}
      </span>
    </span>
  );
}

/**
 * Submit the input's form on Enter (Shift+Enter is left alone, e.g. a new line in a textarea).
 *
 * Browsers submit a form on Enter by themselves, but not inside a notebook output, where the
 * advice's form lives; doing it here makes every form behave the same.
 */
export function submitOnEnter(
  event: React.KeyboardEvent<HTMLInputElement | HTMLTextAreaElement>
): void {
  if (
    event.key === 'Enter' &&
    !event.shiftKey &&
    !event.nativeEvent.isComposing
  ) {
    event.preventDefault();
    event.currentTarget.form?.requestSubmit();
  }
}

/** Field errors of a form: `{field: message}` from a 400 answer. */
export type FieldErrors = Readonly<Record<string, string>>;

/** The message of one field, shown under its input and referenced by aria-describedby. */
export function FieldError(props: {
  id: string;
  message?: string;
}): React.ReactElement | null {
  if (!props.message) {
    return null;
  }
  return (
    <span id={props.id} className="jp-envshare-FieldError">
      {props.message}
    </span>
  );
}

/** A labelled drop-down choosing one of `options` (the queue's and the usage view's filters). */
export function LabeledSelect<T extends string>(props: {
  id: string;
  label: string;
  value: T;
  options: readonly { value: T; label: string }[];
  onChange: (value: T) => void;
}): React.ReactElement {
  const { id, label, value, options, onChange } = props;
  return (
    <div className="jp-envshare-Filters">
      <label className="jp-envshare-Label" htmlFor={id}>
        {label}
      </label>
      <select
        id={id}
        className="jp-envshare-Select"
        value={value}
        onChange={e => {
          onChange(e.target.value as T);
        }}
      >
        {options.map(o => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
    </div>
  );
}
