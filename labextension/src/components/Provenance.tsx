/**
 * Where an environment came from: spec, lock, git commit, builder, build time, channels, and
 * whether the servers sharing it see it alike.
 */
import * as React from 'react';

import { channelLabel, commitUrl, formatDateTime, shortHash } from '../format';
import type { IEnvDetail } from '../models';
import { When } from './common';

function Row(props: {
  term: string;
  children: React.ReactNode;
}): React.ReactElement {
  return (
    <>
      <dt>{props.term}</dt>
      <dd>{props.children}</dd>
    </>
  );
}

function Missing(props: { text: string }): React.ReactElement {
  return <span className="jp-envshare-Muted">{props.text}</span>;
}

/** The provenance of an environment as a definition list. */
export function ProvenanceView(props: {
  detail: IEnvDetail;
}): React.ReactElement {
  const { detail } = props;
  const { spec, lock, git, builder, builtAt } = detail.provenance;
  const link = commitUrl(git);
  return (
    <dl className="jp-envshare-Facts">
      <Row term="Prefix">
        <code className="jp-envshare-Path">{detail.prefix}</code>
      </Row>
      <Row term="Spec">
        {spec ? (
          <>
            <code
              className="jp-envshare-Path"
              title={spec.sha256 && `sha256 ${spec.sha256}`}
            >
              {spec.path || spec.name || 'recorded'}
            </code>
            {spec.dependencies.length > 0 && (
              <span className="jp-envshare-Specs">
                {spec.dependencies.map(d => (
                  <code key={d} className="jp-envshare-Spec">
                    {d}
                  </code>
                ))}
              </span>
            )}
          </>
        ) : (
          <Missing text="not recorded (admins: jupyter envshare stamp ENV --spec FILE)" />
        )}
      </Row>
      <Row term="Lock">
        {lock ? (
          <>
            <code className="jp-envshare-Path">{lock.path}</code>{' '}
            <span className="jp-envshare-Muted">
              {[
                lock.format,
                lock.platform,
                lock.packageCount === null
                  ? ''
                  : `${String(lock.packageCount)} packages`,
                lock.sha256 ? `sha256 ${shortHash(lock.sha256)}` : ''
              ]
                .filter(Boolean)
                .join(' · ')}
            </span>
            {lock.problems.map(p => (
              <span
                key={p.kind + p.message}
                className="jp-envshare-Warning jp-envshare-Block"
              >
                {p.message}
              </span>
            ))}
          </>
        ) : (
          <Missing text="none: drift cannot be checked (admins: jupyter envshare stamp ENV --lock FILE)" />
        )}
      </Row>
      <Row term="Git commit">
        {git && git.sha ? (
          <>
            {link ? (
              <a
                href={link}
                target="_blank"
                rel="noopener noreferrer"
                className="jp-envshare-Link"
                title={`Open commit ${git.sha} of ${git.remoteUrl}`}
              >
                <code>{git.sha.slice(0, 10)}</code>
              </a>
            ) : (
              <code title={git.sha}>{git.sha.slice(0, 10)}</code>
            )}{' '}
            {git.remoteUrl && (
              <span className="jp-envshare-Muted">{git.remoteUrl}</span>
            )}
          </>
        ) : (
          <Missing text="not recorded" />
        )}
      </Row>
      <Row term="Built by">
        {builder && (builder.user || builder.tool) ? (
          <span>
            {[
              builder.user && builder.host
                ? `${builder.user}@${builder.host}`
                : builder.user || builder.host,
              [builder.tool, builder.toolVersion].filter(Boolean).join(' ')
            ]
              .filter(Boolean)
              .join(' with ')}
          </span>
        ) : (
          <Missing text="unknown" />
        )}
      </Row>
      <Row term="Built at">
        {builtAt ? (
          <>
            {formatDateTime(builtAt)} (<When iso={builtAt} />)
          </>
        ) : (
          <Missing text="unknown" />
        )}
      </Row>
      <Row term="Channels">
        {detail.channels.length ? (
          <ul className="jp-envshare-Inline">
            {detail.channels.map(c => (
              <li key={c} title={c}>
                <code>{channelLabel(c)}</code>
              </li>
            ))}
          </ul>
        ) : (
          <Missing text="unknown" />
        )}
      </Row>
      {(detail.owner || detail.contact) && (
        <Row term="Managed by">{detail.contact || detail.owner}</Row>
      )}
      {detail.nodes.agree === false && detail.nodes.servers && (
        <Row term="Servers">
          <span className="jp-envshare-Warning">
            Servers see this environment differently:{' '}
            {detail.nodes.servers
              .map(
                s =>
                  `${s.host} (${s.packageCount === null ? '?' : String(s.packageCount)} packages)`
              )
              .join(', ')}
          </span>
        </Row>
      )}
    </dl>
  );
}
