import type { ProgressEvent, Reporter } from '../events.js';

/**
 * Progress as timestamped lines on stderr: readable live on a terminal and
 * just as readable in a CI log, and stdout stays free for data (-o json).
 */
export function lineReporter(stream: NodeJS.WritableStream = process.stderr, start = Date.now()): Reporter {
  return (e: ProgressEvent) => {
    const t = `[${((Date.now() - start) / 1000).toFixed(1).padStart(6)}s]`;
    const secs = 'seconds' in e && e.seconds !== undefined ? ` (${e.seconds.toFixed(1)}s)` : '';
    const detail = 'detail' in e && e.detail ? `: ${e.detail}` : '';
    switch (e.type) {
      case 'step':
        stream.write(`${t} ${e.message}\n`);
        break;
      case 'warning':
        stream.write(`${t} warning: ${e.message}\n`);
        break;
      case 'image':
        stream.write(`${t} image ${e.image}: ${e.state}${secs}${e.state === 'building' ? detail : ''}\n`);
        break;
      case 'unit':
        stream.write(`${t} ${e.unit}: ${e.state}${secs}${detail}\n`);
        break;
    }
  };
}
