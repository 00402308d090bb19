/**
 * Progress of long work, as data. The library reports events; the CLI decides
 * how to show them (lines in a log, a live view on a terminal, JSON).
 */
export type ProgressEvent =
  | { readonly type: 'step'; readonly message: string }
  | { readonly type: 'warning'; readonly message: string }
  | {
      readonly type: 'image';
      readonly image: string;
      readonly state: 'cached' | 'building' | 'built' | 'failed' | 'pushing' | 'pushed' | 'in registry';
      readonly seconds?: number;
      readonly detail?: string;
    }
  | {
      readonly type: 'unit';
      readonly unit: string;
      readonly state: UnitProgress;
      readonly seconds?: number;
      readonly detail?: string;
    };

export type UnitProgress =
  | 'unchanged'
  | 'creating'
  | 'replacing'
  | 'waiting'
  | 'ready'
  | 'completed'
  | 'failed'
  | 'removed';

export type Reporter = (event: ProgressEvent) => void;

export const silent: Reporter = () => {};
