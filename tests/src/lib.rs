//! End-to-end tests across the mcp-auth crates and the example binaries, all over loopback.
//!
//! | file | what runs against what |
//! |---|---|
//! | `tests/client_server.rs` | `mcp-auth-client`'s `OAuthLayer` ↔ `mcp-auth-server` + `mcp-auth-resource` (JWT and introspection) |
//! | `tests/demo.rs` | the demo `example-mcp-server` ↔ `mcp-auth-client` and `example-mcp-client` (DCR, CIMD, consent page in Chromium, step-up, refresh across a restart, revocation, the binaries as processes) |
//! | `tests/resource_only.rs` | `example-resource-server` trusting the demo's authorization server (JWT by discovered JWKS; introspection) |
//! | `tests/sdk_client.rs` | the official TypeScript MCP SDK client ↔ the demo |
//!
//! The package also builds the two example binaries from their own sources
//! (`e2e-example-mcp-server`, `e2e-example-mcp-client`) so that `tests/demo.rs` can run them as
//! processes. Chromium and Node come from `cargo xtask setup`; without them the tests that need
//! them are skipped with a message, unless `MCP_AUTH_REQUIRE_BROWSER=1` /
//! `MCP_AUTH_REQUIRE_NODE=1` (set by `cargo xtask test`) make them fail.
//!
//! ```sh
//! cargo test -p mcp-auth-e2e
//! ```
