//! Process limits the gateway needs for many viewers.
//!
//! Every viewer is a socket, and Debian's default soft limit on open files is 1024: left as
//! it is, a gateway stops accepting at about a thousand viewers although the hard limit
//! (usually 524288 under systemd) would allow far more. Like Go programs (whose runtime does
//! this by itself), the gateway raises its soft limit to the hard limit at start.

#![forbid(unsafe_code)]

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

use crate::http::{MAX_CONNECTIONS, RESERVE_CONNECTIONS};

/// File descriptors kept apart from viewer sockets: the listener, plugin libraries, ffmpeg
/// pipes, one sealed file per live frame, the manifest watcher, logs.
const RESERVED_FDS: u64 = 256;

/// The open-file limit before and after [`raise_open_file_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    /// Soft limit at start (`None`: unlimited).
    pub before: Option<u64>,
    /// Soft limit now.
    pub now: Option<u64>,
}

impl OpenFiles {
    /// A warning for operators when the limit caps the gateway below its connection cap
    /// ([`MAX_CONNECTIONS`] plus the [`RESERVE_CONNECTIONS`] kept for health checks).
    pub fn warning(&self) -> Option<String> {
        let limit = self.now?;
        let wanted = (MAX_CONNECTIONS + RESERVE_CONNECTIONS) as u64 + RESERVED_FDS;
        (limit < wanted).then(|| {
            format!(
                "the open-file limit is {limit}, so at most about {} viewers can connect; raise \
                 it to {wanted} or more (`ulimit -n`, systemd `LimitNOFILE=`, docker `--ulimit nofile=`)",
                limit.saturating_sub(RESERVED_FDS)
            )
        })
    }
}

/// Raises the soft open-file limit to the hard limit (never lowers it).
pub fn raise_open_file_limit() -> OpenFiles {
    let current = getrlimit(Resource::Nofile);
    let before = current.current;
    match raised(&current) {
        Some(wanted) if setrlimit(Resource::Nofile, wanted).is_ok() => OpenFiles {
            before,
            now: wanted.current,
        },
        _ => OpenFiles {
            before,
            now: before,
        },
    }
}

/// The limit to set for `current`: the soft limit raised to the hard one, or `None` when
/// it already is (or is unlimited). Pure, so tests need not change the process's limits
/// (which every other test thread shares).
fn raised(current: &Rlimit) -> Option<Rlimit> {
    let soft = current.current?;
    let hard = current.maximum;
    (hard.is_none_or(|hard| soft < hard)).then_some(Rlimit {
        current: hard,
        maximum: hard,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_limit_never_lowered() {
        let limit = |current, maximum| Rlimit { current, maximum };
        assert_eq!(
            raised(&limit(Some(1024), Some(524_288))),
            Some(limit(Some(524_288), Some(524_288)))
        );
        assert_eq!(
            raised(&limit(Some(1024), None)),
            Some(limit(None, None)),
            "an unlimited hard limit lifts the soft one"
        );
        assert_eq!(raised(&limit(Some(4096), Some(4096))), None);
        assert_eq!(raised(&limit(None, None)), None, "already unlimited");
    }

    #[test]
    fn a_low_limit_is_reported_with_the_fix() {
        let low = OpenFiles {
            before: Some(1024),
            now: Some(1024),
        };
        let warning = low.warning().unwrap();
        assert!(warning.contains("at most about 768 viewers"), "{warning}");
        assert!(warning.contains("LimitNOFILE"), "{warning}");
        let high = OpenFiles {
            before: Some(1024),
            now: Some(1 << 19),
        };
        assert_eq!(high.warning(), None);
        assert_eq!(
            OpenFiles {
                before: None,
                now: None
            }
            .warning(),
            None
        );
    }
}
