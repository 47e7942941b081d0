/**
 * The icon of the "Shared environments" sidebar: stacked environments with a lock, drawn in
 * the theme's icon colour (`jp-icon3`), so it follows light, dark and high-contrast themes.
 */
import { LabIcon } from '@jupyterlab/ui-components';

const SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M12 2 3 6.5l9 4.5 9-4.5L12 2zm0 2.24 4.97 2.26L12 8.76 7.03 6.5 12 4.24z"/>
    <path d="M3 11.5 12 16l3-1.5v-2.24L12 13.76 5.24 10.38 3 11.5z"/>
    <path d="M3 16.5 12 21l3-1.5v-2.24L12 18.76l-6.76-3.38L3 16.5z"/>
    <path d="M21 14h-.5v-1.5a2.5 2.5 0 0 0-5 0V14H15a1 1 0 0 0-1 1v5a1 1 0 0 0 1 1h6a1 1 0 0 0 1-1v-5a1 1 0 0 0-1-1zm-4-1.5a1 1 0 0 1 2 0V14h-2v-1.5z"/>
  </g>
</svg>`;

/** The sidebar's icon. */
export const envshareIcon = new LabIcon({
  name: 'jupyter-envshare:envs',
  svgstr: SVG
});
