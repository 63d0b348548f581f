//! (caddy)
