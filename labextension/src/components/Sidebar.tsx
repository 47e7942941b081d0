/**
 * The "Shared environments" sidebar: environments, requests and (for admins) the queue and
 * usage, as keyboard-navigable tabs.
 */
import { refreshIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import type { EnvShareModel } from '../state';
import { AdminQueue } from './AdminQueue';
import { Busy, ErrorNotice, useSignal, When } from './common';
import { EnvList } from './EnvList';
import { RequestForm } from './RequestForm';
import { MyRequests, OpenRequests } from './RequestLists';
import { UsageOverview } from './UsageOverview';

/** The sidebar's tabs. */
export type SidebarTab = 'envs' | 'requests' | 'queue' | 'usage';

const TAB_LABELS: Readonly<Record<SidebarTab, string>> = {
  envs: 'Environments',
  requests: 'Requests',
  queue: 'Queue',
  usage: 'Usage'
};

/** The sidebar's content. */
export function Sidebar(props: {
  model: EnvShareModel;
  onOpenEnv: (env: string) => void;
}): React.ReactElement {
  const { model } = props;
  useSignal(model.changed);
  const [tab, setTab] = React.useState<SidebarTab>('envs');
  const [formEnv, setFormEnv] = React.useState('');
  const tabRefs = React.useRef<
    Partial<Record<SidebarTab, HTMLButtonElement | null>>
  >({});

  React.useEffect(() => {
    const show = (_: unknown, env: string): void => {
      setFormEnv(env);
      setTab('requests');
      window.requestAnimationFrame(() => {
        document
          .querySelector<HTMLInputElement>(
            '#jp-envshare-tabpanel-requests .jp-envshare-SpecRow input'
          )
          ?.focus();
      });
    };
    model.requestFormAsked.connect(show);
    return () => {
      model.requestFormAsked.disconnect(show);
    };
  }, [model]);

  const tabs: SidebarTab[] = model.isAdmin
    ? ['envs', 'requests', 'queue', 'usage']
    : ['envs', 'requests'];
  const current = tabs.includes(tab) ? tab : 'envs';
  const openQueue =
    model.queue.value?.filter(r => r.status === 'open').length ?? 0;
  const me = model.whoami.value;

  const onTabKey = (event: React.KeyboardEvent): void => {
    // WAI-ARIA tabs: arrows move between tabs, Home/End jump to the ends.
    const index = tabs.indexOf(current);
    const next =
      event.key === 'ArrowRight'
        ? tabs[(index + 1) % tabs.length]
        : event.key === 'ArrowLeft'
          ? tabs[(index - 1 + tabs.length) % tabs.length]
          : event.key === 'Home'
            ? tabs[0]
            : event.key === 'End'
              ? tabs[tabs.length - 1]
              : undefined;
    if (next) {
      event.preventDefault();
      setTab(next);
      tabRefs.current[next]?.focus();
    }
  };

  return (
    <div className="jp-envshare-Sidebar">
      <header className="jp-envshare-Sidebar-header">
        <h2 className="jp-envshare-Sidebar-title">Shared environments</h2>
        <button
          type="button"
          className="jp-envshare-IconButton"
          aria-label="Refresh shared environments"
          title="Refresh (also happens every 30 seconds)"
          disabled={model.refreshing}
          onClick={() => {
            void model.refresh();
          }}
        >
          <refreshIcon.react tag="span" elementSize="normal" />
        </button>
      </header>
      <p className="jp-envshare-Sidebar-status">
        {me && (
          <span>
            Signed in as <strong>{me.name}</strong>
            {me.isAdmin ? ' (admin)' : ''}
          </span>
        )}
        {model.refreshing ? (
          <Busy label="Refreshing…" />
        ) : (
          model.refreshedAt && (
            <span className="jp-envshare-Muted">
              {' '}
              · updated <When iso={model.refreshedAt.toISOString()} />
            </span>
          )
        )}
      </p>
      <ErrorNotice
        error={model.whoami.error}
        what="asking the server who you are"
      />
      <div
        className={`jp-envshare-Tabs${tabs.length > 2 ? ' jp-mod-compact' : ''}`}
        role="tablist"
        aria-label="Shared environments views"
      >
        {tabs.map(t => (
          <button
            key={t}
            ref={el => {
              tabRefs.current[t] = el;
            }}
            type="button"
            role="tab"
            id={`jp-envshare-tab-${t}`}
            aria-selected={current === t}
            aria-controls={`jp-envshare-tabpanel-${t}`}
            tabIndex={current === t ? 0 : -1}
            className={`jp-envshare-Tab${current === t ? ' jp-mod-current' : ''}`}
            onClick={() => {
              setTab(t);
            }}
            onKeyDown={onTabKey}
          >
            {TAB_LABELS[t]}
            {t === 'queue' && openQueue > 0 && (
              <span
                className="jp-envshare-Count"
                aria-label={`${String(openQueue)} open`}
              >
                {String(openQueue)}
              </span>
            )}
          </button>
        ))}
      </div>
      <div
        className="jp-envshare-TabPanel"
        role="tabpanel"
        id={`jp-envshare-tabpanel-${current}`}
        aria-labelledby={`jp-envshare-tab-${current}`}
      >
        {current === 'envs' && (
          <EnvList model={model} onOpen={props.onOpenEnv} />
        )}
        {current === 'requests' && (
          <>
            <h3 className="jp-envshare-Subheading">Ask for a package</h3>
            <RequestForm
              model={model}
              env={formEnv}
              onEnvChange={setFormEnv}
              idPrefix="jp-envshare-form"
            />
            <OpenRequests model={model} env={formEnv} headingLevel="h3" />
            <h3 className="jp-envshare-Subheading">My requests</h3>
            <MyRequests model={model} />
          </>
        )}
        {current === 'queue' && <AdminQueue model={model} />}
        {current === 'usage' && (
          <UsageOverview model={model} onOpen={props.onOpenEnv} />
        )}
      </div>
    </div>
  );
}
