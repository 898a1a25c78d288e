//! Representations of a frame that a transport derives once and every viewer shares, kept
//! with the frame but opaque to the hub.
//!
//! Why: a transport often sends the same bytes to every viewer of a frame (the WebSocket
//! transport wraps the JPEG in one binary message and keeps it in a sealed file for
//! `sendfile`). Making that once per frame instead of once per viewer needs a place that
//! lives exactly as long as the frame; the frame is that place. The hub stays
//! transport-neutral: it never looks inside, a transport keys its representation by its own
//! type.
//!
//! Invariants:
//! - At most [`SLOTS`] representations per frame, one per type; each is made at most once
//!   (the first caller makes it, concurrent callers wait for it) and never changes.
//! - Reads after the first are lock-free and borrow from the frame (no refcount per viewer).
//! - When every slot holds another type, the caller gets `None` and must work without a
//!   shared representation: sharing is an optimisation, never a requirement.

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::OnceLock;

/// Representations a frame can carry (the WebSocket message today; passthrough formats
/// will add their own).
pub const SLOTS: usize = 4;

struct Entry {
    key: TypeId,
    value: Box<dyn Any + Send + Sync>,
}

/// A frame's shared representations (see the module docs).
#[derive(Default)]
pub struct Derived {
    slots: [OnceLock<Entry>; SLOTS],
}

impl Derived {
    /// The frame's representation of type `T`, made by `make` on first use and shared by
    /// every later caller; `None` when all slots hold other types.
    pub fn get_or_init<T: Any + Send + Sync>(&self, make: impl FnOnce() -> T) -> Option<&T> {
        let key = TypeId::of::<T>();
        let mut make = Some(make);
        for slot in &self.slots {
            let entry = slot.get_or_init(|| Entry {
                key,
                // The closure runs only for the slot this call fills, so `make` is there.
                value: Box::new(make.take().map(|make| make())),
            });
            if entry.key == key {
                return entry
                    .value
                    .downcast_ref::<Option<T>>()
                    .and_then(Option::as_ref);
            }
        }
        None
    }
}

impl fmt::Debug for Derived {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let used = self.slots.iter().filter(|s| s.get().is_some()).count();
        f.debug_struct("Derived")
            .field("slots_used", &used)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug, PartialEq)]
    struct Wire(u32);
    #[derive(Debug, PartialEq)]
    struct Other(&'static str);

    #[test]
    fn each_type_is_made_once_and_kept_apart() {
        let derived = Derived::default();
        let made = AtomicUsize::new(0);
        let make = || {
            made.fetch_add(1, Ordering::SeqCst);
            Wire(7)
        };
        assert_eq!(derived.get_or_init(make), Some(&Wire(7)));
        assert_eq!(derived.get_or_init(|| Wire(8)), Some(&Wire(7)));
        assert_eq!(derived.get_or_init(|| Other("x")), Some(&Other("x")));
        assert_eq!(derived.get_or_init(|| Wire(9)), Some(&Wire(7)));
        assert_eq!(made.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_full_frame_refuses_new_types_and_keeps_the_old() {
        struct T0;
        struct T1;
        struct T2;
        struct T3;
        struct T4;
        let derived = Derived::default();
        assert!(derived.get_or_init(|| T0).is_some());
        assert!(derived.get_or_init(|| T1).is_some());
        assert!(derived.get_or_init(|| T2).is_some());
        assert!(derived.get_or_init(|| T3).is_some());
        assert!(derived.get_or_init(|| T4).is_none());
        assert!(derived.get_or_init(|| T2).is_some());
    }

    #[test]
    fn racing_threads_make_one_representation_per_type() {
        let derived = Arc::new(Derived::default());
        let made = Arc::new(AtomicUsize::new(0));
        std::thread::scope(|scope| {
            for i in 0..8u32 {
                let (derived, made) = (Arc::clone(&derived), Arc::clone(&made));
                scope.spawn(move || {
                    let wire = derived.get_or_init(|| {
                        made.fetch_add(1, Ordering::SeqCst);
                        Wire(i)
                    });
                    assert!(wire.is_some());
                    if i % 2 == 0 {
                        assert_eq!(derived.get_or_init(|| Other("o")), Some(&Other("o")));
                    }
                });
            }
        });
        assert_eq!(made.load(Ordering::SeqCst), 1);
    }
}
