import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { FileError } from '../errors.js';

/**
 * Reading the files a user names (-f, --secrets): whatever is at the path, the answer is its
 * text or a FileError naming it (exit code 2), never an errno escaping as a bug. The file is
 * opened once and checked through that handle, so it cannot be swapped or vanish in between.
 */

/** A cloud or secrets file is a few kilobytes: anything this large is the wrong file. */
export const MAX_INPUT_BYTES = 1024 * 1024;

export interface InputFile {
  readonly text: string;
  /** Its permission bits, as they were when it was read. */
  readonly mode: number;
}

/** What an errno means for a path the user gave, in words. */
export function describeFsError(err: unknown, action: 'read' | 'write'): string | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'EACCES':
    case 'EPERM':
      return `cannot ${action} it: permission denied`;
    case 'EISDIR':
      return 'is a folder, not a file';
    case 'ENOTDIR':
      return 'a part of its path is a file, not a folder';
    case 'ELOOP':
      return 'its path has a loop of symbolic links';
    case 'ENAMETOOLONG':
      return 'its path is too long';
    case 'EROFS':
      return `cannot ${action} it: the file system is read-only`;
    case 'ENOSPC':
    case 'EDQUOT':
      return `cannot ${action} it: no space left on the device`;
    case 'EIO':
      return `cannot ${action} it: input/output error`;
    case 'ENXIO':
    case 'ENODEV':
      return 'is a device, not a file';
    default:
      return code === undefined ? undefined : `cannot ${action} it (${code})`;
  }
}

/**
 * The text of a file the user named, or undefined when it does not exist. Refuses (FileError)
 * a folder, a device or pipe, an unreadable or oversized file, and bytes that are not UTF-8.
 */
export async function readInputFile(file: string): Promise<InputFile | undefined> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    // O_NONBLOCK: opening a named pipe must not wait for a writer (it is refused just below).
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fileError(file, err, 'read');
  }
  try {
    const st = await handle.stat();
    if (st.isDirectory())
      throw new FileError(
        file,
        'is a folder, not a file',
        'Name the file itself (such as <folder>/cloud.yaml).',
      );
    if (!st.isFile()) throw new FileError(file, 'is not a regular file (a device, pipe or socket)');
    if (st.size > MAX_INPUT_BYTES)
      throw new FileError(file, `is ${st.size} bytes; a cloud or secrets file is at most ${MAX_INPUT_BYTES}`);
    const bytes = await handle.readFile();
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      throw new FileError(file, 'is not UTF-8 text', 'Name the YAML file itself, saved as UTF-8.');
    }
    return { text, mode: st.mode & 0o777 };
  } catch (err) {
    throw err instanceof FileError ? err : fileError(file, err, 'read');
  } finally {
    await handle.close();
  }
}

/** An errno on a path the user gave, as a FileError; anything else is rethrown as it is (a bug). */
export function fileError(file: string, err: unknown, action: 'read' | 'write'): unknown {
  const reason = describeFsError(err, action);
  return reason === undefined ? err : new FileError(file, reason);
}
