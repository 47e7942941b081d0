/**
 * The change history of an environment (`conda-meta/history`), newest first.
 */
import * as React from 'react';

import { formatDateTime } from '../format';
import type { ITransaction } from '../models';

/** A timeline of the environment's transactions. */
export function HistoryView(props: {
  history: readonly ITransaction[];
}): React.ReactElement {
  const entries = [...props.history].reverse();
  if (entries.length === 0) {
    return (
      <p className="jp-envshare-Empty">
        No history recorded (conda-meta/history is empty or missing).
      </p>
    );
  }
  return (
    <ol className="jp-envshare-Timeline" aria-label="Changes, newest first">
      {entries.map((txn, index) => (
        <li
          key={`${txn.date ?? ''}-${String(index)}`}
          className="jp-envshare-Timeline-item"
        >
          <span className="jp-envshare-Timeline-dot" aria-hidden="true" />
          <div className="jp-envshare-Timeline-body">
            <div className="jp-envshare-Timeline-head">
              {txn.date ? (
                <time dateTime={txn.date}>{formatDateTime(txn.date)}</time>
              ) : (
                <span>undated</span>
              )}
              <span className="jp-envshare-Muted">
                {' '}
                {[
                  txn.added.length ? `+${String(txn.added.length)}` : '',
                  txn.removed.length ? `−${String(txn.removed.length)}` : '',
                  [txn.tool, txn.toolVersion].filter(Boolean).join(' ')
                ]
                  .filter(Boolean)
                  .join(' · ')}
              </span>
            </div>
            {txn.command && (
              <code className="jp-envshare-Command">{txn.command}</code>
            )}
            {(txn.added.length > 0 || txn.removed.length > 0) && (
              <details className="jp-envshare-Timeline-details">
                <summary>Packages changed</summary>
                <ul className="jp-envshare-Changes">
                  {txn.removed.map(p => (
                    <li key={`-${p}`} className="jp-envshare-Diff-remove">
                      <span aria-label="removed">−</span> {p}
                    </li>
                  ))}
                  {txn.added.map(p => (
                    <li key={`+${p}`} className="jp-envshare-Diff-add">
                      <span aria-label="added">+</span> {p}
                    </li>
                  ))}
                </ul>
              </details>
            )}
          </div>
        </li>
      ))}
    </ol>
  );
}
