import { readFileSync } from 'node:fs';

export interface Memory {
  /** Resident set size now, in kB (/proc's unit, 1024 bytes). */
  rssKb: number;
  /** Peak resident set size so far, in kB. */
  hwmKb: number;
  /** The anonymous part of the RSS (heaps, stacks), in kB: where growth of a JS heap shows. */
  anonKb: number;
  /** The file-backed part (the node binary's and libraries' pages as they are touched), in kB. */
  fileKb: number;
}

/** VmRSS and VmHWM from /proc/PID/status; null when the process is gone. */
export function memoryOf(pid: number): Memory | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const field = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(text);
    return m ? Number(m[1]) : null;
  };
  const rssKb = field('VmRSS');
  const hwmKb = field('VmHWM');
  const anonKb = field('RssAnon');
  const fileKb = field('RssFile');
  if (rssKb === null || hwmKb === null || anonKb === null || fileKb === null) return null;
  return { rssKb, hwmKb, anonKb, fileKb };
}

/** The program name of a PID (/proc/PID/comm), or null. */
export function commOf(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return null;
  }
}

/** utime + stime of a process in clock ticks (USER_HZ, 100 on Linux); null when it is gone. */
export function cpuTicks(pid: number): number | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return null;
  }
}
