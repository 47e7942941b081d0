/**
 * Lists of requests: the caller's own, and the open ones on one environment (to support
 * instead of filing a duplicate).
 */
import * as React from 'react';

import type { IRequestFilter } from '../api';
import { sortByDemand } from '../format';
import type { IInstallRequest } from '../models';
import type { EnvShareModel } from '../state';
import type { IAsync } from './common';
import { Busy, ErrorNotice, useAsync, useSignal } from './common';
import { RequestCard, SupportAction, WithdrawAction } from './RequestCard';

/**
 * Requests matching `filter`, loaded again when any view changes a request and on every
 * refresh of the shared state.
 */
export function useRequests(
  model: EnvShareModel,
  filter: IRequestFilter
): IAsync<IInstallRequest[]> {
  const [changes, setChanges] = React.useState(0);
  React.useEffect(() => {
    const bump = (): void => {
      setChanges(c => c + 1);
    };
    model.requestsChanged.connect(bump);
    return () => {
      model.requestsChanged.disconnect(bump);
    };
  }, [model]);
  useSignal(model.changed);
  const refreshed = model.refreshedAt?.getTime() ?? 0;
  const key = JSON.stringify([filter, changes, refreshed]);
  return useAsync(() => model.client.listRequests(filter), key);
}

/** The open requests on one environment, most demanded first, each with "+1". */
export function OpenRequests(props: {
  model: EnvShareModel;
  env: string;
  headingLevel?: 'h3' | 'h4';
}): React.ReactElement | null {
  const { model, env } = props;
  const requests = useRequests(model, { env, status: 'open' });
  const Heading = props.headingLevel ?? 'h4';
  if (!env) {
    return null;
  }
  const open = requests.value ? sortByDemand(requests.value) : [];
  return (
    <div className="jp-envshare-OpenRequests" aria-busy={requests.loading}>
      <Heading className="jp-envshare-Subheading">
        Open requests on {env}
      </Heading>
      <ErrorNotice
        error={requests.error}
        what="loading the open requests"
        onRetry={requests.reload}
      />
      {requests.value === null && requests.error === null && (
        <Busy label="Loading requests…" />
      )}
      {requests.value !== null && open.length === 0 && (
        <p className="jp-envshare-Empty">No open requests on {env}.</p>
      )}
      {open.map(request => (
        <RequestCard key={request.id} request={request} showEnv={false}>
          <SupportAction model={model} request={request} />
        </RequestCard>
      ))}
    </div>
  );
}

/** The caller's requests, newest first, with status, admin comments and withdraw. */
export function MyRequests(props: {
  model: EnvShareModel;
}): React.ReactElement {
  const { model } = props;
  useSignal(model.changed);
  const mine = model.myRequests;
  const requests = mine.value
    ? [...mine.value].sort(
        (a, b) =>
          (b.updatedAt ?? '').localeCompare(a.updatedAt ?? '') || b.id - a.id
      )
    : null;
  return (
    <div className="jp-envshare-MyRequests">
      <ErrorNotice
        error={mine.error}
        what="loading your requests"
        onRetry={() => {
          void model.refresh();
        }}
      />
      {requests === null && mine.error === null && (
        <Busy label="Loading your requests…" />
      )}
      {requests !== null && requests.length === 0 && (
        <p className="jp-envshare-Empty">
          You have not requested anything yet. Use the form above, or the
          “Request this” button when an install is stopped in a notebook.
        </p>
      )}
      {requests?.map(request => (
        <RequestCard key={request.id} request={request}>
          <WithdrawAction model={model} request={request} />
        </RequestCard>
      ))}
    </div>
  );
}
