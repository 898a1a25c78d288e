/**
 * A choice kept per browser in localStorage (the wall's layout, its group): read once on
 * mount, written on each change. Private modes without storage keep it for the page only.
 */
import { useCallback, useState } from "react";

function read(key: string): string | null {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

/** The stored string (null when unset) and a setter that stores it (null removes it). */
export function useStoredChoice(key: string): [string | null, (value: string | null) => void] {
  const [value, setValue] = useState<string | null>(() => read(key));
  const set = useCallback(
    (next: string | null) => {
      setValue(next);
      try {
        if (next === null) localStorage.removeItem(key);
        else localStorage.setItem(key, next);
      } catch {
        // No storage: the choice lasts for this page.
      }
    },
    [key],
  );
  return [value, set];
}
