//! The webhook's cache of the policed namespace (see `serve --cluster`).
