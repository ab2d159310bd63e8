// Package compat holds wapr's compatibility suite with daprd 1.18: tests
// that start a wapr host in-process and drive it as an app drives daprd,
// over HTTP with net/http (and over gRPC with Dapr's generated client where
// that is cheap), and compare what comes back with what daprd answers.
//
// The expectations are written from Dapr's documentation, from daprd 1.18's
// observable behaviour and from wapr's own documentation (docs/api.md and
// docs/building-blocks/*.md), never from wapr's code: each table row is a
// request and the status, errorCode and, where daprd's text is fixed, the
// message it must get. Where wapr deliberately answers differently from
// daprd, the row says so and names the page that documents the choice.
//
// Every errorCode of docs/api.md's table is driven over HTTP (most of them
// over gRPC too, for their code and ErrorInfo reason), except two no
// request can provoke:
// ERR_STATE_STORE_TOO_MANY_TRANSACTIONS (reserved; no builtin store caps
// transactions) and ERROR (an unexpected failure).
//
// The suite runs under go test ./...; the tests that need Redis start a
// private redis-server (builtin/backendtest), and skip without one outside
// CI. The package has no API: it exists for its tests.
package compat
