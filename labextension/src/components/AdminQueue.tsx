/**
 * The admin's queue: every request across environments, most demanded first, with approve,
 * reject and done (each with a comment) and the spec patch to copy.
 */
import * as React from 'react';

import { sortByDemand } from '../format';
import type { IInstallRequest, RequestAction, RequestStatus } from '../models';
import type { EnvShareModel } from '../state';
import {
  Busy,
  CopyButton,
  ErrorNotice,
  LabeledSelect,
  useAsync,
  useSignal
} from './common';
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

/**
 * What the last admin action did. Shown above the list, not in the card: the queue reloads
 * right after an action, and the card leaves a view that no longer matches its status.
 */
type Outcome =
  | { kind: 'updated'; request: IInstallRequest; movedTo: QueueFilter | null }
  | { kind: 'failed'; error: unknown; what: string };

/** The request queue across environments (admins). */
export function AdminQueue(props: {
  model: EnvShareModel;
}): React.ReactElement {
  const { model } = props;
  useSignal(model.changed);
  const [filter, setFilter] = React.useState<QueueFilter>('pending');
  const [outcome, setOutcome] = React.useState<Outcome | null>(null);
  // The filter when an action ends, which may differ from the one when it started.
  const filterRef = React.useRef(filter);
  filterRef.current = filter;
  const queueRef = React.useRef<HTMLDivElement>(null);
  const outcomeRef = React.useRef<HTMLDivElement>(null);
  const queue = model.queue;
  const shown = queue.value
    ? sortByDemand(queue.value.filter(r => matches(r, filter)))
    : null;

  const show = (next: QueueFilter): void => {
    setFilter(next);
    setOutcome(null);
  };
  // The button an action was taken with goes away with the old status (and the card may leave
  // the view): the focus moves to the card, or to the outcome, rather than to the page.
  const onUpdated = (request: IInstallRequest, takeFocus: boolean): void => {
    const stays = matches(request, filterRef.current);
    setOutcome({
      kind: 'updated',
      request,
      movedTo: stays ? null : request.status
    });
    if (takeFocus) {
      const card = queueRef.current?.querySelector<HTMLElement>(
        `.jp-envshare-RequestCard[data-request-id="${String(request.id)}"]`
      );
      (stays && card ? card : outcomeRef.current)?.focus();
    }
  };
  const onFailed = (error: unknown, what: string, takeFocus: boolean): void => {
    setOutcome({ kind: 'failed', error, what });
    if (takeFocus) {
      outcomeRef.current?.focus();
    }
  };

  return (
    <div className="jp-envshare-Queue" ref={queueRef}>
      <LabeledSelect
        id="jp-envshare-queue-filter"
        label="Show"
        value={filter}
        options={FILTERS}
        onChange={show}
      />
      <div
        ref={outcomeRef}
        tabIndex={-1}
        className={`jp-envshare-QueueOutcome${outcome ? ' jp-mod-shown' : ''}`}
      >
        {/* Always rendered, so screen readers announce what is put in it. */}
        <div
          role="status"
          aria-live="polite"
          className="jp-envshare-QueueOutcome-status"
        >
          {outcome?.kind === 'updated' && (
            <p className="jp-envshare-QueueOutcome-text">
              <span
                className="jp-envshare-QueueOutcome-glyph"
                aria-hidden="true"
              >
                ✓
              </span>
              {outcomeText(outcome.request, outcome.movedTo)}
            </p>
          )}
        </div>
        {outcome?.kind === 'updated' && outcome.movedTo !== null && (
          <button
            type="button"
            className="jp-envshare-LinkButton"
            onClick={() => {
              show(outcome.request.status);
            }}
          >
            Show {filterLabel(outcome.request.status).toLowerCase()} requests
          </button>
        )}
        {outcome?.kind === 'failed' && (
          <ErrorNotice error={outcome.error} what={outcome.what} />
        )}
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
          <AdminActions
            model={model}
            request={request}
            onStart={() => {
              setOutcome(null);
            }}
            onUpdated={onUpdated}
            onFailed={onFailed}
          />
        </RequestCard>
      ))}
    </div>
  );
}

function filterLabel(filter: QueueFilter): string {
  return FILTERS.find(f => f.value === filter)?.label ?? filter;
}

/** "#12 is now rejected. It is listed under Rejected." */
function outcomeText(
  request: IInstallRequest,
  movedTo: QueueFilter | null
): string {
  const text = `#${String(request.id)} is now ${request.status}.`;
  return movedTo === null
    ? text
    : `${text} It is listed under ${filterLabel(movedTo)}.`;
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

/** What an action was doing, for its error message ("… while rejecting request #12."). */
function actionDoing(action: RequestAction, id: number): string {
  const request = `request #${String(id)}`;
  switch (action) {
    case 'approve':
      return `approving ${request}`;
    case 'reject':
      return `rejecting ${request}`;
    case 'done':
      return `marking ${request} done`;
    case 'support':
      return `supporting ${request}`;
    case 'withdraw':
      return `withdrawing ${request}`;
  }
}

/**
 * Approve / reject / done with a comment, and the spec patch. The outcome is reported to the
 * queue, which shows it even when the card leaves the view.
 */
function AdminActions(props: {
  model: EnvShareModel;
  request: IInstallRequest;
  onStart: () => void;
  /** `takeFocus`: the focus was on this card's actions and has not gone elsewhere since. */
  onUpdated: (request: IInstallRequest, takeFocus: boolean) => void;
  onFailed: (error: unknown, what: string, takeFocus: boolean) => void;
}): React.ReactElement {
  const { model, request } = props;
  const [comment, setComment] = React.useState('');
  const [busy, setBusy] = React.useState<RequestAction | null>(null);
  const actions = ACTIONS[request.status];
  const commentId = `jp-envshare-comment-${String(request.id)}`;

  const rootRef = React.useRef<HTMLDivElement>(null);

  const act = async (action: RequestAction): Promise<void> => {
    const focused = rootRef.current?.contains(document.activeElement) ?? false;
    // A disabled button loses the focus to the page: that is not going elsewhere.
    const takeFocus = (): boolean =>
      focused &&
      (document.activeElement === null ||
        document.activeElement === document.body ||
        (rootRef.current?.contains(document.activeElement) ?? false));
    setBusy(action);
    props.onStart();
    try {
      const updated = await model.act(request.id, action, comment.trim());
      setComment('');
      props.onUpdated(updated, takeFocus());
    } catch (reason) {
      props.onFailed(reason, actionDoing(action, request.id), takeFocus());
    } finally {
      setBusy(null);
    }
  };

  return (
    <div className="jp-envshare-AdminActions" ref={rootRef}>
      {actions.length > 0 && (
        <>
          <label className="jp-envshare-Label" htmlFor={commentId}>
            Comment for the requester (optional)
          </label>
          {/* Enter is a new line here: a decision takes a click on its own button. */}
          <textarea
            id={commentId}
            className="jp-envshare-Input jp-envshare-Textarea"
            rows={2}
            maxLength={4000}
            value={comment}
            onChange={e => {
              setComment(e.target.value);
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
