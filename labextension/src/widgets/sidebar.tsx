/**
 * The "Shared environments" sidebar widget.
 */
import { ReactWidget } from '@jupyterlab/ui-components';
import type { Message } from '@lumino/messaging';
import * as React from 'react';

import { Sidebar } from '../components/Sidebar';
import { envshareIcon } from '../icons';
import type { EnvShareModel } from '../state';

/** The sidebar: environments, requests and the admin queue. */
export class EnvShareSidebar extends ReactWidget {
  constructor(
    private readonly _model: EnvShareModel,
    private readonly _openEnv: (env: string) => void
  ) {
    super();
    this.id = 'jp-envshare-sidebar';
    this.addClass('jp-envshare-SidebarWidget');
    this.title.icon = envshareIcon;
    this.title.caption = 'Shared environments';
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', 'Shared environments');
  }

  protected render(): React.ReactElement {
    return <Sidebar model={this._model} onOpenEnv={this._openEnv} />;
  }

  protected override onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._model.setVisible(this.id, true);
  }

  protected override onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this._model.setVisible(this.id, false);
  }

  override dispose(): void {
    this._model.setVisible(this.id, false);
    super.dispose();
  }
}
