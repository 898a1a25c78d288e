//! Process limits the gateway needs for many viewers.
//!
//! Every viewer is a socket, and Debian's default soft limit on open files is 1024: left as
//! it is, a gateway stops accepting at about a thousand viewers although the hard limit
//! (usually 524288 under systemd) would allow far more. Like Go programs (whose runtime does
//! this by itself), the gateway raises its soft limit to the hard limit at start.

#![forbid(unsafe_code)]

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

use crate::http::MAX_CONNECTIONS;

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
    /// A warning for operators when the limit caps the gateway below [`MAX_CONNECTIONS`].
    pub fn warning(&self) -> Option<String> {
        let limit = self.now?;
        let wanted = MAX_CONNECTIONS as u64 + RESERVED_FDS;
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
    let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
    let raised = current.is_some() && current < maximum.or(Some(u64::MAX));
    if raised
        && setrlimit(
            Resource::Nofile,
            Rlimit {
                current: maximum,
                maximum,
            },
        )
        .is_ok()
    {
        return OpenFiles {
            before: current,
            now: maximum,
        };
    }
    OpenFiles {
        before: current,
        now: current,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_limit() {
        // Start below the hard limit (lowering the soft limit is always allowed), so the
        // test shows a raise even where the soft limit already was the hard one.
        let Rlimit { maximum, .. } = getrlimit(Resource::Nofile);
        let lowered = maximum.map_or(4096, |max| max / 2);
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(lowered),
                maximum,
            },
        )
        .unwrap();
        let files = raise_open_file_limit();
        let Rlimit { current, .. } = getrlimit(Resource::Nofile);
        assert_eq!(files.before, Some(lowered));
        assert_eq!(files.now, current);
        assert_eq!(current, maximum, "soft limit now equals the hard limit");
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
