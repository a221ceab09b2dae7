import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

export interface Polled<T> {
  data?: T;
  error?: Error;
  loading: boolean;
  /** When `data` was last fetched. */
  at?: number;
  refresh(): void;
}

/**
 * Fetches `load` now and, when `everyMs` is set, again that long after each answer (never two at
 * once, and not while the tab is hidden). A change of `deps` starts over; the last data stays on
 * screen while the next arrives, so charts do not flash.
 */
export function usePoll<T>(
  load: (signal: AbortSignal) => Promise<T>,
  deps: readonly unknown[],
  everyMs?: number,
): Polled<T> {
  const [state, setState] = useState<{ data?: T; error?: Error; loading: boolean; at?: number }>({
    loading: true,
  });
  const [tick, setTick] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  const refresh = useCallback(() => setTick((n) => n + 1), []);
  useEffect(() => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async () => {
      setState((s) => ({ ...s, loading: true }));
      try {
        const data = await loadRef.current(controller.signal);
        if (controller.signal.aborted) return;
        setState({ data, loading: false, at: Date.now() });
      } catch (error) {
        if (controller.signal.aborted) return;
        setState((s) => ({ ...s, error: error as Error, loading: false }));
      }
      if (everyMs !== undefined && !controller.signal.aborted) timer = setTimeout(next, everyMs);
    };
    const next = () => {
      if (document.hidden) {
        document.addEventListener('visibilitychange', next, { once: true });
        return;
      }
      void run();
    };
    void run();
    return () => {
      controller.abort();
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', next);
    };
  }, [...deps, everyMs, tick]);

  return { ...state, refresh };
}

/**
 * Whether every panel has its first answer (data or error): until then the page's region is
 * `aria-busy`, so assistive technology (and the console benchmark) know when it is ready to read.
 */
export function settled(...polls: Polled<unknown>[]): boolean {
  return polls.every((poll) => poll.data !== undefined || poll.error !== undefined);
}
