import { useState } from "react";
import { Loader2 } from "lucide-react";
import {
  AlertDialog,
  AlertDialogCancel,
  AlertDialogContent,
  AlertDialogDescription,
  AlertDialogFooter,
  AlertDialogHeader,
  AlertDialogTitle,
} from "@/components/ui/alert-dialog";
import { Button } from "@/components/ui/button";
import { ApiError, api, type Stream } from "@/lib/api";

export function DeleteStreamDialog({
  stream,
  onClose,
  onDeleted,
  onUnauthorized,
}: {
  stream: Stream | null;
  onClose: () => void;
  onDeleted: (stream: Stream) => void;
  onUnauthorized: () => void;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const confirm = async () => {
    if (!stream) return;
    setBusy(true);
    setError(null);
    try {
      await api.deleteStream(stream.id);
      onDeleted(stream);
      onClose();
    } catch (e) {
      const err = e instanceof ApiError ? e : new ApiError(0, "unknown", String(e));
      if (err.status === 401) onUnauthorized();
      if (err.status === 404) {
        // Already gone.
        onDeleted(stream);
        onClose();
        return;
      }
      setError(err.message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <AlertDialog
      open={stream !== null}
      onOpenChange={(open) => {
        if (!open && !busy) {
          setError(null);
          onClose();
        }
      }}
    >
      <AlertDialogContent data-testid="delete-dialog">
        <AlertDialogHeader>
          <AlertDialogTitle>Delete {stream?.name}?</AlertDialogTitle>
          <AlertDialogDescription>
            The stream <span className="font-mono">{stream?.id}</span> stops and everyone watching it is disconnected. This cannot be undone.
          </AlertDialogDescription>
        </AlertDialogHeader>
        {error && (
          <p role="alert" className="rounded-md border border-destructive/40 bg-destructive/10 px-3 py-2 text-sm text-destructive">
            {error}
          </p>
        )}
        <AlertDialogFooter>
          <AlertDialogCancel disabled={busy}>Cancel</AlertDialogCancel>
          <Button variant="destructive" disabled={busy} onClick={() => void confirm()} data-testid="confirm-delete">
            {busy && <Loader2 className="animate-spin" />}
            Delete
          </Button>
        </AlertDialogFooter>
      </AlertDialogContent>
    </AlertDialog>
  );
}
