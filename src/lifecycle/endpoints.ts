import { ANNOTATION } from '../plan/objects.js';
import type { Plan } from '../plan/unit.js';

export interface Endpoint {
  readonly service: string;
  readonly name: string;
  readonly url: string;
}

/** The endpoints clients outside the cloud use: every published Service port. */
export function publishedEndpoints(plan: Plan): Endpoint[] {
  const out: Endpoint[] = [];
  for (const unit of plan.units) {
    for (const o of unit.objects) {
      if (o.kind !== 'Service') continue;
      const spec = o.metadata.annotations?.[ANNOTATION.publish];
      for (const entry of spec ? spec.split(',') : []) {
        const [name, target] = entry.split('=') as [string, string];
        out.push({ service: unit.service, name: `${o.metadata.name}/${name}`, url: `http://${target}` });
      }
    }
  }
  return out;
}
