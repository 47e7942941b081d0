/**
 * An environment's detail in the main area.
 */
import { ReactWidget } from '@jupyterlab/ui-components';
import type { Message } from '@lumino/messaging';
import * as React from 'react';

import { EnvDetail } from '../components/EnvDetail';
import type { IKernelLauncher } from '../components/Kernels';
import { envshareIcon } from '../icons';
import type { EnvShareModel } from '../state';

/** The id of the detail widget of `env` (one per environment). */
export function envDetailId(env: string): string {
  return `jp-envshare-env-${encodeURIComponent(env)}`;
}

/** One environment in detail: kernels, provenance, drift, packages, history, requests. */
export class EnvDetailWidget extends ReactWidget {
  constructor(
    private readonly _model: EnvShareModel,
    readonly env: string,
    private readonly _launcher: IKernelLauncher
  ) {
    super();
    this.id = envDetailId(env);
    this.addClass('jp-envshare-DetailWidget');
    const summary = _model.env(env);
    this.title.label = summary?.displayName ?? env;
    // The dock panel labels the widget with its tab: say what the tab is about.
    this.title.caption = `Shared environment ${env}`;
    this.title.icon = envshareIcon;
    this.title.closable = true;
  }

  protected render(): React.ReactElement {
    return (
      <EnvDetail
        model={this._model}
        name={this.env}
        launcher={this._launcher}
      />
    );
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
