/**
 * The rendermime renderer of `application/vnd.envshare.advice+json`.
 */
import type { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { ReactWidget } from '@jupyterlab/ui-components';
import * as React from 'react';

import { Advice } from '../components/Advice';
import type { IAdvice } from '../models';
import { parseAdvice } from '../models';
import type { EnvShareModel } from '../state';

/** The MIME type of the install guard's advice. */
export const ADVICE_MIME_TYPE = 'application/vnd.envshare.advice+json';

/** Renders the guard's advice with a "Request this" button. */
export class AdviceRenderer
  extends ReactWidget
  implements IRenderMime.IRenderer
{
  constructor(
    private readonly _model: EnvShareModel,
    private readonly _openForm: (env: string) => void
  ) {
    super();
    this.addClass('jp-envshare-AdviceWidget');
  }

  renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    this._advice = parseAdvice(model.data[ADVICE_MIME_TYPE]);
    // ReactWidget renders on update; wait for it so the output area measures real content.
    return new Promise(resolve => {
      this._rendered = resolve;
      this.update();
    });
  }

  protected render(): React.ReactElement | null {
    const rendered = this._rendered;
    this._rendered = null;
    if (rendered) {
      window.requestAnimationFrame(() => {
        rendered();
      });
    }
    return this._advice ? (
      <Advice
        advice={this._advice}
        model={this._model}
        onOpenForm={this._openForm}
      />
    ) : null;
  }

  private _advice: IAdvice | null = null;
  private _rendered: (() => void) | null = null;
}

/** The rendermime factory of the advice (safe: it runs nothing until the user submits). */
export function adviceRendererFactory(
  model: EnvShareModel,
  openForm: (env: string) => void
): IRenderMime.IRendererFactory {
  return {
    safe: true,
    mimeTypes: [ADVICE_MIME_TYPE],
    // Ahead of Markdown and text, which the guard sends as fallbacks for other frontends.
    defaultRank: 40,
    createRenderer: () => new AdviceRenderer(model, openForm)
  };
}
