// Background threads (routing, sync work and WAL checkpoints: the engine thread) run at a lower CPU priority than the
// threads that answer and commit ingest requests, so the kernel gives senders' acknowledgements the CPU first
// whenever both want it, and the background threads all of it otherwise. Linux keeps a nice value per thread;
// elsewhere this does nothing.
import { readlinkSync } from 'node:fs';
import { constants, setPriority } from 'node:os';

/** Lowers the calling thread's priority (nice 19, the lowest, by default); returns false where threads cannot be told apart. */
export function lowerThreadPriority(nice: number = constants.priority.PRIORITY_LOW): boolean {
  try {
    // `/proc/thread-self` names this thread's task (`<pid>/task/<tid>`); setpriority on a tid affects that thread only.
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isSafeInteger(tid) || tid <= 0) return false;
    setPriority(tid, nice);
    return true;
  } catch {
    return false;
  }
}
