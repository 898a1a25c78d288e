import { useState } from "react";
import { KeyRound, Loader2 } from "lucide-react";
import { Button } from "@/components/ui/button";
import { Dialog, DialogContent, DialogDescription, DialogFooter, DialogHeader, DialogTitle } from "@/components/ui/dialog";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { useLinkSignInError } from "@/hooks/useSession";
import { ApiError, api } from "@/lib/api";

/** Asks for an access token; the gateway answers with an HttpOnly session cookie. */
export function LoginDialog({ open, onOpenChange, onLoggedIn }: { open: boolean; onOpenChange: (open: boolean) => void; onLoggedIn: () => void }) {
  const [token, setToken] = useState("");
  const [ownError, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  // A sign-in link (`#token=`) whose token was refused: said here until the user types.
  const [linkError, clearLinkError] = useLinkSignInError();
  const error = ownError ?? linkError;

  const submit = async () => {
    if (!token.trim()) {
      setError("Paste your access token");
      return;
    }
    setBusy(true);
    setError(null);
    clearLinkError();
    try {
      await api.login(token.trim());
      setToken("");
      onLoggedIn();
      onOpenChange(false);
    } catch (e) {
      const err = e instanceof ApiError ? e : null;
      setError(err?.status === 401 || err?.status === 403 ? "That token was not accepted." : (err?.message ?? String(e)));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Dialog open={open} onOpenChange={(o) => !busy && onOpenChange(o)}>
      <DialogContent className="sm:max-w-sm" data-testid="login-dialog">
        <form onSubmit={(e) => {
            e.preventDefault();
            void submit();
          }} className="grid gap-4">
          <DialogHeader>
            <div className="mx-auto mb-1 flex size-10 items-center justify-center rounded-full bg-muted sm:mx-0">
              <KeyRound className="size-5 text-muted-foreground" />
            </div>
            <DialogTitle>Sign in</DialogTitle>
            <DialogDescription>This gateway needs an access token (ask its operator).</DialogDescription>
          </DialogHeader>
          <div className="grid gap-1.5">
            <Label htmlFor="camgate-token">Access token</Label>
            <Input
              id="camgate-token"
              type="password"
              autoComplete="current-password"
              autoFocus
              value={token}
              aria-invalid={Boolean(error)}
              onChange={(e) => {
                setToken(e.target.value);
                setError(null);
                clearLinkError();
              }}
            />
            {error && (
              <p className="text-xs text-destructive" role="alert">
                {error}
              </p>
            )}
          </div>
          <DialogFooter>
            <Button type="submit" disabled={busy} className="w-full sm:w-auto">
              {busy && <Loader2 className="animate-spin" />}
              Sign in
            </Button>
          </DialogFooter>
        </form>
      </DialogContent>
    </Dialog>
  );
}
