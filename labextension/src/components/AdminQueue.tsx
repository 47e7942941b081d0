/**
 * The admin's queue: every request across environments, most demanded first, with approve,
 * reject and done (each with a comment) and the spec patch to copy.
 */
import * as React from 'react';

import { sortByDemand } from '../format';
import type { IInstallRequest, RequestAction, RequestStatus } from '../models';
import type { EnvShareModel } from '../state';
import { Busy, CopyButton, ErrorNotice, useAsync, useSignal } from './common';
import { RequestCard } from './RequestCard';

type QueueFilter = 'pending' | RequestStatus | 'all';

const FILTERS: readonly { value: QueueFilter; label: string }[] = [
  { value: 'pending', label: 'Open or approved' },
  { value: 'open', label: 'Open' },
  { value: 'approved', label: 'Approved' },
  { value: 'done', label: 'Done' },
  { value: 'rejected', label: 'Rejected' },
  { value: 'withdrawn', label: 'Withdrawn' },
  { value: 'all', label: 'All' }
];

function matches(request: IInstallRequest, filter: QueueFilter): boolean {
  if (filter === 'all') {
    return true;
  }
  if (filter === 'pending') {
    return request.status === 'open' || request.status === 'approved';
  }
  return request.status === filter;
}

/** The request queue across environments (admins). */
export function AdminQueue(props: {
  model: EnvShareModel;
}): React.ReactElement {
  const { model } = props;
  useSignal(model.changed);
  const [filter, setFilter] = React.useState<QueueFilter>('pending');
  const queue = model.queue;
  const shown = queue.value
    ? sortByDemand(queue.value.filter(r => matches(r, filter)))
    : null;
  return (
    <div className="jp-envshare-Queue">
      <div className="jp-envshare-Filters">
        <label className="jp-envshare-Label" htmlFor="jp-envshare-queue-filter">
          Show
        </label>
        <select
          id="jp-envshare-queue-filter"
          className="jp-envshare-Select"
          value={filter}
          onChange={e => {
            setFilter(e.target.value as QueueFilter);
          }}
        >
          {FILTERS.map(f => (
            <option key={f.value} value={f.value}>
              {f.label}
            </option>
          ))}
        </select>
      </div>
      <ErrorNotice
        error={queue.error}
        what="loading the request queue"
        onRetry={() => {
          void model.refresh();
        }}
      />
      {shown === null && queue.error === null && (
        <Busy label="Loading the queue…" />
      )}
      {shown !== null && (
        <p className="jp-envshare-Summary" aria-live="polite">
          {shown.length === 1
            ? '1 request'
            : `${String(shown.length)} requests`}
          , most demanded first
        </p>
      )}
      {shown?.map(request => (
        <RequestCard key={request.id} request={request}>
          <AdminActions model={model} request={request} />
        </RequestCard>
      ))}
    </div>
  );
}

const ACTIONS: Readonly<Record<RequestStatus, readonly RequestAction[]>> = {
  open: ['approve', 'reject'],
  approved: ['done', 'reject'],
  rejected: [],
  done: [],
  withdrawn: []
};

const ACTION_LABELS: Readonly<Record<RequestAction, string>> = {
  approve: 'Approve',
  reject: 'Reject',
  done: 'Mark done',
  support: '+1',
  withdraw: 'Withdraw'
};

/** Approve / reject / done with a comment, and the spec patch. */
function AdminActions(props: {
  model: EnvShareModel;
  request: IInstallRequest;
}): React.ReactElement {
  const { model, request } = props;
  const [comment, setComment] = React.useState('');
  const [busy, setBusy] = React.useState<RequestAction | null>(null);
  const [error, setError] = React.useState<unknown>(null);
  const [done, setDone] = React.useState('');
  const actions = ACTIONS[request.status];
  const commentId = `jp-envshare-comment-${String(request.id)}`;

  const act = async (action: RequestAction): Promise<void> => {
    setBusy(action);
    setError(null);
    setDone('');
    try {
      const updated = await model.act(request.id, action, comment.trim());
      setComment('');
      setDone(`#${String(updated.id)} is now ${updated.status}.`);
    } catch (reason) {
      setError(reason);
    } finally {
      setBusy(null);
    }
  };

  return (
    <div className="jp-envshare-AdminActions">
      {actions.length > 0 && (
        <>
          <label className="jp-envshare-Label" htmlFor={commentId}>
            Comment for the requester (optional)
          </label>
          <textarea
            id={commentId}
            className="jp-envshare-Input jp-envshare-Textarea"
            rows={2}
            maxLength={4000}
            value={comment}
            onChange={e => {
              setComment(e.target.value);
            }}
            onKeyDown={e => {
              // Enter approves (or marks done): the first action; Shift+Enter is a new line.
              const first = actions[0];
              if (e.key === 'Enter' && !e.shiftKey && first && busy === null) {
                e.preventDefault();
                void act(first);
              }
            }}
          />
          <div className="jp-envshare-Actions">
            {actions.map((action, index) => (
              <button
                key={action}
                type="button"
                className={`jp-envshare-Button ${index === 0 ? 'jp-mod-accept' : action === 'reject' ? 'jp-mod-reject' : ''}`}
                disabled={busy !== null}
                aria-label={`${ACTION_LABELS[action]} request #${String(request.id)}`}
                onClick={() => {
                  void act(action);
                }}
              >
                {busy === action
                  ? `${ACTION_LABELS[action]}…`
                  : ACTION_LABELS[action]}
              </button>
            ))}
          </div>
        </>
      )}
      <div role="status" aria-live="polite" className="jp-envshare-Outcome">
        {done && <p className="jp-envshare-Success">{done}</p>}
      </div>
      <ErrorNotice error={error} what="updating the request" />
      {request.status !== 'rejected' && request.status !== 'withdrawn' && (
        <PatchView model={model} request={request} />
      )}
    </div>
  );
}

/** The spec patch of a request, loaded when opened, in a <pre> with a Copy button. */
function PatchView(props: {
  model: EnvShareModel;
  request: IInstallRequest;
}): React.ReactElement {
  const [open, setOpen] = React.useState(false);
  return (
    <details
      className="jp-envshare-Patch"
      onToggle={e => {
        setOpen(e.currentTarget.open);
      }}
    >
      <summary>Spec patch (environment.yml)</summary>
      {open && <PatchBody model={props.model} request={props.request} />}
    </details>
  );
}

function PatchBody(props: {
  model: EnvShareModel;
  request: IInstallRequest;
}): React.ReactElement {
  const { model, request } = props;
  const patch = useAsync(
    () => model.client.getPatch(request.id),
    `${String(request.id)}:${request.specs.join(' ')}`
  );
  if (patch.value === null) {
    return (
      <>
        {patch.error === null && <Busy label="Loading the patch…" />}
        <ErrorNotice
          error={patch.error}
          what="loading the spec patch"
          onRetry={patch.reload}
        />
      </>
    );
  }
  return (
    <div className="jp-envshare-Patch-body">
      <div className="jp-envshare-Patch-header">
        <code className="jp-envshare-Path" title={patch.value.specPath}>
          {patch.value.specPath}
        </code>
        <CopyButton
          text={patch.value.diff}
          label={`Copy the spec patch of request #${String(request.id)}`}
        />
      </div>
      <pre
        className="jp-envshare-Diff"
        tabIndex={0}
        aria-label={`Spec patch of request #${String(request.id)}`}
      >
        {patch.value.diff
          ? diffLines(patch.value.diff)
          : 'The spec already has these packages.'}
      </pre>
    </div>
  );
}

/** Diff lines as spans, so additions and removals can be told apart (also by their +/-). */
function diffLines(diff: string): React.ReactNode[] {
  return diff
    .replace(/\n$/, '')
    .split('\n')
    .map((line, index) => {
      const kind =
        line.startsWith('+++') || line.startsWith('---')
          ? 'file'
          : line.startsWith('@@')
            ? 'hunk'
            : line.startsWith('+')
              ? 'add'
              : line.startsWith('-')
                ? 'remove'
                : 'context';
      return (
        <span key={index} className={`jp-envshare-Diff-${kind}`}>
          {line}
          {'\n'}
        </span>
      );
    });
}
