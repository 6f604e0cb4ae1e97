/**
 * The slice of Grafana's dashboard JSON model (schemaVersion 39) the edgectl dashboard uses, as
 * plain types and small constructors. Not `@grafana/grafana-foundation-sdk`: it is not a dependency
 * (adding one means a private node_modules copy for every helper) and the few panel kinds used here
 * (time series, stat, table, row) have had a stable JSON model for years; Grafana imports this file
 * as is. Panels are laid out on Grafana's 24-column grid by `layout`.
 */

export interface Target {
  refId: string;
  expr: string;
  legendFormat?: string;
  instant?: boolean;
  format?: 'time_series' | 'table';
}

export interface Panel {
  id: number;
  type: 'timeseries' | 'stat' | 'table' | 'row';
  title: string;
  description?: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: 'prometheus'; uid: string };
  targets?: Target[];
  fieldConfig?: { defaults: Record<string, unknown>; overrides: unknown[] };
  options?: Record<string, unknown>;
  collapsed?: boolean;
  panels?: Panel[];
}

export interface Variable {
  name: string;
  label: string;
  type: 'query' | 'custom' | 'datasource';
  query: string | { query: string; refId: string };
  datasource?: { type: 'prometheus'; uid: string };
  multi?: boolean;
  includeAll?: boolean;
  allValue?: string;
  current?: { text: string; value: string };
  options?: { text: string; value: string; selected: boolean }[];
  refresh?: number;
}

export interface Dashboard {
  uid: string;
  title: string;
  description: string;
  tags: string[];
  schemaVersion: number;
  version: number;
  editable: boolean;
  time: { from: string; to: string };
  refresh: string;
  templating: { list: Variable[] };
  annotations: { list: unknown[] };
  panels: Panel[];
}

export const DS = { type: 'prometheus' as const, uid: '${datasource}' };

export type PanelSpec = Omit<Panel, 'id' | 'gridPos' | 'datasource'> & { w?: number; h?: number };

/** Places panels left to right, wrapping at 24 columns; a row starts a new line. */
export function layout(specs: PanelSpec[]): Panel[] {
  let x = 0;
  let y = 0;
  let rowH = 0;
  return specs.map((s, i) => {
    const { w: width, h: height, ...rest } = s;
    const w = s.type === 'row' ? 24 : (width ?? 12);
    const h = s.type === 'row' ? 1 : (height ?? 8);
    if (x + w > 24 || s.type === 'row') {
      y += rowH;
      x = 0;
      rowH = 0;
    }
    const panel: Panel = { ...rest, id: i + 1, gridPos: { x, y, w, h } };
    if (s.type !== 'row') panel.datasource = DS;
    x += w;
    rowH = Math.max(rowH, h);
    if (s.type === 'row') {
      y += h;
      x = 0;
      rowH = 0;
    }
    return panel;
  });
}

export function targets(...exprs: [expr: string, legend: string][]): Target[] {
  return exprs.map(([expr, legendFormat], i) => ({ refId: String.fromCharCode(65 + i), expr, legendFormat }));
}

export function unit(u: string, extra: Record<string, unknown> = {}): Panel['fieldConfig'] {
  return { defaults: { unit: u, ...extra }, overrides: [] };
}
