import { createContext } from "react";

export interface PlayerContextValue {
  /** Bumped after a sign-in: players reconnect at once. */
  authEpoch: number;
  /** A socket was refused with 4001. */
  onUnauthorized: () => void;
  /** A socket was closed with 4004. */
  onRemoved: (streamId: string) => void;
  /** Says a stream's state change to assistive technology (the page's aria-live region). */
  announce: (text: string) => void;
}

export const PlayerContext = createContext<PlayerContextValue>({
  authEpoch: 0,
  onUnauthorized: () => undefined,
  onRemoved: () => undefined,
  announce: () => undefined,
});
