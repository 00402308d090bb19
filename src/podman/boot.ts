import { existsSync } from 'node:fs';
import { exec } from '../_exec.js';
import type { Reporter } from '../events.js';

/**
 * Podman has no daemon: a container whose process dies is restarted by its conmon (restart
 * policy always), but after a host reboot nothing starts anything. Where systemd runs, Podman's
 * own podman-restart.service starts every container with that policy at boot; podstack enables
 * it. Where it does not (this project's CI hosts), podstack says so.
 */
export const RESTART_UNIT = 'podman-restart.service';

export type BootAction =
  | { readonly kind: 'enable' }
  | { readonly kind: 'enabled' }
  | { readonly kind: 'no-systemd' }
  | { readonly kind: 'no-unit' };

/** What to do, from what the host has: decided without touching it. */
export function bootAction(host: { systemd: boolean; unitExists: boolean; enabled: boolean }): BootAction {
  if (!host.systemd) return { kind: 'no-systemd' };
  if (!host.unitExists) return { kind: 'no-unit' };
  return host.enabled ? { kind: 'enabled' } : { kind: 'enable' };
}

/** systemd is the init system when it has its runtime folder (sd_booted's own test). */
export const systemdRuns = () => existsSync('/run/systemd/system');

/** Makes the cloud start again after a reboot where the host can, and says so where it cannot. */
export async function ensureStartOnBoot(report: Reporter): Promise<BootAction> {
  const systemd = systemdRuns();
  const state = systemd
    ? await exec('systemctl', ['is-enabled', RESTART_UNIT])
    : { stdout: '', exitCode: undefined };
  const action = bootAction({
    systemd,
    unitExists: systemd && !/not-found|No such file/i.test(`${state.stdout}`) && state.stdout.trim() !== '',
    enabled: state.stdout.trim() === 'enabled',
  });
  if (action.kind === 'enable') {
    const r = await exec('systemctl', ['enable', RESTART_UNIT]);
    if (r.exitCode === 0)
      report({ type: 'step', message: `enabled ${RESTART_UNIT}: the cloud starts again after a reboot` });
    else
      report({
        type: 'warning',
        message: `could not enable ${RESTART_UNIT} (${r.stderr.trim()}): after a reboot, run \`podstack up\``,
      });
  } else if (action.kind === 'no-systemd') {
    report({
      type: 'warning',
      message:
        'this host does not run systemd: after a reboot nothing starts the cloud again; run `podstack up` then (containers that crash are restarted)',
    });
  } else if (action.kind === 'no-unit') {
    report({
      type: 'warning',
      message: `systemd has no ${RESTART_UNIT}: after a reboot, run \`podstack up\``,
    });
  }
  return action;
}
