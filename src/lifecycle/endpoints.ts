import { isWorkload } from '../plan/objects.js';
import type { Plan } from '../plan/unit.js';

export interface Endpoint {
  readonly service: string;
  readonly name: string;
  readonly url: string;
}

/**
 * The endpoints clients outside the cloud use: every container port with a
 * hostPort, on the address the cloud file gives clients (which may differ from
 * the address bound, behind NAT or a load balancer).
 */
export function publishedEndpoints(plan: Plan, address: string): Endpoint[] {
  const host = address.includes(':') ? `[${address}]` : address;
  const out: Endpoint[] = [];
  for (const unit of plan.units) {
    for (const o of unit.objects) {
      if (!isWorkload(o)) continue;
      for (const c of o.spec?.template.spec?.containers ?? []) {
        for (const p of c.ports ?? []) {
          if (p.hostPort === undefined) continue;
          out.push({
            service: unit.service,
            name: `${unit.name}/${p.name ?? p.containerPort}`,
            url: `http://${host}:${p.hostPort}`,
          });
        }
      }
    }
  }
  return out;
}
